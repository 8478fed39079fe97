"""Small read-only queries the static suite runs on a testinfra host (chroot, SSH, local, docker)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

DPKG_FORMAT = r"${Package}\t${Version}\t${Status}\n"


@dataclass(frozen=True)
class Installed:
    name: str
    version: str
    status: str  # e.g. "hold ok installed", "install ok installed", "deinstall ok config-files"

    @property
    def installed(self) -> bool:
        return self.status.endswith(" installed")

    @property
    def held(self) -> bool:
        return self.status.startswith("hold ")


def dpkg_status(host: Any) -> dict[str, Installed]:
    """Every package dpkg knows, with its version and selection/status."""
    out = host.run(f"dpkg-query -W -f='{DPKG_FORMAT}'").stdout
    packages = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            packages[parts[0]] = Installed(*parts)
    return packages


@dataclass
class Source:
    file: str
    types: list[str]
    uris: list[str]
    suites: list[str]
    options: dict[str, str] = field(default_factory=dict)

    @property
    def signed_by(self) -> str | None:
        return self.options.get("signed-by")


def parse_one_line(file: str, text: str) -> list[Source]:
    """``deb [opt=val ...] uri suite [components]`` lines of a ``.list`` file."""
    sources = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith(("deb ", "deb-src ", "deb\t")):
            continue
        kind, rest = line.split(None, 1)
        options: dict[str, str] = {}
        if rest.startswith("["):
            opts, _, rest = rest[1:].partition("]")
            for item in opts.split():
                key, _, value = item.partition("=")
                options[key.lower()] = value
        words = rest.split()
        if words:
            sources.append(Source(file, [kind], [words[0]], words[1:2], options))
    return sources


def parse_deb822(file: str, text: str) -> list[Source]:
    """Stanzas of a deb822 ``.sources`` file (``Enabled: no`` stanzas are skipped)."""
    sources = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for raw in stanza.splitlines():
            if raw.startswith("#") or not raw.strip():
                continue
            if raw[0] in " \t" and key:
                fields[key] += "\n" + raw.strip()
                continue
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if not fields.get("uris") or fields.get("enabled", "yes").lower() == "no":
            continue
        options = {k: v for k, v in fields.items() if k not in ("types", "uris", "suites", "components")}
        sources.append(Source(file, fields.get("types", "").split(), fields["uris"].split(),
                              fields.get("suites", "").split(), options))
    return sources


def apt_sources(host: Any) -> list[Source]:
    """All apt sources configured on the host (``sources.list``, ``*.list``, ``*.sources``)."""
    files = host.run("ls -1 /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources "
                     "2>/dev/null || true").stdout.split()
    sources: list[Source] = []
    for path in files:
        text = read(host, path) or ""
        sources += parse_deb822(path, text) if path.endswith(".sources") else parse_one_line(path, text)
    return sources


def read(host: Any, path: str) -> str | None:
    """A file's text, or None when it does not exist."""
    result = host.run(f"cat {shlex.quote(path)} 2>/dev/null")
    return result.stdout if result.rc == 0 else None


def glob_text(host: Any, pattern: str) -> dict[str, str]:
    """Text of every file matching a shell glob (``/etc/modprobe.d/*.conf``)."""
    files = host.run(f"for f in {pattern}; do [ -f \"$f\" ] && echo \"$f\"; done; true").stdout.split()
    return {path: read(host, path) or "" for path in files}


def unit_state(host: Any, unit: str) -> str:
    """``systemctl is-enabled`` answer (works offline in a chroot): enabled, disabled, masked, not-found..."""
    result = host.run(f"systemctl is-enabled {shlex.quote(unit)} 2>&1")
    text = result.stdout.strip().splitlines()
    answer = text[-1] if text else ""
    if "No such file" in answer or "not-found" in answer or not answer:
        return "not-found"
    return answer


def exists(host: Any, path: str) -> bool:
    return host.run(f"test -e {shlex.quote(path)}").rc == 0


def sysctl_files(host: Any) -> dict[str, str]:
    """``key -> value`` from ``/etc/sysctl.d/*.conf`` as applied at boot (later files win)."""
    values: dict[str, str] = {}
    for _, text in sorted(glob_text(host, "/etc/sysctl.d/*.conf").items()):
        for line in text.splitlines():
            key, sep, value = line.split("#", 1)[0].partition("=")
            if sep:
                values[key.strip()] = value.strip()
    return values


def modules_at_boot(host: Any) -> set[str]:
    """Kernel modules listed in ``/etc/modules-load.d/*.conf`` (``-`` and ``_`` are the same to modprobe)."""
    return {line.strip().replace("-", "_") for text in glob_text(host, "/etc/modules-load.d/*.conf").values()
            for line in text.splitlines() if line.strip() and not line.lstrip().startswith(("#", ";"))}


def blacklisted_modules(host: Any) -> set[str] | None:
    """Modules the modprobe configuration deny-lists (``modprobe -c``: kmod's own reading of every modprobe.d
    directory), or None when the host has no modprobe. systemd-modules-load skips a deny-listed module even when
    /etc/modules-load.d names it: it loads with KMOD_PROBE_APPLY_BLACKLIST ("Module '%s' is deny-listed (by
    kmod)", systemd/systemd src/shared/module-util.c@0f42bd35594b)."""
    result = host.run("modprobe -c 2>/dev/null")
    if result.rc != 0 and not result.stdout:
        return None
    return {parts[1].replace("-", "_") for line in result.stdout.splitlines()
            if len(parts := line.split()) == 2 and parts[0] == "blacklist"}


def loaded_at_boot(host: Any) -> tuple[set[str], set[str]]:
    """(modules /etc/modules-load.d names, those of them systemd-modules-load would skip as deny-listed)."""
    listed = modules_at_boot(host)
    return listed, listed & (blacklisted_modules(host) or set())


# Module signing keys DKMS makes on the build VM (dkms 3.0.10, /usr/sbin/dkms prepare_signing@Debian
# 3.0.10-8+deb12u1): Ubuntu's update-secureboot-policy pair, else a self-signed "CN=DKMS module signing key".
# A VM deployed from the image has neither enrolled, so Secure Boot refuses what they sign; the private halves
# are secrets.
MOK_PRIVATE_KEYS = ("/var/lib/shim-signed/mok/MOK.priv", "/var/lib/dkms/mok.key")
MOK_CERTIFICATES = ("/var/lib/shim-signed/mok/MOK.der", "/var/lib/dkms/mok.pub")
DKMS_DEFAULT_SIGNER = "DKMS module signing key"
OUT_OF_TREE_DIRS = ("updates", "extra")  # where DKMS (updates/dkms) and vendor packages put their modules


def kernels(host: Any) -> list[str]:
    """Kernel releases the image boots (``/boot/vmlinuz-<release>`` with a ``/lib/modules/<release>`` tree)."""
    out = host.run("for f in /boot/vmlinuz-*; do r=${f#/boot/vmlinuz-}; [ -d \"/lib/modules/$r\" ] && echo \"$r\"; "
                   "done; true").stdout
    return sorted(set(out.split()))


def boot_module_files(host: Any, release: str) -> tuple[dict[str, str], list[str]]:
    """({module file: why it is loaded}, names that resolve to no file) for one kernel: every module
    /etc/modules-load.d names, and every out-of-tree module (DKMS' updates/dkms, vendors' extra/), which
    udev loads when the device is found."""
    files: dict[str, str] = {}
    missing: list[str] = []
    for name in sorted(modules_at_boot(host)):
        result = host.run(f"modinfo -k {shlex.quote(release)} -n {shlex.quote(name)} 2>/dev/null")
        path = result.stdout.strip()
        if result.rc != 0 or not path.startswith("/"):
            missing.append(name)
        else:
            files[path] = f"{name} (modules-load.d)"
    dirs = " ".join(shlex.quote(f"/lib/modules/{release}/{d}") for d in OUT_OF_TREE_DIRS)
    found = host.run(f"find {dirs} -name '*.ko*' -type f 2>/dev/null; true").stdout.split()
    for path in sorted(found):
        files.setdefault(path, "out-of-tree")
    return files, missing


def module_signers(host: Any, files: list[str]) -> dict[str, str]:
    """Each module file's signer as ``modinfo -F signer`` prints it ("" for an unsigned module)."""
    if not files:
        return {}
    quoted = " ".join(shlex.quote(f) for f in files)
    out = host.run(f'for f in {quoted}; do echo "$f|$(modinfo -F signer "$f" 2>/dev/null)"; done').stdout
    pairs = (line.partition("|") for line in out.splitlines() if "|" in line)
    return {path: signer.strip() for path, _, signer in pairs}


def build_local_signers(host: Any) -> set[str]:
    """Common names of module signing certificates made on the build VM, and DKMS' default one."""
    names = {DKMS_DEFAULT_SIGNER}
    for cert in MOK_CERTIFICATES:
        out = host.run(f"openssl x509 -inform DER -in {shlex.quote(cert)} -noout -subject 2>/dev/null").stdout
        if match := re.search(r"CN\s*=\s*([^,/\n]+)", out):
            names.add(match.group(1).strip())
    return names


UNIT_DIRS = ("/etc/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")


def exec_start(host: Any, unit: str) -> list[str] | None:
    """The command line of a unit's effective ``ExecStart=`` (the first unit file found in systemd's lookup order,
    then its ``.d/*.conf`` drop-ins, where an empty ``ExecStart=`` resets the list; systemd.service(5)), without
    systemd's ``-@:+!`` prefixes; None when no unit file is found."""
    main = next((text for folder in UNIT_DIRS if (text := read(host, f"{folder}/{unit}")) is not None), None)
    if main is None:
        return None
    texts = [main] + [t for _, t in sorted(glob_text(host, f"/etc/systemd/system/{unit}.d/*.conf").items())]
    commands: list[str] = []
    for text in texts:
        for line in text.splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key.strip() == "ExecStart":
                commands = [value.strip()] if value.strip() else []
    if not commands:
        return []
    argv = shlex.split(commands[-1])
    if argv:
        argv[0] = argv[0].lstrip("-@:+!")
    return argv


def executable(host: Any, path: str) -> bool:
    """``path`` (links followed) is an executable file."""
    return host.run(f"test -f {shlex.quote(path)} && test -x {shlex.quote(path)}").rc == 0
