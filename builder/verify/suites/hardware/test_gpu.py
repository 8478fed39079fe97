"""GPUs match the SKU; the driver is the pinned one; persistence, ECC, Fabric Manager, NVLink; a sample runs."""

from __future__ import annotations

import pytest

from builder.paths import HARDWARE_SAMPLES
from builder.verify.parsers import nvidia_smi
from builder.verify.sku import model_matches

SAMPLES = HARDWARE_SAMPLES


def nvidia_only(vendor: str | None) -> None:
    if vendor != "nvidia":
        pytest.skip("NVIDIA-only check")


def test_count(gpus, sku, check):
    check.equal(sku.facts["gpu_count"], len(gpus))


def test_model(gpus, gpu_report, sku, check):
    expected = sku.facts["gpu_model"]
    names = sorted(set(gpu_report.names))
    check.that(bool(names) and all(model_matches(n, expected) for n in names), expected, names)


def test_driver_version(gpus, expect, vendor, check):
    nvidia_only(vendor)
    check.equal([expect["components"]["nvidia_driver"]["version"]], sorted({g.driver_version for g in gpus}))


def test_persistence_mode(gpus, vendor, check):
    nvidia_only(vendor)
    off = [f"GPU {g.index}: {g.persistence_mode}" for g in gpus if g.persistence_mode != "Enabled"]
    check.that(not off, "Enabled on every GPU", off or "Enabled on every GPU")


def test_ecc(gpus, vendor, check):
    nvidia_only(vendor)
    off = [f"GPU {g.index}: {g.ecc_mode}" for g in gpus if g.ecc_mode != "Enabled"]
    check.that(not off, "Enabled on every GPU", off or "Enabled on every GPU")


def test_fabric_manager_active(gpus, vendor, sku, host, check):
    nvidia_only(vendor)
    if not sku.facts.get("nvswitch"):
        pytest.skip(f"{sku.name or 'this host'} has no NVSwitch")
    state = host.run("systemctl is-active nvidia-fabricmanager 2>&1").stdout.strip() or "unknown"
    check.equal("active", state)


def test_nvlink(gpus, vendor, sku, host, check):
    nvidia_only(vendor)
    if not sku.facts.get("nvswitch"):
        pytest.skip(f"{sku.name or 'this host'} has no NVSwitch")
    links = nvidia_smi.parse_nvlink_status(host.run("nvidia-smi nvlink --status 2>&1").stdout)
    problems = [f"GPU {g.index}: no links" for g in gpus if not links.get(g.index)]
    problems += [f"GPU {gpu} link {link.link} inactive" for gpu, items in links.items() for link in items
                 if not link.active]
    check.that(not problems, "every GPU's NVLinks active", problems or f"{sum(map(len, links.values()))} links up")


def test_compute_sample(gpus, vendor, host, check):
    """Compile and run a small vector-add with the image's own compiler (nvcc, or hipcc on ROCm)."""
    source = "vector_add.cu" if vendor == "nvidia" else "vector_add.hip"
    compiler = "/usr/local/cuda/bin/nvcc" if vendor == "nvidia" else "/opt/rocm/bin/hipcc"
    code = (SAMPLES / source).read_text()
    script = (f"d=$(mktemp -d) && cat > $d/{source} <<'EOF_SAMPLE'\n{code}EOF_SAMPLE\n"
              f"{compiler} -o $d/sample $d/{source} && $d/sample; rc=$?; rm -rf $d; exit $rc")
    out = host.run(f"sh -c {_quote(script)} 2>&1").stdout.strip()
    check.that(out.endswith("PASSED"), "sample prints PASSED", out.splitlines()[-1] if out else "no output")


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
