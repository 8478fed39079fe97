"""Image layers: which roles and components each holds. The local layer cache, the Ansible playbook's
layer tags and ``builder plan`` all read this one table."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layer:
    name: str
    description: str
    roles: tuple[str, ...]
    components: tuple[str, ...]


LAYERS: tuple[Layer, ...] = (
    Layer("base", "OS base, apt hygiene, limits, sysctl, Azure agent", ("common",), ()),
    Layer("gpu", "GPU driver, CUDA/ROCm and libraries, container toolkit",
          ("nvidia_driver", "fabric_manager", "cuda", "cudnn", "nccl", "container_toolkit", "rocm"),
          ("nvidia_driver", "fabric_manager", "cuda", "cudnn", "nccl", "nccl_tests", "container_toolkit",
           "rocm", "rccl")),
    Layer("fabric", "InfiniBand (DOCA-OFED) and MPI (HPC-X)", ("infiniband", "mpi"),
          ("doca_ofed", "hpcx", "openmpi")),
    Layer("image", "Enroot/Pyxis, monitoring, SKU tuning", ("enroot_pyxis", "monitoring", "sku_tuning"),
          ("enroot", "pyxis", "dcgm", "dcgm_exporter", "node_exporter")),
)
FINAL_ROLES = ("generalize",)


def layer_of(component: str) -> str:
    for layer in LAYERS:
        if component in layer.components:
            return layer.name
    raise KeyError(component)
