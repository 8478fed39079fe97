"""Image hygiene after the generalize role: nothing host-specific, personal or secret is captured."""

from __future__ import annotations

import pytest

from builder.verify import probe

pytestmark = pytest.mark.hygiene

VAR_LOG_MAX_KIB = 1024  # generalize truncates logs; what is left is empty files and directories
SECRET_DIRS = "/root /home /etc /tmp /var/tmp /opt /usr/local/etc"
SECRET_PATTERNS = ("PRIVATE KEY-----", "client_secret", "CLIENT_SECRET=", "AccountKey=", "SharedAccessSignature=")


def lines(host, command: str) -> list[str]:
    return [line for line in host.run(command).stdout.splitlines() if line.strip()]


def test_no_ssh_host_keys(host, check):
    check.equal([], lines(host, "ls -1 /etc/ssh/ssh_host_* 2>/dev/null; true"))


def test_machine_id_empty(host, check):
    size = host.run("stat -c %s /etc/machine-id 2>/dev/null").stdout.strip() or "missing"
    dbus = host.run("if [ -L /var/lib/dbus/machine-id ] || [ ! -s /var/lib/dbus/machine-id ]; then echo ok; "
                    "else echo populated; fi").stdout.strip()
    check.equal("/etc/machine-id 0 bytes, dbus id ok", f"/etc/machine-id {size} bytes, dbus id {dbus}")


def test_no_authorized_keys(host, check):
    check.equal([], lines(host, "find /root /home -name 'authorized_keys*' 2>/dev/null; true"))


def test_no_shell_history(host, check):
    check.equal([], lines(host, "find /root /home -maxdepth 2 -name '.*history' -size +0 2>/dev/null; true"))


def test_no_secrets(host, check):
    patterns = " ".join(f"-e '{p}'" for p in SECRET_PATTERNS)
    # SSH host keys have their own check; the snakeoil key is as host-specific and counts here.
    found = lines(host, f"grep -rIlsF --exclude='ssh_host_*' {patterns} {SECRET_DIRS} 2>/dev/null; true")
    check.equal([], found)


def test_no_module_signing_keys(host, check):
    """DKMS' private module signing keys (made on the build VM; outside SECRET_DIRS): anyone holding the image
    could sign modules for every VM that enrolled the key."""
    check.equal([], [path for path in probe.MOK_PRIVATE_KEYS if host.file(path).exists])


def test_no_build_user(host, check):
    users = [line.split(":")[0] for line in (probe.read(host, "/etc/passwd") or "").splitlines()
             if line.count(":") >= 6 and 1000 <= int(line.split(":")[2]) < 65534]
    check.equal([], users)


def test_apt_cleaned(host, check):
    found = lines(host, "find /var/lib/apt/lists /var/cache/apt -type f ! -name lock 2>/dev/null | head -20; true")
    check.equal([], found)


def test_var_log_small(host, check):
    out = host.run("du -sk /var/log 2>/dev/null").stdout.split()
    size = int(out[0]) if out else 0
    check.that(size <= VAR_LOG_MAX_KIB, f"/var/log <= {VAR_LOG_MAX_KIB} KiB", f"{size} KiB")


def test_no_build_trees(host, check):
    """Source trees the build unpacked and compiled in (Open MPI, Pyxis under /usr/local/src, each marked by its
    unpack record) are only the build's: what the image runs was installed elsewhere (/opt, /usr/local/lib)."""
    found = lines(host, "find /usr/local/src -mindepth 2 -maxdepth 2 -name .builder-sha256 2>/dev/null; true")
    check.equal([], sorted(path.rsplit("/", 1)[0] for path in found))
