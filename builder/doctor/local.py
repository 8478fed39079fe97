"""Tool checks: what the local target (debootstrap, QEMU/OVMF, ...) and the Azure target (Packer, its plugins,
Ansible) run, found the way the build itself finds them.

- Local tools and OVMF: ``builder.local.preflight`` (its tables and ``missing()``), the check a local build makes
  before it starts; root as the same preflight asks for it.
- Packer: ``builder.packer.driver.find_packer`` with the template's floor (``builder.packer.azure.minimum_packer``:
  ``required_version`` of images/packer/azure.pkr.hcl).
- Packer plugins: the template's ``required_plugins`` (source and version constraint) against
  ``packer plugins installed``, run with the environment the driver gives Packer (``driver.packer_env``).
- Ansible: the local target runs ``ansible-playbook`` beside the Python that runs builder (``builder.converge``);
  Packer's Ansible provisioner runs ``ansible-playbook`` from ``PATH``. The ``ansible`` package's floor is
  pyproject.toml's (``ansible>=10``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from builder.doctor.checks import Check, missed, passed
from builder.errors import OperationError
from builder.versions import at_least, parse

SETUP_FIX = "install with `sudo bash .ci/setup`"
ANSIBLE_MINIMUM = "10"  # pyproject.toml: "ansible>=10"
PLUGINS_FIX = ("`packer plugins install {source}` (downloads it from GitHub), or `bash .ci/setup` for the plugins "
               "it builds into .venv/packer-plugins (run with PACKER_PLUGIN_PATH=$PWD/.venv/packer-plugins; "
               "docs/azure.md, The real tools)")


def _where(tool: str) -> str | None:
    """Path of ``tool`` as preflight finds it (``PATH``, then /usr/sbin)."""
    found = shutil.which(tool)
    if found:
        return found
    sbin = Path(f"/usr/sbin/{tool}")
    return str(sbin) if sbin.exists() else None


def local_checks(feed: str = "upstream", boot: bool = True, euid: int | None = None) -> list[Check]:
    """Root and every tool a local build with ``feed`` (and the boot test when ``boot``) needs."""
    from builder.local.pipeline import BuildOptions
    from builder.local.preflight import BOOT_TOOLS, OVMF, STANDIN_TOOLS, TOOLS, missing

    options = BuildOptions(image="doctor", state_dir=Path("."), feed=feed, boot=boot)
    absent = missing(options)
    uid = os.geteuid() if euid is None else euid
    checks = [passed("root", "running as root") if uid == 0 else
              missed("root", f"running as uid {uid}", "local builds need root (debootstrap, chroot, mounts): run "
                     "as root, e.g. `sudo .venv/bin/builder build ...`")]
    needed = dict(TOOLS)
    if feed == "stand-in":
        needed.update(STANDIN_TOOLS)
    if boot:
        needed.update(BOOT_TOOLS)
    for tool, package in sorted(needed.items()):
        if tool in absent:
            checks.append(missed(tool, "not found on PATH or in /usr/sbin",
                                 f"{SETUP_FIX} (or `sudo apt-get install {package}`)"))
        else:
            checks.append(passed(tool, _where(tool) or "found"))
    if boot:
        if str(OVMF) in absent:
            checks.append(missed("ovmf", f"{OVMF} missing", f"{SETUP_FIX} (or `sudo apt-get install ovmf`)"))
        else:
            checks.append(passed("ovmf", str(OVMF)))
    checks.append(ansible_check(for_packer=False))
    return checks


def ansible_check(for_packer: bool) -> Check:
    """``ansible-playbook`` where the target runs it, and the ``ansible`` package's version."""
    name = "ansible-playbook"
    if for_packer:
        path = shutil.which("ansible-playbook")
        where = "on PATH (Packer's Ansible provisioner runs it from there)"
        fix = ("put the project venv on PATH (`export PATH=$PWD/.venv/bin:$PATH`) after `bash .ci/setup`, or "
               "install ansible>=10 there")
    else:
        candidate = Path(sys.executable).parent / "ansible-playbook"
        path = str(candidate) if candidate.exists() else None
        where = f"beside {sys.executable} (where builder converge runs it)"
        fix = "reinstall the project venv: `bash .ci/setup` (pyproject.toml pins ansible>=10)"
    if not path:
        return missed(name, f"not found {where}", fix)
    try:
        version = metadata.version("ansible")
    except metadata.PackageNotFoundError:
        version = None
    if version is None or not at_least(version, ANSIBLE_MINIMUM):
        return missed(name, f"{path}; ansible package {version or 'not installed'} in builder's Python",
                      f"ansible >= {ANSIBLE_MINIMUM} is needed: {fix}")
    return passed(name, f"{path} (ansible {version})")


def satisfies(version: str, constraint: str) -> bool:
    """``version`` meets a HashiCorp version constraint: comma-separated ``~>``, ``>=``, ``>``, ``<=``, ``<``,
    ``=``/``!=``. ``~> X.Y`` allows X.Y and later within X (the last given segment may grow)."""
    have = parse(version)
    for part in constraint.split(","):
        found = re.fullmatch(r"\s*(~>|>=|<=|!=|>|<|=)?\s*v?([0-9][0-9.]*)\s*", part)
        if not found:
            return False
        op, want_text = found.group(1) or "=", found.group(2)
        want = parse(want_text)
        width = max(len(have), len(want))
        a, b = have + (0,) * (width - len(have)), want + (0,) * (width - len(want))
        if op == "~>":
            keep = max(len(want) - 1, 1)
            if not (a >= b and a[:keep] == b[:keep]):
                return False
        elif not {">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b, "=": a == b, "!=": a != b}[op]:
            return False
    return True


def required_plugins(template: Path) -> list[tuple[str, str]]:
    """``(source, version constraint)`` of each plugin in the template's ``required_plugins`` block."""
    text = template.read_text(encoding="utf-8")
    block = re.search(r"required_plugins\s*\{(.*?)\n\s*\}\s*\n\s*\}", text, re.S)
    if not block:
        return []
    return re.findall(r'source\s*=\s*"([^"]+)"\s*version\s*=\s*"([^"]+)"', block.group(1))


def installed_plugins(packer: str) -> dict[str, list[str]]:
    """``packer plugins installed``: source -> versions (from the binaries' names,
    ``.../github.com/hashicorp/ansible/packer-plugin-ansible_v1.1.2_x5.0_linux_amd64``)."""
    from builder.packer.driver import packer_env

    out = subprocess.run([packer, "plugins", "installed"], capture_output=True, text=True, timeout=60,
                         check=False, env=packer_env())
    found: dict[str, list[str]] = {}
    for line in out.stdout.splitlines():
        match = re.search(r"((?:[^/\s]+/){2}[^/\s]+)/packer-plugin-[^_/\s]+_v([0-9]+\.[0-9]+\.[0-9]+)", line)
        if match:
            found.setdefault(match.group(1).lower(), []).append(match.group(2))
    return found


def packer_checks(catalog) -> list[Check]:
    """Packer (version floor of the template) and each plugin the template requires."""
    from builder.packer import driver
    from builder.packer.azure import minimum_packer
    from builder.packer.render import TEMPLATE_FILES, template_dir

    directory = template_dir(catalog)
    minimum = minimum_packer(directory)
    try:
        binary = driver.find_packer(minimum)
    except OperationError as exc:
        return [missed("packer", str(exc).split(";")[0], driver.INSTALL_HINT + f" (>= {minimum}; "
                       "`bash .ci/setup` builds 1.16.0 as .venv/bin/packer)")]
    checks = [passed("packer", f"{binary.path} {binary.version} (template needs >= {minimum})")]
    installed = installed_plugins(binary.path)
    for source, constraint in required_plugins(directory / TEMPLATE_FILES[0]):
        name = f"plugin {source.rsplit('/', 1)[-1]}"
        versions = installed.get(source.lower(), [])
        good = [v for v in versions if satisfies(v, constraint)]
        if good:
            checks.append(passed(name, f"{source} {max(good, key=parse)} (template: {constraint})"))
        else:
            seen = f"installed: {', '.join(versions)}" if versions else "not installed"
            checks.append(missed(name, f"{source} {seen}; template needs {constraint}",
                                 PLUGINS_FIX.format(source=source)))
    return checks


def azure_tool_checks(catalog) -> list[Check]:
    return [*packer_checks(catalog), ansible_check(for_packer=True)]
