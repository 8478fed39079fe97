"""Which VM size's expectations the hardware suite applies: ``--skus NAME``, instance metadata, or the GPUs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


# Form-factor words a vendor tool appends to the marketing name (rocm-smi: "AMD Instinct MI300X OAM").
FORM_FACTORS = ("OAM",)


def model_matches(reported: str, expected: str | None) -> bool:
    """Exact name, or the name plus a form-factor word (never "H100 NVL" for "H100")."""
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
