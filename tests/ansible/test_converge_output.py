"""builder.converge: tags and the failure messages it extracts from ansible-playbook output."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import builder.converge as converge_module
from builder.converge import _failure
from builder.errors import OperationError
from builder.rootfs import mounts_under
from builder.stack.layers import FINAL_ROLES, LAYERS, MANIFEST_TAG, TAGS
from tests.conftest import is_root


def test_tags_are_layers_then_the_manifest_then_final_roles():
    assert list(TAGS) == [layer.name for layer in LAYERS] + [MANIFEST_TAG] + list(FINAL_ROLES)


def test_failure_reason_from_fatal_and_loop_lines():
    assert _failure('fatal: [rootfs]: FAILED! => {"msg": "The checksum for x did not match"}') == \
        "The checksum for x did not match"
    assert _failure('failed: [rootfs] (item=/a) => {"msg": "first\\nlast line"}') == "last line"
    assert _failure('fatal: [rootfs]: UNREACHABLE! => {"msg": "chroot not found"}') == "chroot not found"
    # ansible-core 2.19 include_vars: a generic msg, the reason in `message` (sample from a real run)
    assert _failure('fatal: [rootfs]: FAILED! => {"changed": false, "message": "Could not find or access '
                    '\'missing.yml\'\\nSearched in:\\n\\t/x/vars/missing.yml", "msg": "Task failed: Action failed: '
                    'Unknown error."}') == "Could not find or access 'missing.yml'"


def _broken_playbook(tmp_path: Path, monkeypatch) -> Path:
    """A copy of ansible/ whose `common` role does not parse: ansible-playbook fails before any task runs."""
    ansible = tmp_path / "ansible"
    shutil.copytree(converge_module.ANSIBLE_DIR, ansible)
    (ansible / "roles/common/tasks/main.yml").write_text("- name: Broken\n  ansible.builtin.debug: {msg: [open\n")
    monkeypatch.setattr(converge_module, "ANSIBLE_DIR", ansible)
    monkeypatch.setattr(converge_module, "PLAYBOOK", ansible / "image.yml")
    root = tmp_path / "rootfs"
    for folder in ("usr/bin", "etc"):
        (root / folder).mkdir(parents=True)
    return root


@pytest.mark.root
def test_error_outside_a_task_gives_its_text_and_origin(tmp_path, monkeypatch):
    if not is_root():
        pytest.skip("converges need root (mounts)")
    root = _broken_playbook(tmp_path, monkeypatch)
    variables = tmp_path / "ansible-vars.yml"
    variables.write_text("builder_image: ndh100-train\npackage_feed_base: ''\n")
    with pytest.raises(OperationError) as raised:
        converge_module.converge(root, variables, log=tmp_path / "converge.log", tags=["base"])
    message = str(raised.value)
    assert "ansible-playbook exited" in message
    assert "task '" not in message  # no task had started
    assert "YAML parsing failed" in message, message
    assert "(at ansible/roles/common/tasks/main.yml:" in message, message
    assert mounts_under(root) == []
