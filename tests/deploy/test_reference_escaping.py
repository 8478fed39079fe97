"""``builder reference``: catalog text is data in every snippet (issue 18, "Catalog text runs as code").

The names are checked by ``validate`` (Azure naming rules), and ``reference`` applies those rules too; these tests
build the target around a hostile name directly, so each format's escaping holds on its own.
"""

from __future__ import annotations

import io
import json
import re
import subprocess

import hcl2
import pytest

from builder.catalog.loader import load_catalog
from builder.reference import Target, render
from tests.conftest import REPO

CATALOG = load_catalog(REPO / "images")
HOSTILE = "rg'\"$(touch {marker})`touch {marker}`${{x}}%{{y}}\\\\z"


def _target(tmp_path, subscription: str | None = None) -> tuple[Target, str]:
    model = CATALOG.model("cpu-infer")
    hostile = HOSTILE.format(marker=tmp_path / "executed")
    gallery = model.gallery.model_copy(update={"resource_group": hostile, "gallery": "g${y}"})
    image = model.model_copy(update={"gallery": gallery})
    size = image.target_skus[0]
    return Target(image, subscription, "2026.1129.3", size, CATALOG.skus[size]), hostile


def _expected(hostile: str, sub: str) -> str:
    g = CATALOG.model("cpu-infer").gallery
    return (
        f"/subscriptions/{sub}/resourceGroups/{hostile}/providers/Microsoft.Compute/galleries/g${{y}}/images/"
        f"{g.definition}/versions/2026.1129.3"
    )


def test_cli_quotes_catalog_text(tmp_path):
    target, hostile = _target(tmp_path)
    snippet = render(target, "cli")
    script = 'az() { for a in "$@"; do printf "%s\\n" "$a"; done; }\n' + snippet
    out = subprocess.run(
        ["sh", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "AZURE_SUBSCRIPTION_ID": "SUB", "RESOURCE_GROUP": "RG"},
    )
    args = out.stdout.splitlines()
    assert not (tmp_path / "executed").exists(), "pasting the snippet ran a command from the catalog"
    assert args[args.index("--image") + 1] == _expected(hostile, "SUB")
    assert args[args.index("--resource-group") + 1] == "RG"


def test_terraform_escapes_template_markers(tmp_path):
    target, hostile = _target(tmp_path)
    text = render(target, "terraform")
    doc = hcl2.load(io.StringIO(text))
    blocks = {k.strip('"'): v for block in doc["resource"] for k, v in block.items()}
    raw = {k.strip('"'): v for k, v in blocks["azurerm_linux_virtual_machine"].items()}["vm"]["source_image_id"]
    # The only template left is the placeholder; the catalog's ${ and %{ are doubled (HCL's escape).
    assert re.findall(r"(?<!\$)\$\{[^}]*\}", raw) == ["${var.azure_subscription_id}"]
    assert re.findall(r"(?<!%)%\{", raw) == []
    unescaped = json.loads(raw.replace("$${", "${").replace("%%{", "%{"))
    assert unescaped == _expected(hostile, "${var.azure_subscription_id}")


def _bicep_literal(text: str) -> tuple[str, list[str]]:
    """Decode one Bicep string literal (without its quotes): the value and the interpolations left in it."""
    out, refs, i = [], [], 0
    escapes = {"\\": "\\", "'": "'", "n": "\n", "r": "\r", "t": "\t", "$": "$"}
    while i < len(text):
        char = text[i]
        if char == "\\":
            out.append(escapes[text[i + 1]])
            i += 2
        elif text.startswith("${", i):
            end = text.index("}", i)
            refs.append(text[i + 2 : end])
            out.append("${" + text[i + 2 : end] + "}")
            i = end + 1
        else:
            assert char != "'", "an unescaped quote ends the string early"
            out.append(char)
            i += 1
    return "".join(out), refs


def test_bicep_escapes_quotes_and_interpolation(tmp_path):
    target, hostile = _target(tmp_path)
    text = render(target, "bicep")
    literal = re.search(r"^\s*id: '(.*)'$", text, re.M).group(1)
    value, refs = _bicep_literal(literal)
    assert refs == ["AZURE_SUBSCRIPTION_ID"]  # the param; the catalog's ${x} and ${y} stay text
    assert value == _expected(hostile, "${AZURE_SUBSCRIPTION_ID}")


@pytest.mark.parametrize("fmt", ["cli", "terraform", "bicep", "cyclecloud", "arm", "batch"])
def test_a_newline_in_a_note_stays_in_the_comment(tmp_path, fmt):
    target, _ = _target(tmp_path)
    target.notes.append("line one\nrm -rf /tmp/x")
    assert not any(line.startswith("rm -rf") for line in render(target, fmt).splitlines())


def test_configured_subscription_is_escaped_like_the_rest(tmp_path):
    target, hostile = _target(tmp_path, subscription="s$(id)")
    script = 'az() { for a in "$@"; do printf "%s\\n" "$a"; done; }\n' + render(target, "cli")
    args = subprocess.run(
        ["sh", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "RESOURCE_GROUP": "RG"},
    ).stdout.splitlines()
    assert args[args.index("--image") + 1] == _expected(hostile, "s$(id)")


def test_arm_expression_keeps_catalog_text_literal(tmp_path):
    from builder.emulator.template import Scope, evaluate

    target, hostile = _target(tmp_path)
    template = json.loads(render(target, "arm"))
    raw = template["resources"][0]["properties"]["storageProfile"]["imageReference"]["id"]
    assert raw.startswith("[concat(")
    scope = Scope("SUB", "rg", "eastus2", parameters={"azure_subscription_id": "SUB"})
    assert evaluate(raw, scope) == _expected(hostile, "SUB")  # the catalog's quote stays text ('' in the literal)


def test_scale_set_command_quotes_catalog_text(tmp_path):
    target, hostile = _target(tmp_path)
    train = CATALOG.model("cpu-train")
    image = train.model_copy(update={"gallery": target.image.gallery.model_copy(update={"definition": "cpu-infer"})})
    size = image.target_skus[0]
    scale_set = Target(image, None, "2026.1129.3", size, CATALOG.skus[size])
    script = 'az() { for a in "$@"; do printf "%s\\n" "$a"; done; }\n' + render(scale_set, "vmss-cli")
    args = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "AZURE_SUBSCRIPTION_ID": "SUB", "RESOURCE_GROUP": "RG",
                               "SUBNET_ID": "SN"}).stdout.splitlines()
    assert not (tmp_path / "executed").exists()
    assert args[args.index("--image") + 1] == _expected(hostile, "SUB")
    assert args[args.index("--subnet") + 1] == "SN" and args[args.index("--lb") + 1] == ""
