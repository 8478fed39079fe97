"""The Azure build path against a gallery (the local ARM emulator): version numbers from the gallery, the base
version tag (marketplace ``latest`` resolved through the SDK, the parent version of layered builds), and the SBOM
produced on the build VM, recorded in the build and tagged on the staged version."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys

import pytest

from builder.azure import Source, publish_version
from builder.azure.publish import next_free_version, tag_version
from builder.catalog.loader import load_catalog
from builder.diff import digest, sbom_packages
from builder.errors import OperationError
from builder.outdated import BASE_VERSION_TAG
from builder.packer.azure import BuildArtifact, azure_build, newest_marketplace_version, record_sbom, resolve_version
from builder.packer.render import SBOM_FILE, SBOM_SCRIPT, packer_variables, var_file_name
from builder.stack import tags as T
from builder.versioning import day_prefix
from tests.conftest import REPO

CATALOG = load_catalog(REPO / "images")
IMAGE = "nct4-infer"  # marketplace base microsoft-dsvm:ubuntu-2204:2204-gen2:latest
SRC = "/subscriptions/s/resourceGroups/rg-build/providers/Microsoft.Compute/images/{}"
MARKET = ["22.04.2025010101", "22.04.2025112001", "22.04.2025090101"]


def _today() -> str:
    return day_prefix(dt.datetime.now(dt.UTC).date())


def _publish(emulator, image: str, version: str, **tags: str):
    return publish_version(CATALOG, image, source=Source(managed_image_id=SRC.format(f"{image}-{version}")),
                           version=version, tags=tags, settings=emulator.settings)


def _seed_marketplace(emulator, image: str = IMAGE, versions=MARKET) -> None:
    m = CATALOG.model(image).base.marketplace
    emulator._control("PUT", f"marketplace/{m.publisher}/{m.offer}/{m.sku}", {"versions": list(versions)})


def _dry_run(emulator, tmp_path, image: str = IMAGE, **kwargs) -> tuple[BuildArtifact, dict, list[str]]:
    said: list[str] = []
    out = tmp_path / "out"
    artifact = azure_build(CATALOG, image, out_dir=out, dry_run=True, auth="cli", packer=str(tmp_path / "no-packer"),
                           settings=emulator.settings if emulator else None,
                           on_event=lambda e: said.append(e.text) if e.kind == "say" else None, **kwargs)
    return artifact, json.loads((out / var_file_name(image)).read_text()), said


# ---------------------------------------------------------------- the tag scheme


def test_tag_names_are_written_once_in_builder_stack_tags():
    """One tag vocabulary: no module but builder/stack/tags.py spells a tag name (``builder.*``, ``component.``)."""
    import ast
    import re

    from builder.paths import PACKAGE

    pattern = re.compile(r"^(builder\.[a-z_]+|component\.)$")
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "stack" / "tags.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and pattern.match(node.value):
                module = PACKAGE.parent / node.value.replace(".", "/")
                if module.is_dir() or module.with_suffix(".py").is_file():
                    continue  # a module name (builder.data), not a tag
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.value}")
    assert found == []
    assert BASE_VERSION_TAG is T.BASE_VERSION


def test_rendered_base_version_tag(tmp_path):
    unresolved = packer_variables(CATALOG, IMAGE, tmp_path, commit="c")
    assert unresolved["marketplace"]["version"] == "latest" and T.BASE_VERSION not in unresolved["azure_tags"]
    pinned = packer_variables(CATALOG, IMAGE, tmp_path, commit="c", marketplace_version="22.04.2025112001")
    assert pinned["marketplace"]["version"] == "22.04.2025112001"
    assert pinned["azure_tags"][T.BASE_VERSION] == "22.04.2025112001"
    layered = packer_variables(CATALOG, "ndh100-train-layered", tmp_path, commit="c",
                               base_versions={"gpu-base": "2026.1101.3"})
    assert layered["azure_tags"][T.BASE_VERSION] == "2026.1101.3"
    assert T.BASE_VERSION not in packer_variables(CATALOG, "ndh100-train-layered", tmp_path, commit="c")["azure_tags"]


# ---------------------------------------------------------------- version numbers


def test_next_free_version_is_what_publish_picks(arm_emulator):
    today = _today()
    assert next_free_version(CATALOG, IMAGE, arm_emulator.settings) == f"{today}.0"  # no gallery yet
    _publish(arm_emulator, IMAGE, f"{today}.0")
    _publish(arm_emulator, IMAGE, f"{today}.3")
    _publish(arm_emulator, IMAGE, "2020.101.9")
    assert next_free_version(CATALOG, IMAGE, arm_emulator.settings) == f"{today}.4"
    auto = publish_version(CATALOG, IMAGE, source=Source(managed_image_id=SRC.format("auto")),
                           settings=arm_emulator.settings)
    assert auto.version == f"{today}.4"
    assert resolve_version(CATALOG, IMAGE, arm_emulator.settings, [f"{today}.9"]) == (f"{today}.5", "gallery")
    assert resolve_version(CATALOG, IMAGE, None, [f"{today}.9"]) == (f"{today}.10", "local")


def test_azure_build_numbers_from_the_gallery_and_pins_latest_base(arm_emulator, tmp_path):
    today = _today()
    _seed_marketplace(arm_emulator)
    _publish(arm_emulator, IMAGE, f"{today}.0")
    artifact, values, said = _dry_run(arm_emulator, tmp_path)
    assert artifact.version == f"{today}.1" and artifact.version_source == "gallery"
    assert values["image_version"] == f"{today}.1" and values["azure_tags"]["builder.version"] == f"{today}.1"
    assert values["marketplace"]["version"] == "22.04.2025112001"  # the newest, by number
    assert values["azure_tags"][T.BASE_VERSION] == "22.04.2025112001" == artifact.base_version
    assert any("next free number in gallery" in line for line in said)
    assert any("latest is 22.04.2025112001" in line for line in said)


def test_azure_build_without_gallery_says_it_numbers_locally(tmp_path, monkeypatch):
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    artifact, values, said = _dry_run(None, tmp_path, local_versions=[f"{_today()}.2"])
    assert artifact.version == f"{_today()}.3" and artifact.version_source == "local"
    assert any("no gallery configured" in line and "local registry" in line for line in said)
    assert values["marketplace"]["version"] == "latest" and artifact.base_version is None


def test_marketplace_without_versions_is_an_operation_error(arm_emulator, tmp_path):
    with pytest.raises(OperationError, match="lists no versions"):
        newest_marketplace_version(CATALOG.model(IMAGE), arm_emulator.settings)
    with pytest.raises(OperationError, match="lists no versions"):
        _dry_run(arm_emulator, tmp_path)
    assert not (tmp_path / "out").exists()


def test_two_fresh_runners_get_different_numbers(run_cli, arm_emulator, tmp_path):
    """The CI case: each release job starts with an empty local registry; the gallery keeps them apart."""
    _seed_marketplace(arm_emulator)
    first = run_cli("build", IMAGE, "--target", "azure", "--dry-run", "--json",
                    env=arm_emulator.env(BUILDER_STATE=str(tmp_path / "runner-1"), PACKER=str(tmp_path / "none")))
    assert first.code == 0, first.stderr
    record = json.loads(first.stdout)
    assert record["version"] == f"{_today()}.0" and record["version_source"] == "gallery"
    assert record["base_version"] == "22.04.2025112001"
    _publish(arm_emulator, IMAGE, record["version"])  # what the first job's Packer capture leaves
    second = run_cli("build", IMAGE, "--target", "azure", "--dry-run",
                     env=arm_emulator.env(BUILDER_STATE=str(tmp_path / "runner-2"), PACKER=str(tmp_path / "none")))
    assert second.code == 0, second.stderr
    assert f"version {_today()}.1: next free number in gallery" in second.stderr


def test_cli_without_gallery_falls_back_to_the_local_registry(run_cli, tmp_path):
    result = run_cli("build", IMAGE, "--target", "azure", "--dry-run",
                     env={"AZURE_SUBSCRIPTION_ID": "", "PACKER": str(tmp_path / "none")})
    assert result.code == 0, result.stderr
    assert f"version {_today()}.0: no gallery configured (AZURE_SUBSCRIPTION_ID unset)" in result.stderr


def test_layered_build_tags_the_parent_version(run_cli, arm_emulator, tmp_path):
    _publish(arm_emulator, "gpu-base", "2026.1101.0")
    _publish(arm_emulator, "gpu-base", "2026.1102.1")
    result = run_cli("build", "ndh100-train-layered", "--target", "azure", "--dry-run", "--json",
                     "--out", str(tmp_path / "rendered"), env=arm_emulator.env(PACKER=str(tmp_path / "none")))
    assert result.code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["base_version"] == "2026.1102.1"
    values = json.loads((REPO / record["out_dir"] / var_file_name("ndh100-train-layered")).read_text())
    assert values["base_gallery_image"]["image_version"] == "2026.1102.1"
    assert values["azure_tags"][BASE_VERSION_TAG] == "2026.1102.1"


def test_builder_outdated_reads_the_recorded_base_version(arm_emulator, tmp_path):
    """The tag a build records is the one `builder outdated` compares with the newest marketplace version."""
    from builder.outdated import Report, check_bases

    _seed_marketplace(arm_emulator, versions=MARKET[:1])
    _, values, _ = _dry_run(arm_emulator, tmp_path)
    # captured `pending` (no hardware suite on the build VM); the hardware validation step then records `passed`
    assert values["azure_tags"][T.VERIFICATION] == "pending"
    built = _publish(arm_emulator, IMAGE, values["image_version"], **{**values["azure_tags"],
                                                                      T.VERIFICATION: T.VERIFIED})
    from builder.azure import Lifecycle

    Lifecycle(CATALOG, IMAGE, arm_emulator.settings).promote(built.version)
    report = Report()
    check_bases(CATALOG, [IMAGE], arm_emulator.settings, report)
    assert not report.findings and not report.errors
    _seed_marketplace(arm_emulator, versions=MARKET)
    report = Report()
    check_bases(CATALOG, [IMAGE], arm_emulator.settings, report)
    assert [(f.current, f.latest) for f in report.findings] == [(MARKET[0], "22.04.2025112001")]


# ---------------------------------------------------------------- SBOM


def _artifact(tmp_path, version: str, output_dir=None) -> BuildArtifact:
    out = output_dir or tmp_path / "build"
    out.mkdir(parents=True, exist_ok=True)
    return BuildArtifact(IMAGE, version, "id", "digest", out)


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs dpkg")
def test_sbom_script_writes_cyclonedx_of_dpkg_packages(tmp_path):
    """The script the build VM runs (with the bundle's builder package), run here on this Debian machine."""
    dest = tmp_path / SBOM_FILE
    proc = subprocess.run([sys.executable, str(REPO / "images" / "packer" / SBOM_SCRIPT), IMAGE, "2026.1129.0",
                           str(dest)], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(dest.read_text())
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.6"
    assert doc["metadata"]["component"]["name"] == IMAGE and doc["metadata"]["component"]["version"] == "2026.1129.0"
    installed = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev} ${Package}\\n"], capture_output=True,
                               text=True, check=True).stdout.split("\n")
    names = {line.split()[1] for line in installed if line.startswith("i")}
    assert set(sbom_packages(dest)) == names
    assert f"{len(names)} dpkg packages" in proc.stdout
    usage = subprocess.run([sys.executable, str(REPO / "images" / "packer" / SBOM_SCRIPT)], capture_output=True,
                           text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert usage.returncode == 2 and "usage" in usage.stderr


def test_sbom_digest_is_tagged_on_the_staged_version(arm_emulator, tmp_path):
    version = f"{_today()}.0"
    _publish(arm_emulator, IMAGE, version, **{T.VERIFICATION: "passed"})
    artifact = _artifact(tmp_path, version)
    (artifact.out_dir / SBOM_FILE).write_text('{"bomFormat": "CycloneDX", "components": []}\n')
    said: list[str] = []
    record_sbom(CATALOG, artifact, arm_emulator.settings, "gallery", said.append)
    assert artifact.sbom_sha256 == digest(artifact.out_dir / SBOM_FILE) and artifact.sbom_tagged
    g = CATALOG.model(IMAGE).gallery
    from builder.azure.clients import compute_client

    tags = compute_client(arm_emulator.settings).gallery_image_versions.get(
        g.resource_group, g.gallery, g.definition, version).tags
    assert tags[T.SBOM] == artifact.sbom_sha256 and tags[T.VERIFICATION] == "passed"  # others kept
    assert artifact.as_dict()["sbom"] == str(artifact.out_dir / SBOM_FILE)


def test_sbom_without_gallery_or_for_a_managed_image_is_only_recorded(tmp_path):
    artifact = _artifact(tmp_path, "2026.1129.0")
    (artifact.out_dir / SBOM_FILE).write_text("{}\n")
    said: list[str] = []
    record_sbom(CATALOG, artifact, None, "gallery", said.append)
    assert artifact.sbom_sha256 and not artifact.sbom_tagged and "not tagged" in said[-1]
    record_sbom(CATALOG, artifact, None, "managed-image", said.append)
    assert f"--sbom {artifact.out_dir / SBOM_FILE}" in said[-1]


def test_missing_sbom_or_version_is_an_operation_error(arm_emulator, tmp_path):
    artifact = _artifact(tmp_path, "2026.1129.0")
    with pytest.raises(OperationError, match="downloaded no SBOM"):
        record_sbom(CATALOG, artifact, arm_emulator.settings, "gallery", print)
    (artifact.out_dir / SBOM_FILE).write_text("{}\n")
    with pytest.raises(OperationError, match="not found: cannot tag it"):
        record_sbom(CATALOG, artifact, arm_emulator.settings, "gallery", print)
    with pytest.raises(OperationError, match="not found"):
        tag_version(CATALOG, IMAGE, "2026.1129.5", {T.SBOM: "x"}, arm_emulator.settings)
