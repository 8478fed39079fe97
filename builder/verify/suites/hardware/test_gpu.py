"""GPUs match the SKU; the driver is the pinned one; persistence, ECC, Fabric Manager, NVLink; a sample runs;
and the GPU checks of Azure's health checks: Xid errors, ECC counts, clock throttling, copy bandwidth."""

from __future__ import annotations

import shlex

import pytest

from builder.paths import HARDWARE_SAMPLES
from builder.verify.parsers import kernel_log, nvbandwidth, nvidia_smi
from builder.verify.parsers.errors import ParseError
from builder.verify.sku import model_matches
from builder.verify.suites.hardware import rules
from builder.verify.suites.hardware.helpers import gpu_health, needs, tool

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
    """Every link active: on NVSwitch sizes every GPU must have links; on sizes where Azure's health checks
    look at NVLink without NVSwitch (NC), empty output means no NVLink there and passes, as in
    azure_gpu_nvlink.nhc check_nvlink_status@0e0a1ac26a64."""
    nvidia_only(vendor)
    nvswitch = bool(sku.facts.get("nvswitch"))
    if not nvswitch and not (sku.facts.get("health") or {}).get("nvlink"):
        pytest.skip(f"{sku.name or 'this host'} has no NVSwitch and Azure's health checks skip NVLink there")
    out = host.run("nvidia-smi nvlink --status 2>&1").stdout
    if not nvswitch and not out.strip():
        check.that(True, "every GPU's NVLinks active (or no NVLink)", "no NVLink reported")
        return
    links = nvidia_smi.parse_nvlink_status(out)
    problems = [f"GPU {g.index}: no links" for g in gpus if not links.get(g.index)]
    problems += [f"GPU {gpu} link {link.link} inactive" for gpu, items in links.items() for link in items
                 if not link.active]
    check.that(not problems, "every GPU's NVLinks active", problems or f"{sum(map(len, links.values()))} links up")


def test_xid(gpus, vendor, health, defaults, host, check):
    """No fatal Xid in the kernel log of the last hours (azure_gpu_xid.nhc@0e0a1ac26a64)."""
    nvidia_only(vendor)
    needs(health, "xid")
    hours, fatal = defaults["xid_window_hours"], set(defaults["fatal_xids"])
    result = host.run(f"journalctl -k --no-pager -q -o short-iso --since '{hours} hours ago' 2>&1")
    expected = f"no fatal Xid ({', '.join(map(str, sorted(fatal)))}) in the last {hours} h"
    if result.rc != 0:
        check.that(False, expected, f"journalctl failed (exit {result.rc}): {result.stdout.strip()[:200]}")
    try:
        events = kernel_log.parse_xids(result.stdout)
    except ParseError as exc:
        check.that(False, expected, str(exc))
    # the window is journalctl's --since (the host's clock); the runner's clock may differ
    bad = [f"Xid {e.code} on {e.pci}: {e.message[:80]}" for e in kernel_log.fatal_xids(events, fatal)]
    check.that(not bad, expected, bad or f"{len(events)} Xid event(s), none fatal")


def test_ecc_errors(gpus, vendor, health, defaults, nvsmi_q, check):
    """ECC counts, row remapping and retired pages within Azure's limits (azure_gpu_ecc.nhc@0e0a1ac26a64)."""
    nvidia_only(vendor)
    limits = needs(health, "ecc")
    problems = rules.ecc_problems(gpu_health(nvsmi_q), limits["dram_max"], limits["sram_correctable_max"],
                                  defaults["retired_pages_full"])
    check.that(not problems, f"no pending/failed remap, SRAM uncorrectable 0, SRAM correctable <= "
                             f"{limits['sram_correctable_max']}, DRAM <= {limits['dram_max']}",
               problems or "within limits on every GPU")


def test_clock_throttling(gpus, vendor, health, defaults, nvsmi_q, check):
    """Active clock event reasons; like azure_gpu_clock_throttling.nhc@0e0a1ac26a64 a warning, never a failure."""
    nvidia_only(vendor)
    needs(health, "clock_throttling")
    warnings = rules.throttle_warnings(gpu_health(nvsmi_q), defaults["benign_throttle_reasons"])
    expected = f"no active reason but {', '.join(defaults['benign_throttle_reasons'])} (warning only)"
    if warnings:
        check.warn(expected, "; ".join(warnings))
    else:
        check.that(True, expected, "none active")


def test_copy_bandwidth(gpus, vendor, health, host, check):
    """nvbandwidth host<->device and peer copies at Azure's minimums (azure_gpu_bandwidth.nhc@0e0a1ac26a64)."""
    nvidia_only(vendor)
    limits = needs(health, "gpu_bw")
    binary = tool(host, "nvbandwidth")
    tests = [rules.H2D, rules.D2H] + ([rules.P2P] if limits.get("p2p_gbps") and len(gpus) > 1 else [])
    result = host.run(f"{shlex.quote(binary)} -t {' '.join(tests)} -i 10 2>&1")
    p2p = limits.get("p2p_gbps") if rules.P2P in tests else None
    expected = f"H2D/D2H >= {limits['h2d_d2h_gbps']} GB/s" + (f", P2P >= {p2p} GB/s" if p2p else "")
    try:
        problems = rules.copy_bandwidth_problems(nvbandwidth.parse(result.stdout), limits["h2d_d2h_gbps"], p2p)
    except ParseError as exc:
        problems = [f"{exc} (exit {result.rc})"]
    check.that(not problems and result.rc == 0, expected, problems or f"every copy at or above (exit {result.rc})")


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
