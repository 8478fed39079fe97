"""builder.stack: one row per component (role, unit, checks), layers derived from roles, one resolved Stack."""

from __future__ import annotations

import ast
import re

import yaml

from builder.catalog.loader import load_catalog
from builder.catalog.schema import Components
from builder.paths import IMAGES_DIR, PLAYBOOK, ROLES_DIR, VERIFY_SUITES
from builder.render import ansible_vars
from builder.stack import resolve
from builder.stack.components import COMPONENTS
from builder.stack.layers import LAYERS, layer_of
from builder.verify.expectations import build_expectations

CATALOG = load_catalog(IMAGES_DIR)


def test_every_catalog_component_has_one_row_and_every_row_a_catalog_component():
    assert sorted(COMPONENTS) == sorted(Components.model_fields)


def test_every_component_role_exists_and_is_in_exactly_one_layer():
    for name, row in COMPONENTS.items():
        assert (ROLES_DIR / row.role / "tasks" / "main.yml").is_file(), name
        assert [layer.name for layer in LAYERS if name in layer.components] == [layer_of(name)]


def test_every_named_check_exists_in_the_static_suite():
    for name, row in COMPONENTS.items():
        for check in row.checks:
            path, function = check.split("::")
            tree = ast.parse((VERIFY_SUITES / path).read_text(encoding="utf-8"))
            assert function in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, (name, check)


def test_playbook_runs_each_role_only_for_its_own_components():
    """The ``when:`` of a component role in ansible/image.yml names exactly the components of that role."""
    by_role: dict[str, set[str]] = {}
    for name, row in COMPONENTS.items():
        by_role.setdefault(row.role, set()).add(name)
    entries = yaml.safe_load(PLAYBOOK.read_text())[0]["roles"]
    seen = set()
    for entry in entries:
        if entry["role"] not in by_role:
            continue
        condition = " ".join(entry["when"]) if isinstance(entry.get("when"), list) else str(entry.get("when", ""))
        named = {word for word in re.findall(r"'([a-z_]+)'", condition) if word in COMPONENTS}
        assert named == by_role[entry["role"]], entry["role"]
        seen.add(entry["role"])
    assert seen == set(by_role)


def test_stack_flattens_once_for_render_manifest_tags_and_expectations():
    stack = resolve(CATALOG, "ndh100-train")
    pins = CATALOG.model("ndh100-train").components.model_dump(mode="json", exclude_none=True)
    assert stack.versions == {name: str(spec["version"]) for name, spec in pins.items()}
    rendered = ansible_vars(CATALOG, "ndh100-train", image_version="2026.1201.0", commit="c" * 40)
    assert rendered["builder_image_manifest"]["components"] == stack.versions
    assert rendered["builder_image_manifest"]["version"] == "2026.1201.0"
    assert build_expectations(CATALOG, "ndh100-train")["component_versions"] == stack.versions
    tags = stack.version_tags({"builder.verification": "passed"})
    assert {k.removeprefix("component."): v for k, v in tags.items() if k.startswith("component.")} == stack.versions


def test_fabric_manager_is_installed_only_on_nvswitch_sizes():
    from builder.stack import from_image

    image = CATALOG.model("ndh100-train")
    on_nvswitch = resolve(CATALOG, "ndh100-train")
    elsewhere = from_image(image, {"Standard_X": {"nvswitch": False}})
    assert on_nvswitch.has_nvswitch and "fabric_manager" in on_nvswitch.installed()
    assert "nvidia-fabricmanager.service" in on_nvswitch.units()
    assert "fabric_manager" in elsewhere.components and "fabric_manager" not in elsewhere.installed()
    assert "nvidia-fabricmanager.service" not in elsewhere.units()
