"""InfiniBand ports active at the SKU's rate; GPUDirect RDMA module loaded."""

from __future__ import annotations

import pytest

from builder.verify.parsers import infiniband


@pytest.fixture
def ib(sku) -> dict:
    if not sku.facts.get("infiniband"):
        pytest.skip(f"{sku.name or 'this host'} has no InfiniBand")
    return sku.facts["infiniband"]


def test_ib_ports(ib, host, check):
    result = host.run("ibstat 2>&1")
    ports = [p for p in infiniband.parse_ibstat(result.stdout) if p.link_layer == "InfiniBand"]
    good = [p for p in ports if p.active and p.rate_gbps == ib["rate_gbps"]]
    found = [f"{p.ca}/{p.port} {p.state} {p.rate_gbps} Gb/s" for p in ports if p not in good]
    summary = f"{len(good)} active at {ib['rate_gbps']} Gb/s" + (f"; {', '.join(found)}" if found else "")
    if result.rc != 0 and not ports:
        summary = f"ibstat failed: {result.stdout.strip()[:200] or 'no output'}"
    check.that(len(good) >= ib["ports"], f"{ib['ports']} active at {ib['rate_gbps']} Gb/s", summary)


def test_peermem_loaded(ib, vendor, host, check):
    if vendor != "nvidia":
        pytest.skip("NVIDIA-only check")
    loaded = host.run("grep -qw '^nvidia_peermem' /proc/modules").rc == 0
    check.equal("nvidia_peermem loaded", "nvidia_peermem loaded" if loaded else "nvidia_peermem not loaded")
