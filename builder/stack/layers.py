"""Image layers: which roles each holds, and so which components (``builder.stack.components`` names each
component's role). The local layer cache, ``builder plan`` and the playbook's layer tags read this one table
(a test checks ``ansible/image.yml`` against it)."""

from __future__ import annotations

from dataclasses import dataclass

from builder.stack.components import COMPONENTS


@dataclass(frozen=True)
class Layer:
    name: str
    description: str
    roles: tuple[str, ...]

    @property
    def components(self) -> tuple[str, ...]:
        """The catalog components the layer's roles install, in table order."""
        return tuple(name for name, row in COMPONENTS.items() if row.role in self.roles)


LAYERS: tuple[Layer, ...] = (
    Layer("base", "OS base, apt hygiene, limits, sysctl, Azure agent", ("common",)),
    Layer("gpu", "GPU driver, CUDA/ROCm and libraries, container toolkit",
          ("nvidia_driver", "fabric_manager", "cuda", "cudnn", "nccl", "container_toolkit", "rocm")),
    Layer("fabric", "InfiniBand (DOCA-OFED) and MPI (HPC-X)", ("infiniband", "mpi")),
    Layer("image", "Enroot/Pyxis, monitoring, SKU tuning", ("enroot_pyxis", "monitoring", "sku_tuning")),
)
MANIFEST_TAG = "manifest"  # image_manifest: per-build values, after the layers, never snapshotted
MANIFEST_ROLE = "image_manifest"
FINAL_ROLES = ("generalize",)
# Every playbook tag, in run order: one per layer, the manifest, then each final role.
TAGS = (*(layer.name for layer in LAYERS), MANIFEST_TAG, *FINAL_ROLES)


def layer_of(component: str) -> str:
    for layer in LAYERS:
        if component in layer.components:
            return layer.name
    raise KeyError(component)


def tag_of_role(role: str) -> str:
    """The playbook tag a role carries: its layer's name, ``manifest`` or its own name (final roles)."""
    for layer in LAYERS:
        if role in layer.roles:
            return layer.name
    if role == MANIFEST_ROLE:
        return MANIFEST_TAG
    if role in FINAL_ROLES:
        return role
    raise KeyError(role)
