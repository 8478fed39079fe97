"""The real Packer (built from the Go module proxy by .ci/tools/build.sh): version, plugins, validate and fmt.

Every buildable catalog image is rendered with ``builder render IMAGE --target azure`` and its folder is checked
with ``packer validate -var-file=IMAGE.pkrvars.json DIR`` (no ``packer init``: the plugins come from
PACKER_PLUGIN_PATH=.venv/packer-plugins, installed by .ci/setup) and ``packer fmt -check DIR``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from builder.catalog.loader import load_catalog
from builder.paths import IMAGES_DIR, PACKER_DIR

REPO = Path(__file__).resolve().parents[2]
PACKER = REPO / ".venv" / "bin" / "packer"
PLUGIN_PATH = REPO / ".venv" / "packer-plugins"
TOOLS = REPO / ".ci" / "tools"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not PACKER.exists(), reason=".venv/bin/packer is absent: `bash .ci/setup` builds it"),
]

# The template's required_plugins (source -> the tools module that builds the plugin).
PLUGINS = {
    "github.com/hashicorp/azure": "packer-plugin-azure",
    "github.com/hashicorp/ansible": "packer-plugin-ansible",
}
# packer-plugin-azure 2.x cannot be built here: the Go module proxy serves none of its 2.x versions (its v2 tags
# sit on a go.mod whose module path lacks /v2, so they are no valid module versions; see docs/azure.md). The
# checks that need it are reported as expected failures (xfail) while .ci/tools/packer-plugin-azure is absent, and
# only after checking that the missing plugin is the one thing wrong (any other error fails); once the module
# exists they run in full.
AZURE_MISSING = not (TOOLS / "packer-plugin-azure" / "go.mod").exists()
AZURE_REASON = "packer-plugin-azure 2.x is not served by the Go module proxy, so .ci/tools does not build it"
MISSING_AZURE_ONLY = re.compile(
    r"\AError: Missing plugins\n\nThe following plugins are required, but not installed:\n\n"
    r"\* github\.com/hashicorp/azure ~> 2\n\nDid you run packer init for this project \?\s*\Z"
)

IMAGES = sorted(image.name for image in load_catalog(IMAGES_DIR).buildable())


def required_version(tool: str) -> str:
    """The version the tools module pins for ``github.com/hashicorp/<tool>`` (the built version)."""
    go_mod = (TOOLS / tool / "go.mod").read_text()
    line = rf"^(?:require)?\s*github\.com/hashicorp/{re.escape(tool)} v(\S+)(?: // indirect)?$"
    match = re.search(line, go_mod, re.MULTILINE)
    assert match, f"{tool}: no require line in .ci/tools/{tool}/go.mod"
    return match.group(1)


def packer(*args: str, cwd: Path | None = None, timeout: float = 300,
           path_with_venv: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PACKER_PLUGIN_PATH": str(PLUGIN_PATH), "CHECKPOINT_DISABLE": "1"}
    env.pop("PACKER_LOG", None)
    if path_with_venv:  # the ansible provisioner runs `ansible-playbook --version` while validating
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run([str(PACKER), *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path]:
    """Every buildable image rendered for Azure: image name -> its folder (template copy + var file)."""
    root = tmp_path_factory.mktemp("real-packer")
    env = {**os.environ, "PYTHONPATH": str(REPO), "BUILDER_STATE": str(root / "state")}
    builder = Path(sys.executable).parent / "builder"
    command = [str(builder)] if builder.exists() else [sys.executable, "-m", "builder"]
    folders = {}
    for name in IMAGES:
        out = root / name
        proc = subprocess.run([*command, "render", name, "--target", "azure", "--out", str(out)], capture_output=True,
                              text=True, cwd=REPO, env=env, timeout=300, check=False)
        assert proc.returncode == 0, f"builder render {name} --target azure failed:\n{proc.stdout}\n{proc.stderr}"
        folders[name] = out
    return folders


def test_version_is_the_built_one():
    proc = packer("version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"Packer v{required_version('packer')}"


def test_it_is_not_debians_packer():
    """`.venv/bin/packer` is the built one; Debian's 1.6.6 stays on PATH for the null-builder driver tests."""
    assert PACKER.resolve() != Path("/usr/bin/packer").resolve()
    assert "/builder-tools/" in str(PACKER.resolve())


@pytest.mark.parametrize("source", PLUGINS)
def test_plugin_installed(source):
    proc = packer("plugins", "installed")
    assert proc.returncode == 0, proc.stderr
    tool = PLUGINS[source]
    expected = PLUGIN_PATH / source
    lines = [line for line in proc.stdout.splitlines() if line.startswith(f"{expected}/{tool}_v")]
    if tool == "packer-plugin-azure" and AZURE_MISSING:
        assert not lines, proc.stdout
        pytest.xfail(AZURE_REASON)
    version = required_version(tool)
    assert lines, f"{source} not in `packer plugins installed`:\n{proc.stdout}"
    assert any(Path(line).name.startswith(f"{tool}_v{version}_") for line in lines), proc.stdout


@pytest.mark.parametrize("image", IMAGES)
def test_fmt_check(rendered, image):
    proc = packer("fmt", "-check", str(rendered[image]))
    assert proc.returncode == 0, f"packer fmt -check: files not formatted:\n{proc.stdout}{proc.stderr}"


def test_fmt_check_sources():
    """The sources themselves (what render copies), so a failure names images/packer/*.pkr.hcl."""
    proc = packer("fmt", "-check", str(PACKER_DIR))
    assert proc.returncode == 0, f"packer fmt -check images/packer:\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize("image", IMAGES)
def test_validate_syntax_only(rendered, image):
    """HCL syntax and references, checked by the real parser (needs no plugin)."""
    folder = rendered[image]
    proc = packer("validate", "-syntax-only", f"-var-file={folder / f'{image}.pkrvars.json'}", str(folder))
    assert proc.returncode == 0, f"packer validate -syntax-only {image}:\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize("image", IMAGES)
def test_validate(rendered, image):
    folder = rendered[image]
    proc = packer("validate", f"-var-file={folder / f'{image}.pkrvars.json'}", str(folder), path_with_venv=True)
    if AZURE_MISSING:
        assert proc.returncode != 0 and MISSING_AZURE_ONLY.match(proc.stderr + proc.stdout), proc.stderr + proc.stdout
        pytest.xfail(AZURE_REASON)
    assert proc.returncode == 0, f"packer validate {image}:\n{proc.stdout}{proc.stderr}"


def null_source_copy(folder: Path, dest: Path) -> Path:
    """``folder`` with the azure-arm source swapped for a ``null`` one and the azure plugin requirement dropped."""
    shutil.copytree(folder, dest, ignore=shutil.ignore_patterns("verify-bundle"))
    template = dest / "azure.pkr.hcl"
    text = template.read_text()
    text, required = re.subn(r"\n    azure = \{\n.*?\n    \}", "", text, count=1, flags=re.DOTALL)
    null = 'source "null" "image" {\n  communicator = "none"\n}\n'
    text, sources = re.subn(r'source "azure-arm" "image" \{\n.*?\n\}\n', null, text, count=1, flags=re.DOTALL)
    assert (required, sources, text.count("source.azure-arm.image")) == (1, 1, 1), "template layout changed"
    template.write_text(text.replace("source.azure-arm.image", "source.null.image"))
    return dest


@pytest.mark.parametrize("image", IMAGES)
def test_validate_build_block(rendered, image, tmp_path):
    """The build block (ansible provisioners, shell, file, manifest) against the real ansible plugin and Packer's own
    provisioners, with the azure-arm source replaced by ``null`` (what can be checked without the azure plugin)."""
    folder = null_source_copy(rendered[image], tmp_path / image)
    proc = packer("validate", f"-var-file={folder / f'{image}.pkrvars.json'}", str(folder), path_with_venv=True)
    assert proc.returncode == 0, f"packer validate (null source) {image}:\n{proc.stdout}{proc.stderr}"
