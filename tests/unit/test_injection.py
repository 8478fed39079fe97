"""Catalog text never runs as code (issue 18, "Catalog text runs as code").

A ``{{ lookup('pipe', ...) }}`` in a component's ``download.url`` or in a SKU's ``gpu_model`` passes validation;
rendered as a plain string, Ansible templates it (and runs the command on the controller) when a role reads the
variable. Packer runs Go templates (``{{ uuid }}``) in the variable values it is given.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from builder import render
from builder.catalog.loader import load_catalog
from builder.errors import InputError
from builder.render import write_render

ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
NODE_EXPORTER = "node_exporter-1.9.1.linux-amd64.tar.gz"


def _inject(images: Path, marker: Path) -> tuple[str, str]:
    """Put a pipe lookup that would create ``marker`` into a download URL and a SKU's GPU model."""
    url_attack = f"?{{{{ lookup('pipe', 'touch {marker}.url') }}}}"
    model_attack = f"{{{{ lookup('pipe', 'touch {marker}.gpu') }}}}"
    base = images / "base-dsvm.yaml"
    base.write_text(base.read_text().replace(NODE_EXPORTER, NODE_EXPORTER + url_attack, 1))
    skus = images / "skus.yaml"
    text = skus.read_text()
    assert "gpu_model: NVIDIA H100 80GB HBM3" in text
    skus.write_text(text.replace("gpu_model: NVIDIA H100 80GB HBM3", f'gpu_model: "NVIDIA H100 {model_attack}"', 1))
    return url_attack, model_attack


@pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason="ansible-playbook is not installed in the venv")
def test_catalog_text_reaches_ansible_as_data(catalog_copy, tmp_path):
    marker = tmp_path / "executed"
    url_attack, model_attack = _inject(catalog_copy, marker)
    catalog = load_catalog(catalog_copy)
    vars_file = write_render(catalog, "ndh100-train", "local", tmp_path / "out", commit="c")[0]
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - ansible.builtin.debug:\n"
        '        msg: "{{ builder_downloads.node_exporter.url }} | {{ builder_skus }} | {{ builder_components }}"\n'
    )
    proc = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "-c", "local", str(playbook), "-e", f"@{vars_file}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
        env={"PATH": f"{ANSIBLE_PLAYBOOK.parent}:/usr/bin:/bin", "ANSIBLE_NOCOLOR": "1", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not list(tmp_path.glob("executed*")), "Ansible ran a lookup written in the catalog"
    assert "lookup('pipe', 'touch" in proc.stdout  # the text arrives as it was written
    data = render.load_vars(vars_file)
    assert data["builder_downloads"]["node_exporter"]["url"].endswith(url_attack)
    assert data["builder_skus"]["Standard_ND96isr_H100_v5"]["gpu_model"] == f"NVIDIA H100 {model_attack}"


def test_every_rendered_string_is_tagged_unsafe(catalog, tmp_path):
    import yaml

    vars_file = write_render(catalog, "cpu-infer", "local", tmp_path, commit="c")[0]
    untagged = []

    def walk(node: yaml.Node, path: str) -> None:
        if isinstance(node, yaml.ScalarNode):
            if node.tag not in (
                "!unsafe",
                "tag:yaml.org,2002:int",
                "tag:yaml.org,2002:bool",
                "tag:yaml.org,2002:float",
                "tag:yaml.org,2002:null",
            ):
                untagged.append((path, node.tag, node.value))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{path}[{i}]")
        else:
            for key, value in node.value:
                if path:  # the variable names themselves are builder's own
                    walk(key, f"{path}.<key>")
                walk(value, f"{path}.{key.value}" if path else key.value)

    walk(yaml.compose(vars_file.read_text()), "")
    assert not untagged, untagged[:5]


@pytest.fixture
def catalog():
    from tests.conftest import REPO

    return load_catalog(REPO / "images")


def test_packer_variables_refuse_go_templates(catalog_copy, tmp_path):
    from builder.packer.render import packer_variables

    base = catalog_copy / "base-dsvm.yaml"
    base.write_text(base.read_text().replace("    sku: 2204-gen2", '    sku: "2204-gen2{{ uuid }}"', 1))
    with pytest.raises(InputError) as caught:
        packer_variables(load_catalog(catalog_copy), "cpu-infer", tmp_path / "out", commit="c")
    assert "marketplace.sku" in str(caught.value) and "Go template" in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_real_packer_runs_go_templates_in_values_and_keeps_hcl_markers_literal(packer_path, tmp_path):
    """What the refusal rests on, against the real binary: ``{{ }}`` in a var-file value is executed by Packer's
    Go-template interpolation; ``${...}`` and ``%{...}`` in a var file stay literal (so they need no escaping)."""
    (tmp_path / "t.pkr.hcl").write_text(
        'variable "x" {\n  type = string\n}\nvariable "y" {\n  type = string\n}\n'
        'source "null" "t" {\n  communicator = "none"\n}\n'
        'build {\n  sources = ["source.null.t"]\n'
        '  provisioner "shell-local" {\n    inline = ["echo \'X=[${var.x}]\'", "echo \'Y=[${var.y}]\'"]\n  }\n}\n'
    )
    (tmp_path / "v.pkrvars.json").write_text(json.dumps({"x": "a{{ uuid }}b", "y": 'p${upper("q")}%{ if true }r'}))
    proc = subprocess.run(
        [packer_path, "build", "-var-file=v.pkrvars.json", "t.pkr.hcl"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": "/usr/bin:/bin", "CHECKPOINT_DISABLE": "1", "PACKER_NO_COLOR": "1", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "X=[a{{ uuid }}b]" not in proc.stdout and "X=[a" in proc.stdout  # the template ran
    assert 'Y=[p${upper("q")}%{ if true }r]' in proc.stdout  # the HCL markers did not


def test_packer_var_file_has_no_template(catalog, tmp_path):
    from builder.packer.render import write_packer_files

    shutil.rmtree(tmp_path, ignore_errors=True)
    for path in write_packer_files(catalog, "ndh100-train", tmp_path, commit="c"):
        if path.suffix == ".json":
            assert "{{" not in path.read_text()
