"""builder.converge: tags and the failure messages it extracts from ansible-playbook output."""

from __future__ import annotations

from builder.converge import TAGS, _failure
from builder.layers import FINAL_ROLES, LAYERS


def test_tags_are_layers_plus_final_roles():
    assert list(TAGS) == [layer.name for layer in LAYERS] + list(FINAL_ROLES)


def test_failure_reason_from_fatal_and_loop_lines():
    assert _failure('fatal: [rootfs]: FAILED! => {"msg": "The checksum for x did not match"}') == \
        "The checksum for x did not match"
    assert _failure('failed: [rootfs] (item=/a) => {"msg": "first\\nlast line"}') == "last line"
    assert _failure('fatal: [rootfs]: UNREACHABLE! => {"msg": "chroot not found"}') == "chroot not found"
