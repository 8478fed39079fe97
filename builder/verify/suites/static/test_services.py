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
