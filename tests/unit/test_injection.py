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


def test_every_rendered_string_that_could_be_a_template_is_tagged_unsafe(catalog, tmp_path):
    """Each string scalar holding a Jinja opener carries ``!unsafe``; every other one is a plain quoted string."""
    import yaml

    from tests.catalog.helpers import edit

    copy = tmp_path / "images"
    shutil.copytree(catalog.root, copy)
    edit(copy, "cpu-infer.yaml", {"description": "{{ lookup('pipe', 'id') }} {% if x %}{# c #}"})
    from builder.catalog.loader import load_catalog

    vars_file = write_render(load_catalog(copy), "cpu-infer", "local", tmp_path / "out", commit="c")[0]
    wrong = []

    def walk(node: yaml.Node, path: str) -> None:
        if isinstance(node, yaml.ScalarNode):
            template = any(opener in node.value for opener in ("{{", "{%", "{#"))
            if template and node.tag != "!unsafe":
                wrong.append((path, "untagged template", node.value))
            if not template and node.tag == "!unsafe":
                wrong.append((path, "tagged non-template", node.value))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{path}[{i}]")
        else:
            for key, value in node.value:
                if path:  # the variable names themselves are builder's own
                    walk(key, f"{path}.<key>")
                walk(value, f"{path}.{key.value}" if path else key.value)

    text = vars_file.read_text()
    walk(yaml.compose(text), "")
    assert not wrong, wrong[:5]
    assert "!unsafe" in text  # the description above reached the manifest, tagged


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


def test_rendered_values_keep_their_type_when_ansible_reads_them():
    """ansible-core 2.19 resolves a ``!unsafe`` scalar as if it were plain: ``!unsafe '12.10'`` loads as the float
    12.1, ``!unsafe '0000'`` as 0, ``!unsafe 'true'`` as True. Only strings that can hold a template (a Jinja
    delimiter) are tagged, so every other value reaches Ansible as the string the catalog wrote."""
    from ansible.parsing.dataloader import DataLoader

    values = {"version": "12.10", "commit": "0" * 40, "flag": "true", "date": "2026-12-01", "plain": "x",
              "nested": {"pin": "1.20", "list": ["007", "{{ lookup('pipe', 'id') }}"]},
              "template": "{{ lookup('pipe', 'id') }}", "statement": "{% raw %}", "comment": "{# x #}"}
    from builder.render import dump_vars

    loaded = DataLoader().load(dump_vars(values))
    assert loaded == values
    assert all(type(v) is not int and type(v) is not float for v in loaded["nested"]["list"])
