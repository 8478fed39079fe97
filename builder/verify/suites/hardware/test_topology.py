"""GPUs and HCAs on the NUMA nodes Azure's topology file puts them (AzNHC check_hw_topology,
customTests/azure_hw_topology_check.nhc@0e0a1ac26a64)."""

from __future__ import annotations

import shlex

import pytest

from builder.verify import sku as sku_mod
from builder.verify.parsers import topology
from builder.verify.parsers.errors import ParseError
from builder.verify.suites.hardware import rules
from builder.verify.suites.hardware.helpers import needs, tool


def test_pci_numa(health, sku, topology_dir, host, check):
    """Every PCI endpoint of the size's topology file is where lstopo finds it, on the same NUMA node."""
    needs(health, "topology")
    name = sku_mod.topology_file(sku.name)
    if name is None:  # the conf asks for it, the script knows no file: AzNHC dies "not supported" (NHCNA)
        pytest.fail(f"AzNHC's check_hw_topology has no topology file for {sku.name}")
    lstopo = tool(host, "lstopo-no-graphics")
    path = f"{topology_dir}/{name}"
    expected_text = f"devices of {path} on their NUMA nodes"
    source = host.run(f"cat {shlex.quote(path)} 2>&1")
    if source.rc != 0:
        check.that(False, expected_text, f"{path} missing on the image")
    try:
        expected = topology.parse_topology_file(source.stdout)
        found = topology.parse_lstopo(host.run(f"{lstopo} 2>&1").stdout)
        problems = rules.topology_problems(expected, found)
    except ParseError as exc:
        expected, problems = [], [str(exc)]
    check.that(not problems, f"{len(expected) or 'the'} {expected_text}",
               problems or f"all {len(expected)} present on their NUMA nodes")
