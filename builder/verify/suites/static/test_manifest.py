"""The build manifest inside the image (``/etc/builder/image.json``) names this image, version and stack."""

from __future__ import annotations

import json
import re

import pytest

from builder.verify import probe
from builder.verify.manifest import MANIFEST_PATH, VERSION_PATTERN


@pytest.fixture(scope="module")
def manifest(host):
    text = probe.read(host, MANIFEST_PATH)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return {"unparsable": text[:200]}


def need(manifest) -> dict:
    if manifest is None:
        pytest.fail(f"expected {MANIFEST_PATH}, found none")
    return manifest


def test_present(manifest, check):
    found = "missing" if manifest is None else ("unparsable JSON" if "unparsable" in manifest else "valid JSON")
    check.equal("valid JSON", found)


def test_image(expect, manifest, check):
    check.equal(expect["image"], need(manifest).get("image"))


def test_version(expect, manifest, check):
    found = need(manifest).get("version")
    if expect["version"]:
        check.equal(expect["version"], found)
    else:
        check.that(bool(re.fullmatch(VERSION_PATTERN, str(found))), "a YYYY.MMDD.N version", found)


def test_components(expect, manifest, check):
    check.equal(expect["component_versions"], need(manifest).get("components"))


def test_git_commit(manifest, check):
    found = need(manifest).get("git_commit")
    check.that(bool(re.match(r"^[0-9a-f]{7,40}(-dirty)?$", str(found))), "a git commit id", found)
