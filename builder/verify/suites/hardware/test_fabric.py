"""InfiniBand ports active at the SKU's rate (by name where Azure's health checks name them); IPoIB
interfaces; no link flapping; per-HCA ib_write_bw with GPUDirect; GPUDirect RDMA module loaded."""

from __future__ import annotations

import pytest

from builder.verify.parsers import infiniband, kernel_log, perftest
from builder.verify.parsers.errors import ParseError
from builder.verify.parsers.system import parse_ip_link
from builder.verify.suites.hardware import rules
from builder.verify.suites.hardware.helpers import needs, tool

PORT_BASE = 18510  # azure_ib_write_bw_gdr.nhc check_ib_bw_gdr port_numbers@0e0a1ac26a64


@pytest.fixture
def ib(sku) -> dict:
    if not sku.facts.get("infiniband"):
        pytest.skip(f"{sku.name or 'this host'} has no InfiniBand")
    return sku.facts["infiniband"]


@pytest.fixture(scope="module")
def ibstat(host) -> tuple[list[infiniband.Port], str | None]:
    result = host.run("ibstat 2>&1")
    try:
        return infiniband.parse_ibstat(result.stdout), None
    except ParseError as exc:
        return [], str(exc)


def test_ib_ports(ib, sku, ibstat, host, check):
    ports, error = ibstat
    named = (sku.facts.get("health") or {}).get("ib_ports")
    if named:  # check_hw_ib <rate> <CA>:<port> lines of the size's AzNHC conf
        problems = rules.ib_port_problems(ports, named) if not error else [error]
        check.that(not problems, f"{', '.join(named)} Active at {sorted(set(named.values()))} Gb/s",
                   problems or f"{len(named)} named ports Active at their rate")
        return
    ports = [p for p in ports if p.link_layer == "InfiniBand"]
    good = [p for p in ports if p.active and p.rate_gbps == ib["rate_gbps"]]
    found = [f"{p.ca}/{p.port} {p.state} {p.rate_gbps} Gb/s" for p in ports if p not in good]
    summary = f"{len(good)} active at {ib['rate_gbps']} Gb/s" + (f"; {', '.join(found)}" if found else "")
    if not ports:
        summary = f"ibstat failed: {error or 'no InfiniBand ports'}"
    check.that(len(good) >= ib["ports"], f"{ib['ports']} active at {ib['rate_gbps']} Gb/s", summary)


def test_ipoib_interfaces(health, expect, host, check):
    """The interfaces the size's AzNHC conf names (check_hw_eth); docker0 only where the image runs docker."""
    names = [n for n in needs(health, "interfaces")
             if n != "docker0" or "container_toolkit" in expect["components"]]
    result = host.run("ip -o link show 2>&1")
    try:
        links = parse_ip_link(result.stdout)
        missing = [n for n in names if n not in links]
    except ParseError as exc:
        missing = [str(exc)]
    check.that(not missing, f"interfaces {', '.join(names)}", f"missing {', '.join(missing)}" if missing else
               "all present")


def test_link_flapping(health, defaults, host, check):
    """Fewer than the threshold of "lost carrier" events per IPoIB device (azure_ib_link_flapping.nhc)."""
    needs(health, "ib_link_flapping")
    hours, threshold = defaults["link_flap_window_hours"], defaults["link_flap_threshold"]
    result = host.run(f"journalctl --no-pager -q -o short-iso --since '{hours} hours ago' 2>&1 "
                      "| grep -i 'lost carrier'; true")
    expected = f"< {threshold} lost-carrier events per IB device in {hours} h"
    try:
        problems = rules.link_flap_problems(kernel_log.link_flaps(result.stdout), threshold)
    except ParseError as exc:
        problems = [str(exc)]
    check.that(not problems, expected, problems or "none over the threshold")


def test_ib_write_bw(ib, health, defaults, ibstat, gpus, host, check):
    """Per-HCA loopback ib_write_bw (GPUDirect where AzNHC uses it) at the size's minimum
    (azure_ib_write_bw_gdr.nhc / azure_ib_write_bw_non_gdr.nhc@0e0a1ac26a64)."""
    limits = needs(health, "ib_write_bw")
    binary = tool(host, "ib_write_bw")
    devices = [p.ca for p in ibstat[0] if p.link_layer == "InfiniBand"]
    size, args = defaults["ib_write_bw_size"], defaults["ib_write_bw_args"]
    problems, seen = [], []
    for index, device in enumerate(devices):
        cuda = f" --use_cuda={index}" if limits["gpudirect"] else ""
        base = f"{binary} -p {PORT_BASE + index} {args}{cuda} -d {device}"
        out = host.run(f"({base} >/dev/null 2>&1 &) ; sleep 5; {base} localhost 2>&1").stdout
        try:
            rows = [r for r in perftest.parse(out) if r.size_bytes == size]
        except ParseError as exc:
            problems.append(f"{device}: {exc}")
            continue
        bw = rows[0].average_gbps if rows else None
        seen.append(f"{device} {bw} Gb/s")
        if bw is None or bw < limits["min_gbps"]:
            problems.append(f"{device}: {bw} Gb/s")
    if not devices:
        problems.append("no InfiniBand HCA in ibstat")
    check.that(not problems, f">= {limits['min_gbps']} Gb/s on every HCA" +
               (" with GPUDirect" if limits["gpudirect"] else ""), problems or seen)


def test_peermem_loaded(ib, vendor, host, check):
    if vendor != "nvidia":
        pytest.skip("NVIDIA-only check")
    loaded = host.run("grep -qw '^nvidia_peermem' /proc/modules").rc == 0
    check.equal("nvidia_peermem loaded", "nvidia_peermem loaded" if loaded else "nvidia_peermem not loaded")
