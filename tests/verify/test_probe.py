"""apt source parsing (one-line and deb822) and limits resolution used by the static checks."""

from __future__ import annotations

from builder.verify.probe import parse_deb822, parse_one_line
from builder.verify.suites.static.test_hpc import effective_limits


def test_one_line_sources():
    text = ("# comment\ndeb [arch=amd64 signed-by=/etc/apt/keyrings/builder-cuda.asc] "
            "https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/ /\n"
            "deb http://deb.debian.org/debian bookworm main\n")
    sources = parse_one_line("/etc/apt/sources.list.d/cuda.list", text)
    assert [s.signed_by for s in sources] == ["/etc/apt/keyrings/builder-cuda.asc", None]
    assert sources[0].suites == ["/"] and sources[1].uris == ["http://deb.debian.org/debian"]


def test_deb822_sources():
    text = ("Types: deb\nURIs: https://repo.radeon.com/rocm/apt/6.4.4\nSuites: jammy\nComponents: main\n"
            "Signed-By: /etc/apt/keyrings/builder-rocm.asc\n\n"
            "Types: deb\nURIs: http://example.invalid/x\nSuites: /\nEnabled: no\n")
    sources = parse_deb822("/etc/apt/sources.list.d/rocm.sources", text)
    assert len(sources) == 1
    assert sources[0].signed_by == "/etc/apt/keyrings/builder-rocm.asc" and sources[0].suites == ["jammy"]


def test_effective_limits_later_file_wins_and_dash_sets_both():
    texts = {"/etc/security/limits.conf": "*  soft nofile 1024\n",
             "/etc/security/limits.d/90-builder.conf": "* - nofile 1048576\n* hard memlock unlimited # x\n"}
    limits = effective_limits(texts)
    assert limits[("soft", "nofile")] == limits[("hard", "nofile")] == "1048576"
    assert limits[("hard", "memlock")] == "unlimited" and ("soft", "memlock") not in limits
