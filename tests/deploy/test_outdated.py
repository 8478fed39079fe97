"""``builder outdated``: newer releases in the apt feeds (a mirror on disk) and newer bases (the ARM emulator)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from builder.catalog.loader import load_catalog
from builder.outdated import BASE_VERSION_TAG, index_urls, same_line
from builder.render import ansible_vars
from builder.stack import resolve
from builder.standin import standin_version
from tests.conftest import REPO

CATALOG = load_catalog(REPO / "images")
FEED_IMAGE = "nct4-infer"
SRC = "/subscriptions/s/resourceGroups/rg-build/providers/Microsoft.Compute/images/{}"


def _bump(version: str) -> str:
    """A newer release of the same line: the last number of the upstream part plus one."""
    epoch, rest = version.split(":", 1) if ":" in version else ("", version)
    upstream, _, tail = rest.partition("-")
    parts = upstream.split(".")
    parts[-1] = str(int(parts[-1]) + 1)
    new = ".".join(parts) + (f"-{tail}" if tail else "")
    return f"{epoch}:{new}" if epoch else new


def _stanza(name: str, version: str) -> str:
    return f"Package: {name}\nVersion: {version}\nArchitecture: amd64\nFilename: pool/{name}.deb\n\n"


def _mirror(root: Path, image: str, newer: set[str]) -> dict[str, tuple[str, str]]:
    """Write Packages indexes for every apt feed of ``image`` under ``root`` (mirror layout <host>/<path>).

    Each pinned package is listed at its pin; those in ``newer`` also at a bumped version, and every package
    at a release of another line (next major) that must not count. Returns package -> (pinned, bumped)."""
    feeds = ansible_vars(CATALOG, image, feed=root.as_uri(), commit="-")["builder_feeds"]
    expected = {}
    texts: dict[str, str] = {}
    for packages in resolve(CATALOG, image).packages.values():
        for p in packages:
            spec = feeds[p.feed]
            if spec["kind"] != "apt":
                continue
            url = index_urls(spec)[0]
            offered = standin_version(p.version)  # a build of the pinned release (a pin may be a version glob)
            other_line = str(int(offered.split(":")[-1].split(".")[0]) + 1) + ".0.0-1"
            text = _stanza(p.name, offered) + _stanza(p.name, other_line)
            if p.name in newer:
                expected[p.name] = (p.version, _bump(offered))
                text += _stanza(p.name, _bump(offered))
            texts[url] = texts.get(url, "") + text
    for i, (url, text) in enumerate(sorted(texts.items())):
        folder = Path(urlsplit(url).path)
        folder.mkdir(parents=True, exist_ok=True)
        if i % 2:  # both compressed and plain indexes are read
            (folder / "Packages.gz").write_bytes(gzip.compress(text.encode()))
        else:
            (folder / "Packages").write_text(text)
    return expected


def test_same_line_rules():
    assert same_line("580.130.1-1", "580.126.16-1") and not same_line("590.1.0-1", "580.126.16-1")
    assert same_line("2.30.5-1+cuda13.0", "2.30.4-1+cuda13.0")
    assert not same_line("2.30.5-1+cuda12.9", "2.30.4-1+cuda13.0")


def test_feed_releases_newer_than_the_pins_are_found(run_cli, tmp_path):
    pins = resolve(CATALOG, FEED_IMAGE).packages
    names = [p.name for group in pins.values() for p in group]
    chosen = {names[0], names[-1]}
    expected = _mirror(tmp_path / "mirror", FEED_IMAGE, chosen)
    assert set(expected) == chosen
    result = run_cli("outdated", FEED_IMAGE, "--feed", (tmp_path / "mirror").as_uri(), "--no-bases", "--json")
    assert result.code == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    found = {f["subject"].split("(")[1].rstrip(")"): (f["current"], f["latest"]) for f in data["findings"]}
    assert found == expected
    assert data["images"] == [FEED_IMAGE] and data["errors"] == []
    assert all(f["kind"] == "component" for f in data["findings"])


def test_current_pins_are_not_outdated_and_missing_feeds_are_errors(run_cli, tmp_path):
    _mirror(tmp_path / "mirror", FEED_IMAGE, set())
    current = run_cli("outdated", FEED_IMAGE, "--feed", (tmp_path / "mirror").as_uri(), "--no-bases", "--json")
    assert current.code == 0 and json.loads(current.stdout)["images"] == []
    missing = run_cli("outdated", FEED_IMAGE, "--feed", (tmp_path / "empty").as_uri(), "--no-bases")
    assert missing.code == 1 and "no Packages index" in missing.stderr and "Traceback" not in missing.stderr
    assert run_cli("outdated", "no-such-image", "--no-bases").code == 2


def _seed_marketplace(emu, image: str, versions: list[str]) -> None:
    m = CATALOG.model(image).base.marketplace
    response = requests.put(f"{emu.base_url}/_emulator/marketplace/{m.publisher}/{m.offer}/{m.sku}",
                            json={"versions": versions}, verify=emu.cert, timeout=10)
    response.raise_for_status()


def _publish_live(emu, catalog, image: str, version: str, tags: dict[str, str] | None = None) -> None:
    from builder.azure import Lifecycle, Source, publish_version

    publish_version(catalog, image, source=Source(managed_image_id=SRC.format(f"{image}-{version}")),
                    version=version, tags={"builder.verification": "passed", **(tags or {})}, settings=emu.settings)
    Lifecycle(catalog, image, emu.settings).promote(version)


@pytest.mark.slow
def test_bases_against_the_emulator(run_cli, arm_emulator, catalog_copy):
    catalog = load_catalog(catalog_copy)
    market_image = "ndh100-train"
    assert CATALOG.model(market_image).base.marketplace.version == "latest"
    _seed_marketplace(arm_emulator, market_image, ["22.04.2025010101", "22.04.2025112001", "22.04.2025060101"])
    _publish_live(arm_emulator, catalog, market_image, "2026.1101.0", {BASE_VERSION_TAG: "22.04.2025060101"})
    # A layered image published on gpu-base 2026.1101.0; gpu-base got a newer live version afterwards.
    layered = "ndh100-train-layered"
    parent = CATALOG.model(layered).base.image
    _publish_live(arm_emulator, catalog, parent, "2026.1101.0")
    _publish_live(arm_emulator, catalog, layered, "2026.1101.0", {BASE_VERSION_TAG: "2026.1101.0"})
    _publish_live(arm_emulator, catalog, parent, "2026.1102.0")
    args = ("--catalog", str(catalog_copy), "outdated", market_image, layered, parent, "--no-components", "--json")
    unseeded = run_cli(*args, env=arm_emulator.env())  # gpu-base's marketplace base is unknown to the emulator
    assert unseeded.code == 1
    assert [e["image"] for e in json.loads(unseeded.stdout)["errors"]] == [parent]
    _seed_marketplace(arm_emulator, parent, ["22.04.2025010101"])
    result = run_cli(*args, env=arm_emulator.env())
    assert result.code == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    by_image = {f["image"]: f for f in data["findings"]}
    assert by_image[market_image]["kind"] == "base"
    assert (by_image[market_image]["current"], by_image[market_image]["latest"]) == ("22.04.2025060101",
                                                                                     "22.04.2025112001")
    assert by_image[layered]["kind"] == "layered-base"
    assert (by_image[layered]["current"], by_image[layered]["latest"]) == ("2026.1101.0", "2026.1102.0")
    assert data["images"] == sorted([market_image, layered])
    assert [n["image"] for n in data["notes"]] == [parent] and BASE_VERSION_TAG in data["notes"][0]["message"]


def test_pinned_marketplace_version_and_unrecorded_base(run_cli, arm_emulator, catalog_copy):
    image = "cpu-infer"
    base = catalog_copy / "base-dsvm.yaml"
    text = base.read_text()
    base.write_text(text.replace("version: latest", "version: 22.04.2025010101", 1))
    _seed_marketplace(arm_emulator, image, ["22.04.2025010101", "22.04.2025020202"])
    result = run_cli("--catalog", str(catalog_copy), "outdated", image, "--no-components", "--json",
                     env=arm_emulator.env())
    data = json.loads(result.stdout)
    assert [(f["current"], f["latest"]) for f in data["findings"]] == [("22.04.2025010101", "22.04.2025020202")]
    base.write_text(text)  # back to latest: no live version yet, so only a note
    rerun = run_cli("--catalog", str(catalog_copy), "outdated", image, "--no-components", "--json",
                    env=arm_emulator.env())
    again = json.loads(rerun.stdout)
    assert rerun.code == 0 and again["images"] == [] and again["findings"] == [] and again["errors"] == []
    assert "no live gallery version" in again["notes"][0]["message"]
