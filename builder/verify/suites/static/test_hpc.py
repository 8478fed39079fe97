"""Limits, sysctl, Azure agent RDMA, InfiniBand modules, HPC-X, Open MPI, Enroot and Pyxis configuration."""

from __future__ import annotations

import re

import pytest

from builder.verify import probe


def need(expect: dict, *components: str) -> None:
    missing = [c for c in components if c not in expect["components"]]
    if missing:
        pytest.skip(f"image has no {', '.join(missing)}")


def effective_limits(texts: dict[str, str]) -> dict[tuple[str, str], str]:
    """``(type, item) -> value`` for the ``*`` domain, later files winning (pam_limits reads limits.d in order)."""
    limits: dict[tuple[str, str], str] = {}
    for _, text in sorted(texts.items()):
        for line in text.splitlines():
            fields = line.split("#", 1)[0].split()
            if len(fields) == 4 and fields[0] == "*":
                kinds = ("soft", "hard") if fields[1] == "-" else (fields[1],)
                for kind in kinds:
                    limits[(kind, fields[2])] = fields[3]
    return limits


def test_limits(expect, host, check):
    if not expect["limits"]:
        pytest.skip("no limits set by the common role")
    texts = {"/etc/security/limits.conf": probe.read(host, "/etc/security/limits.conf") or "",
             **probe.glob_text(host, "/etc/security/limits.d/*.conf")}
    limits = effective_limits(texts)
    expected = {f"{kind} {item}": str(value) for item, value in expect["limits"].items() for kind in ("soft", "hard")}
    found = {f"{kind} {item}": limits.get((kind, item), "unset") for kind, item in
             (key.split() for key in expected)}
    check.equal(expected, found)


def test_sysctl(expect, host, check):
    if not expect["sysctl"]:
        pytest.skip("no sysctl settings in the common role")
    values = probe.sysctl_files(host)
    check.equal(expect["sysctl"], {key: values.get(key, "unset") for key in expect["sysctl"]})


def test_waagent_rdma(expect, host, check):
    if not expect["infiniband"]:
        pytest.skip("no InfiniBand on the target sizes")
    text = probe.read(host, "/etc/waagent.conf") or ""
    found = [line.strip() for line in text.splitlines() if re.match(r"\s*#?\s*OS\.EnableRDMA\s*=", line)]
    check.that("OS.EnableRDMA=y" in found, "OS.EnableRDMA=y in /etc/waagent.conf", found or "not set")


def test_ib_modules_at_boot(expect, host, check):
    need(expect, "doca_ofed")
    modules = probe.modules_at_boot(host)
    wanted = ["ib_ipoib", "ib_umad"]
    check.equal(wanted, [m for m in wanted if m in modules])


def test_hpcx(expect, host, check):
    need(expect, "hpcx")
    version = expect["components"]["hpcx"]["version"]
    inits = host.run("ls -1d /opt/hpcx*/hpcx-init.sh /opt/hpcx*/*/hpcx-init.sh 2>/dev/null; true").stdout.split()
    modules = host.run("ls -1d /opt/hpcx*/modulefiles/hpcx /opt/hpcx*/*/modulefiles/hpcx 2>/dev/null; "
                       "true").stdout.split()
    resolved = [host.run(f"readlink -f {path}").stdout.strip() for path in inits]
    ok = any(f"v{version}" in path or f"-{version}" in path for path in resolved) and bool(modules)
    check.that(ok, f"HPC-X v{version} with hpcx-init.sh and modulefiles/hpcx under /opt",
               (resolved + modules) or "no HPC-X under /opt")


def test_openmpi(expect, host, check):
    need(expect, "openmpi")
    version = expect["components"]["openmpi"]["version"]
    prefix = f"/opt/openmpi-{version}"
    printed = host.run(f"{prefix}/bin/mpirun --version 2>&1").stdout
    module = f"/usr/share/modules/modulefiles/mpi/openmpi-{version}"
    found = (printed.strip().splitlines() or [f"no {prefix}/bin/mpirun"])[0]
    found += f"; module file {'present' if probe.exists(host, module) else 'missing'}"
    check.that(f"(Open MPI) {version}" in printed and probe.exists(host, module),
               f"mpirun (Open MPI) {version} in {prefix} and the module file {module}", found)


def test_enroot_config(expect, host, check):
    need(expect, "enroot")
    present = probe.exists(host, "/etc/enroot/enroot.conf")
    check.equal("/etc/enroot/enroot.conf present", f"/etc/enroot/enroot.conf {'present' if present else 'missing'}")


def test_pyxis_config(expect, host, check):
    need(expect, "pyxis")
    texts = probe.glob_text(host, "/etc/slurm/plugstack.conf.d/*.conf")
    lines = [f"{path}: {line.strip()}" for path, text in texts.items() for line in text.splitlines()
             if "spank_pyxis.so" in line and not line.strip().startswith("#")]
    check.that(bool(lines), "a plugstack.conf.d entry loading spank_pyxis.so", lines or "none")
