"""The local build target: base rootfs -> layered converge (cached) -> verify -> generalize -> disk -> boot test."""
