"""Faults of the Azure flow that break every real build (found by the project's own review, not published), checked on
the template and the rendered inputs: each test failed on the code that had the fault.

The offline Azure rehearsal (real Packer against the emulator) exercises the same flow end to end; these tests
catch the faults without it."""

from __future__ import annotations

import datetime as dt
import json

import hcl2
import yaml

from builder.catalog.loader import load_catalog
from builder.packer.render import WAIT_SCRIPT, packer_variables
from builder.stack import tags as T
from tests.conftest import REPO

PACKER_DIR = REPO / "images" / "packer"
CATALOG = load_catalog(REPO / "images")
BUILDABLE = sorted(i.name for i in CATALOG.buildable())


def _build() -> dict:
    with (PACKER_DIR / "azure.pkr.hcl").open(encoding="utf-8") as handle:
        return hcl2.load(handle)["build"][0]


def _provisioners() -> list[tuple[str, dict]]:
    return [(kind.strip('"'), body) for entry in _build()["provisioner"] for kind, body in entry.items()]


def _commands(body: dict) -> str:
    """What a shell step runs: its inline lines, or the script file it uploads (``var.wait_script``)."""
    if str(body.get("script", "")).strip('"') == "${var.wait_script}":
        return (PACKER_DIR / WAIT_SCRIPT).read_text()
    return " ".join(str(line) for line in body.get("inline", []))


def test_ansible_escalates_privileges_as_the_build_vms_unprivileged_user():
    """#1: Packer connects as `packer`, which cannot write under /etc: every Ansible run must become root."""
    runs = [body for kind, body in _provisioners() if kind == "ansible"]
    assert runs
    for body in runs:
        assert body["user"].strip('"') == "packer"
        assert '"--become"' in body["extra_arguments"] or "--become" in body["extra_arguments"], body


def test_deprovision_runs_exactly_once_as_the_last_step():
    """#2: the generalize role ran `waagent -deprovision+user` on Azure, then the template ran it again; the first
    run deletes the `packer` user, so the second fails. One deprovision: the template's last shell step."""
    provisioners = _provisioners()
    steps = [i for i, (kind, body) in enumerate(provisioners) if "deprovision" in _commands(body)]
    assert steps == [len(provisioners) - 1]
    playbook = yaml.safe_load((REPO / "ansible" / "image.yml").read_text())
    text = json.dumps(playbook) + "".join(p.read_text() for p in (REPO / "ansible" / "roles").rglob("*.yml"))
    assert "-deprovision" not in text


def test_the_build_waits_for_cloud_init_and_the_apt_locks_before_the_first_apt_call():
    """#3: a fresh marketplace VM is still running cloud-init and apt-daily/unattended-upgrades (azhpc
    packer/scripts/prerequisites.sh:27-53@8e9d055fb9e1): wait and stop them before Ansible runs apt."""
    provisioners = _provisioners()
    first_ansible = next(i for i, (kind, _) in enumerate(provisioners) if kind == "ansible")
    before = " ".join(_commands(body) for _, body in provisioners[:first_ansible])
    assert "cloud-init status --wait" in before
    for unit in ("apt-daily.timer", "apt-daily-upgrade.timer", "unattended-upgrades"):
        assert unit in before
    assert "/var/lib/dpkg/lock-frontend" in before and "/var/lib/apt/lists/lock" in before


def test_verification_is_passed_only_when_the_hardware_suite_ran():
    """#4: the version was tagged `passed` at capture although only the static suite ran on a non-GPU build VM;
    the hardware result belongs to the validation step, so such a version is captured `pending`."""
    for name in BUILDABLE:
        model = CATALOG.model(name)
        values = packer_variables(CATALOG, name, REPO / ".tmp-unused", commit="c" * 40, today=dt.date(2026, 12, 1))
        hardware_on_build_vm = "hardware" in model.tests.suites and model.build.vm_size in model.target_skus
        static_only = values["verify_command"].endswith(" static")
        assert static_only != hardware_on_build_vm, name
        expected = T.VERIFIED if hardware_on_build_vm else "pending"
        assert values["azure_tags"][T.VERIFICATION] == expected, name


def test_build_timeout_is_sized_like_azhpc():
    """#5: azhpc budgets 360 minutes for its image builds (azure-pipelines.yml@8e9d055fb9e1); the MI300X build
    compiles Open MPI."""
    for name in BUILDABLE:
        assert CATALOG.model(name).build.timeout_minutes >= 360, name
