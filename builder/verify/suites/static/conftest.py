"""Static checks read /root, /etc/shadow-adjacent files and dpkg state: they need root on the host."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def _as_root(host) -> None:
    uid = host.run("id -u").stdout.strip()
    if uid != "0":
        pytest.fail(f"expected root on the host (static checks read /root and /home), found uid {uid or '?'}; "
                    "connect as root or pass --sudo")
