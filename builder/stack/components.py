"""Where each catalog component is installed, checked and published: one row per component.

- ``role``: the Ansible role that installs it (``ansible/roles/<role>``); its layer follows from the role
  (``builder.stack.layers``).
- ``unit``: the systemd unit the vendor's package ships for it (the static suite checks it is enabled).
- ``checks``: the static-suite checks beyond "packages pinned and held" (``builder/verify/suites/<path>``).
- Published as the gallery tag ``component.<name>`` (``builder.stack.tags``) and in ``/etc/builder/image.json``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ComponentInfo:
    role: str
    unit: str | None = None
    checks: tuple[str, ...] = ()


_GPU = "static/test_gpu_stack.py"
_HPC = "static/test_hpc.py"
_ROCM = "static/test_rocm.py"

COMPONENTS: dict[str, ComponentInfo] = {
    "nvidia_driver": ComponentInfo("nvidia_driver", "nvidia-persistenced.service",
                                   (f"{_GPU}::test_nouveau_blacklisted", f"{_GPU}::test_peermem_at_boot",
                                    "static/test_packages.py::test_driver_branch_packages_are_the_pinned_release")),
    "fabric_manager": ComponentInfo("fabric_manager", "nvidia-fabricmanager.service",
                                    ("static/test_packages.py::test_fabric_manager_matches_driver",)),
    "cuda": ComponentInfo("cuda", None, (f"{_GPU}::test_cuda_home", f"{_GPU}::test_cuda_profile",
                                         f"{_GPU}::test_nvcc_release")),
    "cudnn": ComponentInfo("cudnn"),
    "nccl": ComponentInfo("nccl"),
    "nccl_tests": ComponentInfo("nccl", None, (f"{_GPU}::test_nccl_tests",)),
    "container_toolkit": ComponentInfo("container_toolkit", None, (f"{_GPU}::test_container_runtime",)),
    "rocm": ComponentInfo("rocm", None, (f"{_ROCM}::test_rocm_home", f"{_ROCM}::test_sysctl",
                                         f"{_ROCM}::test_device_nodes", f"{_ROCM}::test_amdgpu_at_boot")),
    "rccl": ComponentInfo("rocm"),
    "doca_ofed": ComponentInfo("infiniband", "openibd.service", (f"{_HPC}::test_ib_modules_at_boot",)),
    "hpcx": ComponentInfo("mpi", None, (f"{_HPC}::test_hpcx",)),
    "openmpi": ComponentInfo("mpi", None, (f"{_HPC}::test_openmpi",)),
    "enroot": ComponentInfo("enroot_pyxis", None, (f"{_HPC}::test_enroot_config",)),
    "pyxis": ComponentInfo("enroot_pyxis", None, (f"{_HPC}::test_pyxis_config",)),
    "dcgm": ComponentInfo("monitoring", "nvidia-dcgm.service"),
    "dcgm_exporter": ComponentInfo("monitoring", "nvidia-dcgm-exporter.service"),
    "node_exporter": ComponentInfo("monitoring", "node_exporter.service"),
}


def info(component: str) -> ComponentInfo:
    return COMPONENTS[component]
