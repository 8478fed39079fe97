"""Issue 16 CLI bugs: gc/yank and the local registry, `build --version`, dry runs that leave folders, throttling
retries on the progress line, and credential failures without library dumps."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import REPO

IMAGE = "ndh100-train"
SRC = "/subscriptions/s/resourceGroups/rg-build/providers/Microsoft.Compute/images/{}"


def _ok(result):
    assert result.code == 0, result.stderr
    return result


def _publish(run_cli, emu, version: str, source: str):
    return _ok(run_cli("publish", IMAGE, "--source-image-id", SRC.format(source), "--version", version,
                       env=emu.env()))


def _registry(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "state" / "registry.json").read_text())["images"]


# -- 1. gc and yank keep the local registry true --------------------------------------------------------------

def test_yank_is_recorded_and_gc_forgets_deleted_versions(run_cli, arm_emulator, tmp_path):
    _publish(run_cli, arm_emulator, "1.0.0", "img1")
    _publish(run_cli, arm_emulator, "1.0.1", "img2")
    _ok(run_cli("yank", IMAGE, "1.0.0", "--reason", "driver regression", "--yes", env=arm_emulator.env()))
    entry = _registry(tmp_path)[IMAGE]["1.0.0"]
    assert entry["yanked"] == "driver regression" and entry["yanked_at"]

    dry = json.loads(_ok(run_cli("gc", IMAGE, "--keep", "1", "--dry-run", "--json", env=arm_emulator.env())).stdout)
    assert [v["version"] for v in dry["versions"]] == ["1.0.0"]
    assert "1.0.0" in _registry(tmp_path)[IMAGE]  # a dry run deletes nothing, here either

    _ok(run_cli("gc", IMAGE, "--keep", "1", "--yes", env=arm_emulator.env()))
    assert list(_registry(tmp_path)[IMAGE]) == ["1.0.1"]
    refused = run_cli("reference", IMAGE, "--version", "1.0.0", env=arm_emulator.env())
    assert refused.code == 2 and "1.0.0" in refused.stderr, refused
    _ok(run_cli("reference", IMAGE, "--version", "1.0.1", env=arm_emulator.env()))


def test_promote_with_force_clears_the_recorded_yank(run_cli, arm_emulator, tmp_path):
    _publish(run_cli, arm_emulator, "1.0.0", "img1")
    _ok(run_cli("yank", IMAGE, "1.0.0", "--reason", "oops", "--yes", env=arm_emulator.env()))
    _ok(run_cli("promote", IMAGE, "1.0.0", "--force", env=arm_emulator.env()))
    assert "yanked" not in _registry(tmp_path)[IMAGE]["1.0.0"]


def test_reference_refuses_a_yanked_version_and_says_why(run_cli, arm_emulator, tmp_path):
    _publish(run_cli, arm_emulator, "1.0.0", "img1")
    _publish(run_cli, arm_emulator, "1.0.1", "img2")
    _ok(run_cli("yank", IMAGE, "1.0.0", "--reason", "driver regression", "--yes", env=arm_emulator.env()))
    refused = run_cli("reference", IMAGE, "--version", "1.0.0", env=arm_emulator.env())
    assert refused.code == 2, refused
    assert "yanked" in refused.stderr and "driver regression" in refused.stderr and "1.0.1" in refused.stderr
    assert "Traceback" not in refused.stderr and not refused.stdout
    _ok(run_cli("promote", IMAGE, "1.0.0", "--force", env=arm_emulator.env()))
    _ok(run_cli("reference", IMAGE, "--version", "1.0.0", env=arm_emulator.env()))


def test_registry_forget_and_update(tmp_path):
    from builder.registry import LocalRegistry

    registry = LocalRegistry(tmp_path)
    registry.record("a", "1.0.0", {"id": "x"})
    registry.record("a", "1.0.1", {"id": "y"})
    assert registry.update("a", "1.0.0", yanked="why") and not registry.update("a", "9.9.9", yanked="why")
    assert registry.live_versions("a") == ["1.0.1"] and registry.versions("a") == ["1.0.0", "1.0.1"]
    assert registry.forget("a", ["1.0.0", "2.0.0"]) == ["1.0.0"]
    assert registry.forget("a", ["1.0.1"]) == ["1.0.1"] and registry.load() == {"images": {}}


# -- 2. `builder build --version` (the messages and docs/azure.md suggest it) ---------------------------------

def _no_gallery(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"AZURE_SUBSCRIPTION_ID": "", "PACKER": str(tmp_path / "no-packer"), **extra}


def test_build_version_is_taken_as_given(run_cli, tmp_path):
    result = _ok(run_cli("build", IMAGE, "--target", "azure", "--dry-run", "--json", "--version", "2026.1129.7",
                         env=_no_gallery(tmp_path)))
    record = json.loads(result.stdout)
    assert record["version"] == "2026.1129.7" and record["version_source"] == "given"


def test_build_version_is_validated_like_publish(run_cli, tmp_path):
    for bad in ("1.2", "1.2.x", "\u0661.2.3", "99999999999.0.0"):
        result = run_cli("build", IMAGE, "--target", "azure", "--dry-run", "--version", bad, env=_no_gallery(tmp_path))
        assert result.code == 2 and "invalid image version" in result.stderr, (bad, result.stderr)
        assert "Traceback" not in result.stderr


def test_build_version_refuses_one_the_registry_or_gallery_has(run_cli, arm_emulator, tmp_path):
    from builder.registry import LocalRegistry

    LocalRegistry(tmp_path / "state").record(IMAGE, "1.0.0", {"id": "x"})
    local = run_cli("build", IMAGE, "--target", "azure", "--dry-run", "--version", "1.0.0", env=_no_gallery(tmp_path))
    assert local.code == 2 and "1.0.0" in local.stderr and "local registry" in local.stderr, local.stderr

    _publish(run_cli, arm_emulator, "1.0.5", "img1")
    env = arm_emulator.env(PACKER=str(tmp_path / "no-packer"), BUILDER_STATE=str(tmp_path / "fresh-runner"))
    taken = run_cli("build", IMAGE, "--target", "azure", "--dry-run", "--version", "1.0.5", env=env)
    assert taken.code == 2 and "already exists in gallery" in taken.stderr, taken.stderr
    assert "Traceback" not in taken.stderr


def test_build_version_on_a_local_build_is_checked_before_it_starts(run_cli, tmp_path):
    """A local build takes --version too (tests/local/test_build.py builds with one); a taken or malformed one is
    refused before the build starts: no build record, nothing converged."""
    from builder.registry import LocalRegistry

    LocalRegistry(tmp_path / "state").record(IMAGE, "1.0.0", {"id": "x"})
    taken = run_cli("build", IMAGE, "--target", "local", "--version", "1.0.0", env=_no_gallery(tmp_path))
    assert taken.code == 2 and "already exists in the local registry" in taken.stderr, taken.stderr
    bad = run_cli("build", IMAGE, "--target", "local", "--version", "1.0", env=_no_gallery(tmp_path))
    assert bad.code == 2 and "--version" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    assert not (tmp_path / "state" / "builds").exists()


# -- 3. a dry run leaves no folder behind, unless asked for one -----------------------------------------------

def test_dry_run_leaves_no_folder(run_cli, tmp_path):
    result = _ok(run_cli("build", IMAGE, "--target", "azure", "--dry-run", env=_no_gallery(tmp_path)))
    assert not (tmp_path / "state").exists(), sorted((tmp_path / "state").rglob("*"))
    assert "removed" in result.stderr and "--out" in result.stderr
    as_json = json.loads(_ok(run_cli("build", IMAGE, "--target", "azure", "--dry-run", "--json",
                                     env=_no_gallery(tmp_path))).stdout)
    assert as_json["out_dir"] is None and len(as_json["commands"]) == 3
    assert not (tmp_path / "state").exists()


def test_dry_run_keeps_the_folder_the_user_asked_for(run_cli, tmp_path):
    out = tmp_path / "rendered"
    result = _ok(run_cli("build", IMAGE, "--target", "azure", "--dry-run", "--json", "--out", str(out),
                         env=_no_gallery(tmp_path)))
    assert Path(json.loads(result.stdout)["out_dir"]) == out.resolve()
    assert any(out.glob("*.pkrvars.json")) and not (tmp_path / "state").exists()


# -- 5. throttling on the progress line; no library warnings or credential-chain dumps -------------------------

def test_throttling_retries_are_reported_on_the_progress_line(run_cli, arm_emulator):
    arm_emulator.fault("throttle", count=1, method="PUT", path=r"/images/[^/]+/versions/[^/]+$", retry_after=1)
    result = _publish(run_cli, arm_emulator, "1.0.0", "img1")
    assert "throttled by Azure (429), retrying in 1 s (attempt 2/11)" in result.stderr, result.stderr
    assert arm_emulator.stats()["faults_fired"] == 1


CREDENTIAL_VARS = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
                   "AZURE_USERNAME", "AZURE_PASSWORD", "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT",
                   "MSI_ENDPOINT", "BUILDER_ARM_ENDPOINT", "BUILDER_ARM_CERT")


def _no_credentials(monkeypatch, tmp_path) -> dict[str, str]:
    for name in CREDENTIAL_VARS:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "az").mkdir()
    return {"AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-0000000000aa", "AZURE_CONFIG_DIR": str(tmp_path / "az")}


def test_a_failing_credential_is_one_line_without_the_chain_dump(run_cli, tmp_path, monkeypatch):
    """No emulator endpoint: DefaultAzureCredential's chain runs (and fails: no az login, no managed identity)."""
    result = run_cli("versions", IMAGE, env=_no_credentials(monkeypatch, tmp_path), timeout=120)
    assert result.code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "az login" in lines[0] and "Attempted credentials" not in result.stderr
    assert "DefaultAzureCredential failed" not in result.stderr and "Traceback" not in result.stderr



def test_unusable_credential_variables_are_one_clear_line(run_cli, tmp_path, monkeypatch):
    env = {**_no_credentials(monkeypatch, tmp_path), "AZURE_CLIENT_ID": "", "AZURE_TENANT_ID": "",
           "AZURE_CLIENT_SECRET": ""}
    result = run_cli("versions", IMAGE, env=env, timeout=120)
    assert result.code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "AZURE_" in result.stderr and "Traceback" not in result.stderr


WARNING_LIBRARY = '''
import warnings
import azure.core.pipeline.policies as policies

_send = policies.RetryPolicy.send
_ns = {"__name__": "azure.fake_library", "warnings": warnings, "_send": _send}
exec("def send(self, request):\\n    warnings.warn('a library warning', UserWarning)\\n"
     "    return _send(self, request)\\n", _ns)
policies.RetryPolicy.send = _ns["send"]
'''


def test_library_warnings_do_not_print(run_cli, arm_emulator, tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(WARNING_LIBRARY)
    _publish(run_cli, arm_emulator, "1.0.0", "img1")
    env = arm_emulator.env(PYTHONPATH=f"{hook}:{REPO}")
    result = _ok(run_cli("versions", IMAGE, env=env))
    assert "a library warning" not in result.stderr, result.stderr
    shown = run_cli("versions", IMAGE, env={**env, "PYTHONWARNINGS": "default"})  # asked for: shown
    assert "a library warning" in shown.stderr, shown.stderr


def test_azure_build_reports_throttling_too(run_cli, arm_emulator, tmp_path):
    from tests.packer.test_azure_gallery import _seed_marketplace

    _seed_marketplace(arm_emulator, IMAGE)
    arm_emulator.fault("throttle", count=1, method="GET", path=r"/images/[^/]+/versions$", retry_after=1)
    result = _ok(run_cli("build", IMAGE, "--target", "azure", "--dry-run", "--version", "3.0.0",
                         env=arm_emulator.env(PACKER=str(tmp_path / "no-packer"))))
    assert "throttled by Azure (429), retrying in 1 s (attempt 2/11)" in result.stderr, result.stderr
