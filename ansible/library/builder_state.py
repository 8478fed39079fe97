#!/usr/bin/python
# Written for builder (ansible/): one read-only probe of the target instead of one module call per check.
"""Read the package, unit, account and unpack state of the target in one module call (read-only)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: builder_state
short_description: Read the package, unit, account and unpack state of the target in one call
description:
  - Read-only. Returns what several later tasks would each check with their own module call, so a task whose
    target is already in place can be skipped with a C(when) on the result; a task whose target is not (a
    drifted tree) still runs and repairs it.
  - With O(system) (the default), the dpkg database (every package, its version, selection and state), the
    systemd units enabled through C(/etc/systemd/system/*.wants) or C(*.requires) links (each confirmed with
    C(systemctl is-enabled)) and the accounts in C(/etc/passwd); always the C(.builder-sha256) records of
    unpacked tarballs one level under O(record_roots), the type, owner and mode of O(paths), the text of the
    small files O(read), and optionally the output of C(apt-cache policy).
  - Supports check mode (it changes nothing).
options:
  system:
    description: Read the dpkg database, enabled units and accounts (off, the module only reads O(read) and the like).
    type: bool
    default: true
  record_roots:
    description: Folders whose sub-folders may hold a C(.builder-sha256) unpack record.
    type: list
    elements: path
    default: []
  paths:
    description: Paths to report the type, owner and mode of (not followed when they are links).
    type: list
    elements: path
    default: []
  read:
    description: Small text files (up to 1 MiB each) whose content to return, like several C(slurp) calls at once.
    type: list
    elements: path
    default: []
  policy:
    description: Also return the output of C(apt-cache policy) (the package sources apt has indexed).
    type: bool
    default: false
author: builder maintainers
"""

EXAMPLES = r"""
- name: Read the system state
  builder_state:
    record_roots: [/opt]
    paths: [/etc/apt/keyrings]
  register: state
"""

RETURN = r"""
installed:
  description: C(name=version) of every installed package (dpkg state C(installed)); empty without O(system).
  type: list
  elements: str
  returned: always
installed_names:
  description: Names of the installed packages.
  type: list
  elements: str
  returned: always
known_names:
  description: Names of the packages dpkg knows in any state but C(not-installed) (config files left count).
  type: list
  elements: str
  returned: always
held:
  description: Names of the packages whose selection is C(hold).
  type: list
  elements: str
  returned: always
enabled:
  description: Unit names (with their suffix) that C(systemctl is-enabled) reports as C(enabled).
  type: list
  elements: str
  returned: always
users:
  description: Account name -> login shell, from /etc/passwd.
  type: dict
  returned: always
records:
  description: Folder -> first word of its C(.builder-sha256) record (the sha256 of the unpacked tarball).
  type: dict
  returned: always
paths:
  description: Path -> {exists, isdir, islink, mode, uid, gid} for each of O(paths).
  type: dict
  returned: always
content:
  description: Path -> text of each of O(read) that exists (missing files are left out).
  type: dict
  returned: always
policy:
  description: Output of C(apt-cache policy); empty unless O(policy) is set.
  type: str
  returned: always
"""

import glob  # noqa: E402
import os  # noqa: E402
import stat  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

ENABLEMENT_LINKS = ("/etc/systemd/system/*.wants/*", "/etc/systemd/system/*.requires/*")


def _packages(module: AnsibleModule) -> dict:
    rc, out, err = module.run_command(["dpkg-query", "-W", "-f=${Package}\t${Version}\t${Status}\n"])
    if rc != 0:
        module.fail_json(msg=f"dpkg-query failed: {err.strip()}")
    installed, installed_names, known, held = [], [], [], []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or len(parts[2].split()) != 3:
            continue
        name, version, (want, _flag, state) = parts[0], parts[1], parts[2].split()
        if state == "installed":
            installed.append(f"{name}={version}")
            installed_names.append(name)
        if state != "not-installed":
            known.append(name)
        if want == "hold":
            held.append(name)
    return {"installed": installed, "installed_names": installed_names, "known_names": known, "held": held}


def _enabled(module: AnsibleModule) -> list[str]:
    """Units with an enablement link that ``systemctl is-enabled`` confirms (``enabled`` only: any other
    answer, as for ansible.builtin.systemd_service, leaves the unit to the enabling task)."""
    units = sorted({os.path.basename(link) for pattern in ENABLEMENT_LINKS for link in glob.glob(pattern)})
    if not units:
        return []
    systemctl = module.get_bin_path("systemctl")
    if systemctl is None:
        return []
    _rc, out, _err = module.run_command([systemctl, "is-enabled", "--", *units])
    states = out.split()
    if len(states) != len(units):  # systemctl stops at a unit it cannot find: ask one at a time
        states = [module.run_command([systemctl, "is-enabled", "--", unit])[1].strip() or "unknown"
                  for unit in units]
    return [unit for unit, state in zip(units, states, strict=True) if state == "enabled"]


def _users() -> dict:
    users = {}
    try:
        with open("/etc/passwd", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 7:
                    users[fields[0]] = fields[6]
    except FileNotFoundError:
        pass
    return users


def _records(roots: list[str]) -> dict:
    records = {}
    for root in roots:
        for record in glob.glob(os.path.join(glob.escape(root), "*", ".builder-sha256")):
            try:
                with open(record, encoding="utf-8", errors="replace") as handle:
                    words = handle.read(4096).split()
            except OSError:
                continue
            if words:
                records[os.path.dirname(record)] = words[0]
    return records


def _paths(paths: list[str]) -> dict:
    found = {}
    for path in paths:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            found[path] = {"exists": False}
            continue
        found[path] = {"exists": True, "isdir": stat.S_ISDIR(info.st_mode), "islink": stat.S_ISLNK(info.st_mode),
                       "mode": f"{stat.S_IMODE(info.st_mode):04o}", "uid": info.st_uid, "gid": info.st_gid}
    return found


def _read(paths: list[str]) -> dict:
    found = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                found[path] = handle.read(1 << 20)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            continue
    return found


def main() -> None:
    module = AnsibleModule(
        argument_spec={"system": {"type": "bool", "default": True},
                       "record_roots": {"type": "list", "elements": "path", "default": []},
                       "paths": {"type": "list", "elements": "path", "default": []},
                       "read": {"type": "list", "elements": "path", "default": []},
                       "policy": {"type": "bool", "default": False}},
        supports_check_mode=True,
    )
    system = module.params["system"]
    result = _packages(module) if system else {"installed": [], "installed_names": [], "known_names": [], "held": []}
    result.update(enabled=_enabled(module) if system else [], users=_users() if system else {},
                  records=_records(module.params["record_roots"]),
                  paths=_paths(module.params["paths"]), content=_read(module.params["read"]), policy="")
    if module.params["policy"]:
        rc, out, err = module.run_command(["apt-cache", "policy"])
        if rc != 0:
            module.fail_json(msg=f"apt-cache policy failed: {err.strip()}")
        result["policy"] = out
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
