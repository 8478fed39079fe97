"""Hardware suite fixtures: what the host's GPUs report, and which SKU's expectations apply."""

from __future__ import annotations

import os

import pytest

from builder.verify import sku as sku_mod
from builder.verify.parsers import nvidia_smi, nvsmi_query, rocm_smi
from builder.verify.parsers.errors import ParseError
from builder.verify.suites.hardware import helpers

ROCM_QUERY = "rocm-smi --showproductname --json"


@pytest.fixture(scope="module")
def host(host):
    """Every command of the hardware suite runs with a time limit (helpers.COMMAND_TIMEOUT_S)."""
    return helpers.BoundedHost(host, helpers.command_timeout())


@pytest.fixture(scope="session")
def vendor(expect) -> str | None:
    return {"gpu-nvidia": "nvidia", "gpu-amd": "amd"}.get(expect["kind"])


class GpuReport:
    """GPUs as the vendor tool reports them, or why that failed."""

    def __init__(self, gpus: list, error: str | None) -> None:
        self.gpus = gpus
        self.error = error

    @property
    def names(self) -> list[str]:
        return [getattr(g, "name", None) or getattr(g, "series", "") for g in self.gpus]


@pytest.fixture(scope="module")
def gpu_report(host, vendor) -> GpuReport:
    if vendor is None:
        return GpuReport([], None)
    command, parse = ((nvidia_smi.QUERY_COMMAND, nvidia_smi.parse_query_gpu) if vendor == "nvidia"
                      else (ROCM_QUERY, rocm_smi.parse_productname))
    result = host.run(f"{command} 2>&1")
    if result.rc != 0:
        tool = command.split()[0]
        return GpuReport([], f"{tool} failed (exit {result.rc}): {result.stdout.strip()[:200] or 'no output'}")
    try:
        return GpuReport(parse(result.stdout), None)
    except ValueError as exc:
        return GpuReport([], str(exc))


@pytest.fixture(scope="module")
def sku(host, expect, gpu_report, vendor) -> sku_mod.ResolvedSku:
    vm_size = None
    if expect["sku"] == "auto":
        vm_size = host.run(f"{sku_mod.IMDS_VM_SIZE} 2>/dev/null").stdout.strip() or None
    return sku_mod.resolve(expect["sku"], expect["skus"], expect["target_skus"], vm_size, gpu_report.names, vendor)


@pytest.fixture
def gpus(gpu_report, vendor) -> list:
    if vendor is None:
        pytest.skip("CPU image: no GPU checks")
    if gpu_report.error:
        pytest.fail(f"expected GPUs, found {gpu_report.error}")
    return gpu_report.gpus


@pytest.fixture(autouse=True)
def _record_sku(request, sku) -> None:
    request.node.user_properties.append(("sku", sku.describe()))


@pytest.fixture
def health(sku) -> dict:
    """What Azure's health checks run on this size (skus.yaml ``health_checks``); skip where there is none."""
    checks = sku.facts.get("health")
    if not checks:
        pytest.skip(f"Azure's health checks define nothing for {sku.name or 'this host'}")
    return checks


@pytest.fixture(scope="session")
def defaults(expect) -> dict:
    """The AzNHC settings every size shares (fatal Xid codes, windows, message sizes)."""
    return expect["health_defaults"]


@pytest.fixture(scope="module")
def nvsmi_q(host, vendor):
    """``nvidia-smi -q`` parsed, or the reason it could not be read."""
    if vendor != "nvidia":
        return None, "NVIDIA-only check"
    result = host.run("nvidia-smi -q 2>&1")
    if result.rc != 0:
        return None, f"nvidia-smi -q failed (exit {result.rc}): {result.stdout.strip()[:200]}"
    try:
        return nvsmi_query.parse(result.stdout), None
    except ParseError as exc:
        return None, str(exc)


@pytest.fixture(scope="session")
def topology_dir() -> str:
    """Where the image keeps Azure's topology files (azhpc-images setup_sku_customizations.sh copies them to
    /opt/microsoft; AzNHC reads its own $AZ_NHC_ROOT/topofiles); BUILDER_VERIFY_TOPOLOGY_DIR overrides it."""
    return os.environ.get("BUILDER_VERIFY_TOPOLOGY_DIR", "/opt/microsoft").rstrip("/")
