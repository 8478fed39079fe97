"""Services the stack installs are enabled (not started: a build host or chroot has no GPU)."""

from __future__ import annotations

import pytest

from builder.verify import probe
from builder.verify.suites.conftest import load


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "unit" in metafunc.fixturenames:
        # the units of the installed components (builder.stack.components: vendor unit names)
        units = load(metafunc.config)["units"]
        metafunc.parametrize("unit", units, ids=[u.removesuffix(".service") for u in units])


def test_enabled(unit, host, check):
    check.equal("enabled", probe.unit_state(host, unit))


def test_runs(unit, host, check):
    """The program the unit starts is installed and executable: an enabled unit whose ExecStart names a missing
    file (a dangling link, a source tree unpacked where a binary was expected) fails at every boot."""
    argv = probe.exec_start(host, unit)
    if not argv:
        check.equal("an ExecStart= program", "no unit file" if argv is None else "no ExecStart=")
        return
    program = argv[0]
    found = "executable" if probe.executable(host, program) else (
        "not executable" if probe.exists(host, program) else "missing (or a dangling link)")
    check.equal(f"{program}: executable", f"{program}: {found}")


def test_sku_tuning(expect, host, check):
    """The first-boot tuning oneshot is enabled and knows every target size of the image (and no other)."""
    import json

    state = probe.unit_state(host, "builder-sku-tuning.service")
    text = probe.read(host, "/etc/builder/sku-tuning.json")
    try:
        sizes = sorted(json.loads(text)["skus"]) if text else "no /etc/builder/sku-tuning.json"
    except (ValueError, KeyError, TypeError):
        sizes = "unparsable /etc/builder/sku-tuning.json"
    check.equal(f"enabled, sizes {sorted(expect['target_skus'])}", f"{state}, sizes {sizes}")


def test_exporter_conflicts(expect, host, check):
    """Units that hold the exclusive GPU profiling context dcgm-exporter needs are not enabled where it runs."""
    if not expect["exporter_conflicts"]:
        pytest.skip("no dcgm-exporter in this image")
    states = {unit: probe.unit_state(host, unit) for unit in expect["exporter_conflicts"]}
    check.equal({unit: "not enabled" for unit in states},
                {unit: "enabled" if state == "enabled" else "not enabled" for unit, state in states.items()})
