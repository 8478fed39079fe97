"""PCI devices by NUMA node: what ``lstopo-no-graphics`` reports, and what Azure's topology file expects.

Azure's health check ``check_hw_topology`` (Azure/azurehpc-health-checks
customTests/azure_hw_topology_check.nhc@0e0a1ac26a64) compares the two: every ``<pci .../>`` device of the
size's NCCL topology file (``ndv5-topo.xml`` ...) must appear in lstopo's text output under the NUMA node of
the ``<cpu numaid=...>`` that holds it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

from builder.verify.parsers.errors import ParseError

_BUSID = re.compile(r"(?:([0-9a-f]{4}):)?([0-9a-f]{2}):([0-9a-f]{2})\.([0-9a-f])", re.ASCII)
_NUMA = re.compile(r"\bNUMANode L#([0-9]+)(?: \(P#([0-9]+))?", re.ASCII)
_PCI = re.compile(r"^PCI ([0-9a-f:.]+)(?: \(([^)]*)\))?", re.ASCII)


@dataclass(frozen=True)
class PciDevice:
    busid: str  # always with its domain: 0001:00:00.0
    numa: int | None  # OS index of the NUMA node lstopo places it under; None when it has none
    kind: str = ""  # lstopo's class in brackets: 3D, InfiniBand, Ethernet ...


def normalize_busid(text: str) -> str | None:
    """``0001:00:00.0`` as is; ``03:00.0`` -> ``0000:03:00.0``.

    lstopo prints the domain only when some PCI object has a non-zero one (hwloc utils/lstopo/lstopo.c
    ``lstopo_check_pci_domains``@hwloc-2.9.0); Azure's GPU sizes have domains 0001 and up.
    """
    match = _BUSID.fullmatch(text.strip().lower())
    if not match:
        return None
    domain, bus, device, function = match.groups()
    return f"{domain or '0000'}:{bus}:{device}.{function}"


def parse_lstopo(text: str) -> list[PciDevice]:
    """PCI devices of ``lstopo-no-graphics`` text output, each with the NUMA node of its closest ancestor
    that has one (hwloc 2 attaches a NUMANode and the I/O tree to the same parent, a Package or Group).

    AzNHC reads the same lines but takes the last NUMANode line seen; the tree is used here so a device of
    a package without memory is not credited to the node printed before it. With a single NUMA node, lstopo
    attaches the I/O tree to the Machine, beside the Package holding the node: every device is on that node.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("Machine"):
        raise ParseError("lstopo", f"expected a 'Machine' first line, found {(lines or [''])[0][:60]!r}")
    stack: list[list] = []  # [indent, numa of this object's own NUMANode child]
    devices: list[PciDevice] = []
    nodes: set[int] = set()
    for line in lines:
        indent, body = len(line) - len(line.lstrip(" ")), line.strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        for part in body.split(" + "):  # "Group0 L#1 + Package L#3": one line, nested objects
            if numa := _NUMA.match(part):
                node = int(numa.group(2) if numa.group(2) is not None else numa.group(1))
                nodes.add(node)
                if stack:
                    stack[-1][1] = node
            elif pci := _PCI.match(part):
                busid = normalize_busid(pci.group(1))
                if busid is None:
                    raise ParseError("lstopo", f"unreadable PCI bus id in {body[:80]!r}")
                node = next((entry[1] for entry in reversed(stack) if entry[1] is not None), None)
                devices.append(PciDevice(busid, node, pci.group(2) or ""))
        stack.append([indent, None])
    if len(nodes) == 1:  # one NUMA node: lstopo hangs the I/O tree on the Machine, beside the Package
        devices = [PciDevice(d.busid, next(iter(nodes)), d.kind) for d in devices]
    return devices


def parse_topology_file(text: str) -> list[PciDevice]:
    """The PCI endpoints of an NCCL topology file (``<system><cpu numaid=N><pci busid=...>``) by NUMA node.

    An endpoint is a ``<pci>`` with no ``<pci>`` inside it: AzNHC's ``grep '<pci.{1,}/>'`` takes the
    self-closing ones, which on Azure's files (azhpc-images topology/ndv5-topo.xml@8e9d055f) are the GPUs
    and HCAs behind each virtual bridge; a GPU written with a ``<gpu>`` child is an endpoint too.
    """
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise ParseError("topology file", f"not XML: {exc}") from None
    if root.tag != "system":
        raise ParseError("topology file", f"expected a <system> root, found <{root.tag}>")
    devices: list[PciDevice] = []
    for cpu in root.iter("cpu"):
        numaid = cpu.get("numaid", "")
        if not numaid.isascii() or not numaid.isdigit():
            raise ParseError("topology file", f"<cpu> without a numeric numaid: {numaid[:20]!r}")
        for pci in cpu.iter("pci"):
            if pci.find("pci") is not None:
                continue
            busid = normalize_busid(pci.get("busid", ""))
            if busid is None:
                raise ParseError("topology file", f"unreadable busid {pci.get('busid', '')[:40]!r}")
            devices.append(PciDevice(busid, int(numaid)))
    if not devices:
        raise ParseError("topology file", "no <cpu numaid=...> with <pci> devices")
    return devices
