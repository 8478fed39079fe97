"""``azure_build`` and ``builder build --target azure``: dry run, the Packer version gate, identity choice."""

from __future__ import annotations

import json

import pytest

from builder.catalog.loader import load_catalog
from builder.errors import InputError, OperationError
from builder.packer import driver
from builder.packer.azure import azure_build, detect_auth, minimum_packer
from builder.packer.render import template_dir, var_file_name
from tests.conftest import REPO

CATALOG = load_catalog(REPO / "images")


def test_minimum_packer_comes_from_the_template():
    text = (template_dir(CATALOG) / "azure.pkr.hcl").read_text()
    assert f'required_version = ">= {minimum_packer(template_dir(CATALOG))}"' in text


def test_dry_run_renders_and_reports_exact_commands(tmp_path, packer_path):
    events = []
    out = tmp_path / "out"
    artifact = azure_build(CATALOG, "ndh100-train", out_dir=out, on_event=events.append, dry_run=True,
                           on_error="abort", image_version="2026.1129.7", auth="oidc", packer=packer_path)
    var_file = out / var_file_name("ndh100-train")
    assert artifact.dry_run and artifact.artifact_id is None and artifact.version == "2026.1129.7"
    assert artifact.commands == [
        [packer_path, "init", str(out)],
        [packer_path, "validate", f"-var-file={var_file}", "-var=auth_method=oidc", str(out)],
        [packer_path, "build", "-machine-readable", "-on-error=abort", f"-var-file={var_file}",
         "-var=auth_method=oidc", str(out)],
    ]
    assert [e.text for e in events if e.kind == "command"] == [driver.show(c) for c in artifact.commands]
    assert json.loads(var_file.read_text())["image_version"] == "2026.1129.7"
    assert "\nbuilder_image_version: 2026.1129.7\n" in (out / "ansible-vars.yml").read_text()
    assert not (out / "packer-build.log").exists()


def test_too_old_packer_fails_before_writing(tmp_path, debian_packer):
    packer_path = debian_packer
    version = driver.find_packer("0.0.1", packer_path).version
    minimum = minimum_packer(template_dir(CATALOG))
    if driver.parse_version(version) and tuple(map(int, version.split("."))) >= tuple(map(int, minimum.split("."))):
        pytest.skip(f"packer {version} is new enough for the Azure template")
    out = tmp_path / "out"
    with pytest.raises(OperationError, match=rf"packer {version} .* is too old: this template needs >= {minimum}"):
        azure_build(CATALOG, "ndh100-train", out_dir=out, packer=packer_path)
    assert not out.exists()


@pytest.mark.parametrize("kwargs,field", [({"on_error": "ask"}, "--on-error"), ({"auth": "password"}, "--auth"),
                                          ({"image_version": "v1"}, "version"), ({"output": "vhd"}, "--output")])
def test_bad_options_are_input_errors_and_write_nothing(tmp_path, kwargs, field):
    out = tmp_path / "out"
    with pytest.raises(InputError, match=field):
        azure_build(CATALOG, "ndh100-train", out_dir=out, dry_run=True, **kwargs)
    assert not out.exists()


def test_detect_auth():
    assert detect_auth({}) == "cli"
    assert detect_auth({"ACTIONS_ID_TOKEN_REQUEST_URL": "https://x", "AZURE_CLIENT_ID": "id"}) == "oidc"
    assert detect_auth({"ACTIONS_ID_TOKEN_REQUEST_URL": "https://x"}) == "cli"
    assert detect_auth({"BUILDER_AZURE_AUTH": "managed-identity", "AZURE_CLIENT_ID": "id"}) == "managed-identity"
    with pytest.raises(InputError, match="BUILDER_AZURE_AUTH: invalid value 'key'"):
        detect_auth({"BUILDER_AZURE_AUTH": "key"})


def test_cli_dry_run_prints_commands(run_cli, tmp_path):
    result = run_cli("build", "ndh100-train-layered", "--target", "azure", "--dry-run", "--on-error", "abort",
                     env={"BUILDER_AZURE_AUTH": "cli"})
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[1] for line in lines] == ["init", "validate", "build"]
    assert "-machine-readable -on-error=abort" in lines[2] and "-var=auth_method=cli" in lines[2]
    as_json = json.loads(run_cli("build", "ndh100-train-layered", "--target", "azure", "--dry-run", "--json").stdout)
    assert as_json["target"] == "azure" and as_json["dry_run"] and len(as_json["commands"]) == 3


def test_cli_without_usable_packer_is_a_clear_error(run_cli, tmp_path):
    missing = run_cli("build", "ndh100-train", "--target", "azure", env={"PACKER": str(tmp_path / "nope")})
    assert missing.code == 1 and "packer not found; install Packer" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_ensure_destination_creates_the_definition_packer_needs(arm_emulator):
    from builder.azure.clients import compute_client
    from builder.packer.azure import ensure_destination

    said = []
    ensure_destination(CATALOG, "gpu-base", arm_emulator.settings, said.append)
    g = CATALOG.model("gpu-base").gallery
    definition = compute_client(arm_emulator.settings).gallery_images.get(g.resource_group, g.gallery, g.definition)
    assert definition.as_dict()["properties"]["identifier"]["sku"] == g.identifier.sku
    assert any("creating" in line for line in said)
    said.clear()
    ensure_destination(CATALOG, "gpu-base", arm_emulator.settings, said.append)  # idempotent
    assert not any("creating" in line for line in said)


@pytest.mark.parametrize("feed", ["stand-in", "file:///srv/feed"])
def test_azure_build_refuses_a_feed_on_the_packer_host(run_cli, feed):
    """The build VM in Azure cannot read a file:// feed on the machine that runs Packer (issue 16)."""
    result = run_cli("build", "ndh100-train", "--target", "azure", "--feed", feed, "--dry-run")
    assert result.code == 2 and "Traceback" not in result.stderr
    assert "--feed" in result.stderr and "build VM" in result.stderr
