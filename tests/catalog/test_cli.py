"""The catalog commands through the installed ``builder`` console script."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import REPO, git


def test_help_lists_commands(run_cli):
    result = run_cli("--help")
    assert result.code == 0
    for command in ("list", "show", "validate", "plan", "matrix"):
        assert command in result.stdout


def test_usage_error_is_exit_2(run_cli):
    result = run_cli("plan")
    assert result.code == 2 and "Missing argument" in result.stderr


def test_list_json_has_only_buildable_images(run_cli):
    rows = json.loads(run_cli("list", "--json").stdout)
    names = {r["name"] for r in rows}
    assert {"ndh100-train", "ndh200-train", "nda100-train", "ndmi300x-train", "nch100-infer", "nca100-infer",
            "nct4-infer", "cpu-train", "cpu-infer"} <= names
    assert not any(r["abstract"] for r in rows)
    assert any(r["os"] == "ubuntu2404" for r in rows)


def test_show_resolved_and_explained(run_cli):
    shown = json.loads(run_cli("show", "nca100-infer", "--json").stdout)
    assert shown["chain"] == ["nca100-infer", "nvidia-infer", "nvidia-base", "base-dsvm"]
    assert shown["components"]["cuda"]["version"] == "13.0.2"
    explained = {r["field"]: r for r in json.loads(run_cli("show", "nca100-infer", "--explain", "--json").stdout)}
    assert explained["components.cuda.version"]["file"].endswith("nvidia-base.yaml")
    assert explained["purpose"]["file"].endswith("nvidia-infer.yaml")


def test_validate_all_ok(run_cli):
    result = run_cli("validate", "--all")
    buildable = len(json.loads(run_cli("list", "--json").stdout))
    assert buildable >= 9
    assert result.code == 0 and f"{buildable} image(s) valid" in result.stdout


def test_validate_reports_stack_error_exit_2(run_cli, catalog_copy):
    path = catalog_copy / "nvidia-train.yaml"
    text = path.read_text()
    path.write_text(text.replace("fabric_manager: {version: 580.126.16}", "fabric_manager: {version: 580.95.05}"))
    result = run_cli("--catalog", str(catalog_copy), "validate", "ndh100-train")
    assert result.code == 2
    assert "Traceback" not in result.stderr
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "fabric_manager" in text)
    assert f"nvidia-train.yaml:{line}: [ndh100-train] components.fabric_manager.version: Fabric Manager 580.95.05" \
        in result.stderr
    as_json = json.loads(run_cli("--catalog", str(catalog_copy), "validate", "--json").stdout)
    assert not as_json["ok"]
    errors = {p["image"] for p in as_json["problems"] if p["severity"] == "error"}
    # ndh200-train pins its own Fabric Manager (what ubuntu-hpc 24.04 carries)
    assert errors == {"ndh100-train", "nda100-train", "ndh100-train-layered"}


@pytest.mark.parametrize("text", ["name: x\n  bad: [\n", "", "- 1\n", "name: x\nfoo: 1\n"])
def test_bad_files_exit_2_without_traceback_and_write_nothing(run_cli, catalog_copy, tmp_path, text):
    (catalog_copy / "x.yaml").write_text(text)
    result = run_cli("--catalog", str(catalog_copy), "validate", "--all")
    assert result.code == 2
    assert "Traceback" not in result.stderr and "x.yaml:" in result.stderr
    assert not (tmp_path / "state").exists()


def test_unknown_image_suggests(run_cli):
    result = run_cli("plan", "ndh100-trian")
    assert result.code == 2 and "did you mean 'ndh100-train'" in result.stderr


def test_abstract_image_is_not_buildable(run_cli):
    result = run_cli("plan", "nvidia-base")
    assert result.code == 2 and "abstract" in result.stderr


def test_missing_catalog_folder(run_cli, tmp_path):
    result = run_cli("--catalog", str(tmp_path / "nope"), "validate")
    assert result.code == 2 and "catalog folder not found" in result.stderr


def test_plan_json(run_cli):
    plan = json.loads(run_cli("plan", "ndh100-train", "--target", "azure", "--json").stdout)
    layers = {layer["name"]: layer for layer in plan["layers"]}
    assert layers["gpu"]["components"]["nvidia_driver"] == "580.126.16"
    assert layers["fabric"]["components"]["hpcx"] == "2.25.1"
    [manager] = [p for p in layers["gpu"]["packages"] if p["name"] == "nvidia-fabricmanager"]
    assert {k: v for k, v in manager.items() if k != "source"} == {
        "name": "nvidia-fabricmanager", "version": "580.126.16-*", "feed": "cuda", "hold": True,
        "pattern": r"^nvidia\-fabricmanager=580\.126\.16\-.*$"}
    assert manager["source"].startswith("catalog components.fabric_manager: no recorded nvidia-fabricmanager")
    assert plan["build"]["vm_size"] == "Standard_D16ds_v5"
    assert plan["destination"]["exclude_from_latest"] is True
    year, _day, number = plan["next_version"].split(".")
    assert len(year) == 4 and int(number) == 0


def test_plan_cpu_image_has_no_gpu_layer_components(run_cli):
    plan = json.loads(run_cli("plan", "cpu-infer", "--json").stdout)
    assert all(not layer["components"] for layer in plan["layers"] if layer["name"] in ("gpu", "fabric"))
    assert plan["tests"]["suites"] == ["static"]


def test_matrix_all_and_changed_since(run_cli, tmp_path):
    full = json.loads(run_cli("matrix").stdout)["include"]
    assert {row["image"] for row in full} >= {"ndh100-train", "cpu-infer"}
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copytree(REPO / "images", repo / "images")
    git("init", "-q", "-b", "main", cwd=repo)
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "root", cwd=repo)
    git("add", ".", cwd=repo)
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "catalog", cwd=repo)
    base = git("rev-parse", "HEAD", cwd=repo).strip()
    nothing = json.loads(run_cli("matrix", "--changed-since", base, cwd=repo).stdout)["include"]
    assert nothing == []
    path = repo / "images" / "nvidia-infer.yaml"
    path.write_text(path.read_text() + "build:\n  os_disk_gb: 512\n")  # changes what is built (a description would not)
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "edit", cwd=repo)
    changed = json.loads(run_cli("matrix", "--changed-since", base, cwd=repo).stdout)["include"]
    assert sorted(row["image"] for row in changed) == ["nca100-infer", "nch100-infer", "nct4-infer"]
    bad = run_cli("matrix", "--changed-since", "no-such-ref", cwd=repo)
    assert bad.code == 2 and "no-such-ref" in bad.stderr
    # git runs in the catalog's repository, not in the directory the command was started from (issue 16)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    away = run_cli("--catalog", str(repo / "images"), "matrix", "--changed-since", base, cwd=elsewhere)
    assert away.code == 0, away.stderr
    assert sorted(row["image"] for row in json.loads(away.stdout)["include"]) == sorted(
        row["image"] for row in changed)
