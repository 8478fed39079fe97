"""Which VM size's expectations the hardware suite applies: ``--skus NAME``, instance metadata, or the GPUs."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from builder.errors import InputError

IMDS_VM_SIZE = ("curl -sf -H Metadata:true --max-time 3 "
                "'http://169.254.169.254/metadata/instance/compute/vmSize?api-version=2021-02-01&format=text'")


@dataclass
class ResolvedSku:
    name: str | None  # None: no size in skus.yaml fits; relaxed expectations
    facts: dict[str, Any]
    source: str  # "--skus", "instance metadata", "nvidia-smi", "rocm-smi", "relaxed"
    notes: list[str] = field(default_factory=list)

    @property
    def relaxed(self) -> bool:
        return self.name is None

    def describe(self) -> str:
        label = self.name or "no matching size (relaxed)"
        return f"{label} from {self.source}" + (f"; {'; '.join(self.notes)}" if self.notes else "")


# Words a vendor tool appends to the marketing name: the form factor (rocm-smi: "AMD Instinct MI300X OAM") and
# "VF", an SR-IOV virtual function: Azure's ND MI300X v5 guests report "AMD Instinct MI300X VF" (rccl-tests
# device list in ROCm/rccl#1728, kernel 5.15.0-1073-azure). Never another model ("H100 NVL" is not "H100").
FORM_FACTORS = ("OAM", "VF")


def model_matches(reported: str, expected: str | None) -> bool:
    """Exact name, or the name plus a form-factor word."""
    if expected is None:
        return False
    return reported == expected or any(reported == f"{expected} {word}" for word in FORM_FACTORS)


def resolve(choice: str, skus: dict[str, dict[str, Any]], targets: list[str], vm_size: str | None,
            gpu_names: list[str], vendor: str | None) -> ResolvedSku:
    """Pick the expectations for this host.

    An explicit ``--skus`` wins; then Azure's instance metadata; then the size whose GPU model and count match
    what the host reports (the image's target sizes first). Without a match the expectations are relaxed:
    count and model as reported, no NVSwitch, InfiniBand or bandwidth minimum, and the notes say so.
    """
    if choice != "auto":
        return ResolvedSku(choice, skus[choice], "--skus")
    by_lower = {name.lower(): name for name in skus}
    if vm_size and vm_size.lower() in by_lower:
        name = by_lower[vm_size.lower()]
        return ResolvedSku(name, skus[name], "instance metadata")
    notes = [f"instance metadata size {vm_size} is not in skus.yaml"] if vm_size else []
    tool = "rocm-smi" if vendor == "amd" else "nvidia-smi"
    if gpu_names:
        models = sorted(set(gpu_names))
        matches = [name for name, facts in skus.items()
                   if len(models) == 1 and model_matches(models[0], facts.get("gpu_model"))
                   and facts.get("gpu_count") == len(gpu_names)]
        preferred = [name for name in matches if name in targets] or sorted(matches)
        if preferred:
            if len(preferred) > 1:
                notes.append(f"{len(preferred)} sizes match ({', '.join(preferred)}); using the first")
            return ResolvedSku(preferred[0], skus[preferred[0]], tool, notes)
        notes.append(f"no size in skus.yaml has {len(gpu_names)}x {', '.join(models)}")
    else:
        notes.append(f"{tool} reports no GPUs")
    facts = {"gpu_vendor": vendor, "gpu_count": len(gpu_names), "gpu_model": gpu_names[0] if gpu_names else None,
             "nvswitch": False, "infiniband": None, "allreduce_busbw_gbps": None}
    notes.append("relaxed: GPU count and model as reported; no NVSwitch, InfiniBand or bus-bandwidth minimum")
    return ResolvedSku(None, facts, "relaxed", notes)


# ---------------------------------------------------------------- Azure's health checks (AzNHC) per size
# Settings the AzNHC scripts fix for every size (Azure/azurehpc-health-checks @0e0a1ac26a64):
AZNHC = "Azure/azurehpc-health-checks"
# customTests/azure_gpu_xid.nhc:6 (XID_EC) and :15-18 (time_threshold default 2 hours; the confs pass none)
FATAL_XIDS = (48, 56, 57, 58, 62, 63, 64, 65, 68, 69, 73, 74, 79, 80, 81, 92, 119, 120)
XID_WINDOW_HOURS = 2
# customTests/azure_ib_link_flapping.nhc (check_ib_link_flapping: TIME_INTERVAL_HOURS 24, threshold 5 "lost carrier"
# events per device; the confs pass no arguments)
LINK_FLAP_WINDOW_HOURS = 24
LINK_FLAP_THRESHOLD = 5
# customTests/azure_gpu_clock_throttling.nhc: only these reasons pass without a warning (GPU_IDLE, NONE, SW_POWER_CAP)
BENIGN_THROTTLE_REASONS = ("Idle", "SW Power Cap")
# customTests/azure_gpu_ecc.nhc check_SDBE_ecc: retired pages (single + double bit) >= 62 with a pending blacklist
RETIRED_PAGES_FULL = 62
# customTests/azure_ib_write_bw_gdr.nhc run_ib_bw_gdr: MESSAGE_SIZE 8388608, "-s 8388608 -x 0 -F --report_gbits
# --perform_warm_up", server and client on the same host per HCA, --use_cuda=<HCA index>
IB_WRITE_BW_SIZE = 8388608
IB_WRITE_BW_ARGS = f"-s {IB_WRITE_BW_SIZE} -x 0 -F --report_gbits --perform_warm_up"
# customTests/azure_nccl_allreduce_ib_loopback.nhc collect_nccl_allreduce_ib_loopback_data: NCCL over IB only
IB_LOOPBACK_ENV = {"NCCL_NET_GDR_LEVEL": "5", "NCCL_SHM_DISABLE": "1", "NCCL_P2P_DISABLE": "1"}
# customTests/azure_hw_topology_check.nhc:52-57 check_hw_topology: the topology file by (lower-case) size name,
# first match wins; any other size is "not supported for this test"
TOPOLOGY_FILES = (("*nd96*_v4*", "ndv4-topo.xml"), ("*nc*a100_v4*", "ncv4-topo.xml"),
                  ("*nd96isr*_v5*", "ndv5-topo.xml"))


def topology_file(size: str | None) -> str | None:
    """The topology file AzNHC's check_hw_topology compares ``size`` with, or None where it has none."""
    name = (size or "").lower()
    return next((file for pattern, file in TOPOLOGY_FILES if fnmatch.fnmatchcase(name, pattern)), None)


def health_defaults() -> dict[str, Any]:
    """The AzNHC settings every size shares, for the expectations handed to the suite."""
    return {"source": f"{AZNHC}@0e0a1ac26a64 customTests/*.nhc", "fatal_xids": list(FATAL_XIDS),
            "xid_window_hours": XID_WINDOW_HOURS, "link_flap_window_hours": LINK_FLAP_WINDOW_HOURS,
            "link_flap_threshold": LINK_FLAP_THRESHOLD, "benign_throttle_reasons": list(BENIGN_THROTTLE_REASONS),
            "retired_pages_full": RETIRED_PAGES_FULL, "ib_write_bw_size": IB_WRITE_BW_SIZE,
            "ib_write_bw_args": IB_WRITE_BW_ARGS, "ib_loopback_env": dict(IB_LOOPBACK_ENV)}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Cpu(_Strict):
    sockets: Annotated[int, Field(ge=1)]
    cores: Annotated[int, Field(ge=1)]
    threads: Annotated[int, Field(ge=1)]


class SizeRange(_Strict):
    min: str
    max: str
    tolerance_pct: Annotated[float, Field(ge=0)]


class GpuBandwidth(_Strict):
    h2d_d2h_gbps: Annotated[float, Field(gt=0)]
    p2p_gbps: Annotated[float, Field(gt=0)] | None = None


class Ecc(_Strict):
    dram_max: Annotated[int, Field(ge=0)]
    sram_correctable_max: Annotated[int, Field(ge=0)]


class AllReduce(_Strict):
    min_busbw_gbps: Annotated[float, Field(gt=0)]
    repeats: Annotated[int, Field(ge=1)] = 1
    message_size: Annotated[str, Field(pattern=r"^[0-9]+[KMG]?$")]
    topology_file: str | None = None


class IbWriteBw(_Strict):
    gpudirect: bool
    min_gbps: Annotated[float, Field(gt=0)]


class HealthChecks(_Strict):
    """One size's entry of ``health_checks`` in ``images/skus.yaml``: what AzNHC's conf runs, and its thresholds."""

    source: Annotated[str, Field(pattern=r"^Azure/azurehpc-health-checks conf/\S+\.conf@[0-9a-f]{7,40}$")]
    cpu: Cpu | None = None
    physmem: SizeRange | None = None
    swap: SizeRange | None = None
    topology: bool = False
    nvme_count: Annotated[int, Field(ge=0)] | None = None
    gpu_count: Annotated[int, Field(ge=0)] | None = None
    nvsmi_healthmon: bool = False
    xid: bool = False
    gpu_bw: GpuBandwidth | None = None
    ecc: Ecc | None = None
    clock_throttling: bool = False
    allreduce: AllReduce | None = None
    allreduce_ib_loopback: AllReduce | None = None
    nvlink: bool = False
    ib_write_bw: IbWriteBw | None = None
    ib_link_flapping: bool = False
    ib_ports: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+:[0-9]+$")], Annotated[int, Field(gt=0)]] = {}
    interfaces: list[str] = []


def health_checks(document: dict[str, Any] | None, skus: dict[str, Any], file: Any = None) -> dict[str, dict]:
    """The ``health_checks`` block of the SKU document, validated, as JSON-ready mappings by size.

    InputError for an unknown size or a field the schema does not know.
    """
    block = (document or {}).get("health_checks") or {}
    if not isinstance(block, dict):
        raise InputError("health_checks must map VM size -> checks", file=file, field="health_checks")
    checks: dict[str, dict] = {}
    for name, entry in block.items():
        if name not in skus:
            raise InputError(f"health_checks names '{name}', which is not in skus", file=file,
                             field=f"health_checks.{name}")
        try:
            checks[name] = HealthChecks.model_validate(entry).model_dump(mode="json")
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InputError(f"health_checks.{name}.{where}: {first['msg']}", file=file,
                             field=f"health_checks.{name}.{where}") from None
    return checks


_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def size_bytes(text: str) -> int:
    """``16G`` -> 17179869184, ``1915071MB`` -> bytes, ``0kB`` -> 0 (NHC and nccl-tests: steps of 1024)."""
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*([kKmMgGtT]?)[bB]?", text.strip(), re.ASCII)
    if not match:
        raise ValueError(f"not a size: {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])
