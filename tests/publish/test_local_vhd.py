"""A ``file://`` fixed VHD as the version source: the emulator's stand-in for a page blob (what a local build
publishes), checked the way Azure checks an uploaded VHD; real Azure refuses to receive one (exit 2)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from builder.azure import Source, provenance, publish_version
from builder.catalog.loader import load_catalog
from builder.emulator.vhd import FOOTER, MIB, checksum, make_fixed_vhd
from builder.errors import OperationError
from tests.conftest import REPO
from tests.fixtures.emulator import SUBSCRIPTION

IMAGE = "ndh100-train"
ACCOUNT = "/subscriptions/{}/resourceGroups/vhds/providers/Microsoft.Storage/storageAccounts/builderlocalvhds"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(REPO / "images")


def _source(vhd: Path, subscription: str = SUBSCRIPTION) -> Source:
    return Source(vhd_uri=vhd.as_uri(), storage_account_id=ACCOUNT.format(subscription))


def _retype(vhd: Path, disk_type: int) -> Path:
    """Rewrite the footer's disk type (3 = dynamic) with a correct checksum."""
    with open(vhd, "r+b") as handle:
        handle.seek(-FOOTER, 2)
        footer = bytearray(handle.read(FOOTER))
        struct.pack_into(">I", footer, 60, disk_type)
        struct.pack_into(">I", footer, 64, checksum(bytes(footer)))
        handle.seek(-FOOTER, 2)
        handle.write(footer)
    return vhd


def test_file_vhd_publishes_with_its_size_and_same_file_is_a_no_op(arm_emulator, catalog, tmp_path):
    vhd = make_fixed_vhd(tmp_path / "disk.vhd", 1536 * MIB)
    tags = provenance("abc123", "b-1", "f" * 64, "passed")
    result = publish_version(catalog, IMAGE, source=_source(vhd), version="1.0.0", tags=tags,
                             settings=arm_emulator.settings)
    assert result.action == "created" and result.exclude_from_latest is True
    assert result.source == f"vhd {vhd.as_uri()}"
    d = result.definition
    assert d and result.tags["builder.verification"] == "passed"
    raw = arm_emulator.server.emulator.store.get(result.id)
    assert raw["properties"]["storageProfile"]["osDiskImage"]["sizeInGB"] == 2  # 1.5 GiB rounds up
    assert raw["properties"]["storageProfile"]["osDiskImage"]["source"]["uri"] == vhd.as_uri()
    again = publish_version(catalog, IMAGE, source=_source(vhd), version="1.0.0", tags=tags,
                            settings=arm_emulator.settings)
    assert again.action == "unchanged"
    other = make_fixed_vhd(tmp_path / "other.vhd", 2 * MIB)
    with pytest.raises(OperationError, match="already exists from a different source"):
        publish_version(catalog, IMAGE, source=_source(other), version="1.0.0", settings=arm_emulator.settings)


@pytest.mark.parametrize("case, expected", [
    ("missing", "does not exist"),
    ("dynamic", "is a dynamic VHD; Azure needs a fixed VHD"),
    ("odd-size", "is not a whole number of MiB"),
    ("raw", "no 'conectix' footer"),
    ("corrupt", "checksum is wrong"),
    ("truncated", "expected the virtual size"),
    ("other-subscription", "must be in subscription"),
])
def test_emulator_checks_the_local_vhd_like_azure_checks_a_blob(arm_emulator, catalog, tmp_path, case, expected):
    vhd = tmp_path / "disk.vhd"
    subscription = SUBSCRIPTION
    if case == "dynamic":
        _retype(make_fixed_vhd(vhd, 4 * MIB), 3)
    elif case == "odd-size":
        make_fixed_vhd(vhd, 3 * MIB + 4096)
    elif case == "raw":
        vhd.write_bytes(b"\0" * (2 * MIB))
    elif case == "corrupt":
        make_fixed_vhd(vhd, 2 * MIB)
        with open(vhd, "r+b") as handle:
            handle.seek(-FOOTER + 48, 2)
            handle.write(struct.pack(">Q", 3 * MIB))
    elif case == "truncated":
        make_fixed_vhd(vhd, 4 * MIB)
        data = vhd.read_bytes()
        vhd.write_bytes(data[:MIB] + data[-FOOTER:])
    elif case == "other-subscription":
        make_fixed_vhd(vhd, 2 * MIB)
        subscription = "11111111-1111-1111-1111-111111111111"
    with pytest.raises(OperationError, match="InvalidParameter") as info:
        publish_version(catalog, IMAGE, source=_source(vhd, subscription), version="1.0.1",
                        settings=arm_emulator.settings)
    assert expected in str(info.value)
    assert arm_emulator.server.emulator.store.get(
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-ai-images") is not None  # the definition was ensured
    listed = [v for k, v in arm_emulator.server.emulator.store.resources.items() if k.endswith("/versions/1.0.1")]
    assert listed == []


def test_cli_publishes_a_file_vhd_to_the_emulator(run_cli, arm_emulator, tmp_path):
    vhd = make_fixed_vhd(tmp_path / "disk.vhd", 2 * MIB)
    result = run_cli("publish", IMAGE, "--vhd-uri", vhd.as_uri(), "--storage-account-id", ACCOUNT.format(SUBSCRIPTION),
                     "--version", "1.2.3", "--json", env=arm_emulator.env())
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["action"] == "created"


def test_file_vhd_to_real_azure_is_refused_before_any_request(run_cli, tmp_path):
    vhd = make_fixed_vhd(tmp_path / "disk.vhd", 2 * MIB)
    result = run_cli("publish", IMAGE, "--vhd-uri", vhd.as_uri(), "--storage-account-id", ACCOUNT.format("sub"),
                     "--version", "1.2.3", env={"AZURE_SUBSCRIPTION_ID": "sub", "BUILDER_ARM_ENDPOINT": ""})
    assert result.code == 2, result.stderr
    assert "only the local gallery emulator takes file:// sources" in result.stderr
    assert "uploaded to a page blob first (not implemented)" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("uri", ["file://otherhost/x.vhd", "file:///x.img", "ftp://host/x.vhd"])
def test_bad_vhd_uris_are_input_errors(uri):
    from builder.errors import InputError

    with pytest.raises(InputError, match="is not a valid vhd uri"):
        Source(vhd_uri=uri, storage_account_id=ACCOUNT.format("s"))
