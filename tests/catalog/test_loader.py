"""Catalog loading: inheritance, provenance and every bad-input case (exit 2, file:line, no traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.catalog.loader import load_catalog
from builder.errors import InputError
from tests.catalog.helpers import edit


def write(catalog: Path, name: str, text: str) -> Path:
    path = catalog / name
    path.write_text(text)
    return path


def load_error(catalog: Path) -> InputError:
    with pytest.raises(InputError) as info:
        load_catalog(catalog)
    return info.value


def test_shipped_catalog_loads_and_resolves_inheritance():
    catalog = load_catalog(Path("images"))
    image = catalog.images["ndh100-train"]
    assert image.chain == ["ndh100-train", "nvidia-train", "nvidia-base", "base-dsvm"]
    model = catalog.model("ndh100-train")
    # deep merge: the child's gallery keeps the parent's regions and adds its own definition
    assert model.gallery.definition == "ndh100-train"
    assert model.gallery.identifier.publisher == "contoso-platform"
    assert model.components.fabric_manager.version == model.components.nvidia_driver.version
    # provenance points at the file that set the value
    assert image.where(("components", "cuda", "version"))[0].endswith("nvidia-base.yaml")
    assert image.where(("gallery", "definition"))[0].endswith("ndh100-train.yaml")


def test_lists_replace_and_null_deletes(catalog_copy):
    edit(catalog_copy, "nca100-infer.yaml", {"gallery.target_regions": [{"name": "westeurope", "replicas": 3}],
                                             "components.cudnn": None})
    # a null for a key the parent sets deletes it
    text = (catalog_copy / "nca100-infer.yaml").read_text() + "components:\n  cudnn: null\n"
    (catalog_copy / "nca100-infer.yaml").write_text(text.replace("components: {}\n", ""))
    model = load_catalog(catalog_copy).model("nca100-infer")
    assert [(r.name, r.replicas) for r in model.gallery.target_regions] == [("westeurope", 3)]
    assert model.components.cudnn is None
    assert model.components.cuda is not None


def test_inheritance_of_any_depth(catalog_copy):
    write(catalog_copy, "level1.yaml", "name: level1\nabstract: true\nextends: ndh100-train\ndescription: x\n")
    write(catalog_copy, "level2.yaml", "name: level2\nabstract: true\nextends: level1\n")
    write(catalog_copy, "level3.yaml", "name: level3\nextends: level2\ngallery:\n  definition: level3\n"
                                       "  identifier: {sku: level3}\n")
    catalog = load_catalog(catalog_copy)
    assert catalog.images["level3"].chain[:4] == ["level3", "level2", "level1", "ndh100-train"]
    assert catalog.model("level3").components.cuda.version == "13.0.2"


@pytest.mark.parametrize(
    ("file", "text", "line", "needle"),
    [
        ("broken.yaml", "name: broken\ndescription: [unclosed\n", 3, "YAML syntax error"),
        ("empty.yaml", "", 1, "empty file"),
        ("list.yaml", "- a\n- b\n", 1, "is a list"),
        ("scalar.yaml", "just text\n", 1, "is a scalar"),
        ("dup.yaml", "name: dup\nname: again\n", 2, "duplicate key 'name'"),
    ],
)
def test_documents_that_are_not_valid_mappings(catalog_copy, file, text, line, needle):
    write(catalog_copy, file, text)
    error = load_error(catalog_copy)
    [problem] = error.problems
    assert str(problem.file).endswith(file)
    assert problem.line == line
    assert needle in problem.message


def test_unknown_key_names_line_and_suggests(catalog_copy):
    path = catalog_copy / "ndh100-train.yaml"
    path.write_text(path.read_text() + "target_sku: [Standard_ND96isr_H100_v5]\n")
    [problem] = load_error(catalog_copy).problems
    assert problem.field == "target_sku"
    assert problem.line == len(path.read_text().splitlines())
    assert "did you mean 'target_skus'" in problem.message


def test_unknown_nested_key_in_parent_is_reported_in_parent_file(catalog_copy):
    path = catalog_copy / "nvidia-base.yaml"
    path.write_text(path.read_text().replace("cuda: {version: 13.0.2}", "cuda: {version: 13.0.2, minor_compat: true}"))
    found = load_error(catalog_copy).problems
    assert found and all(str(p.file).endswith("nvidia-base.yaml") for p in found)
    assert any("did you mean 'minor_version_compat'" in p.message for p in found)


def test_wrong_type_says_what_to_do(catalog_copy):
    path = catalog_copy / "nvidia-base.yaml"
    path.write_text(path.read_text().replace('cuda: {version: 13.0.2}', "cuda: {version: 13.0}"))
    problems = load_error(catalog_copy).problems
    assert any(p.field == "components.cuda.version" and "expected a string" in p.message and "quote" in p.message
               for p in problems)


def test_missing_required_field(catalog_copy):
    path = catalog_copy / "cpu-infer.yaml"
    path.write_text(path.read_text().replace("purpose: infer\n", ""))
    [problem] = load_error(catalog_copy).problems
    assert (problem.field, problem.message, problem.image) == ("purpose", "required field missing", "cpu-infer")


def test_unknown_parent_suggests(catalog_copy):
    path = catalog_copy / "cpu-infer.yaml"
    path.write_text(path.read_text().replace("extends: base-dsvm", "extends: base-dsv"))
    [problem] = load_error(catalog_copy).problems
    assert problem.field == "extends" and problem.line == 2
    assert "unknown parent image 'base-dsv'" in problem.message and "did you mean 'base-dsvm'" in problem.message


def test_cycle_in_extends(catalog_copy):
    write(catalog_copy, "a.yaml", "name: a\nabstract: true\nextends: b\n")
    write(catalog_copy, "b.yaml", "name: b\nabstract: true\nextends: a\n")
    problems = load_error(catalog_copy).problems
    assert any("cycle in extends: a -> b -> a" in p.message for p in problems)


def test_duplicate_image_name(catalog_copy):
    write(catalog_copy, "zz-copy.yaml", (catalog_copy / "cpu-infer.yaml").read_text())
    [problem] = load_error(catalog_copy).problems
    assert "duplicate image name 'cpu-infer'" in problem.message and "cpu-infer.yaml:1" in problem.message
    assert str(problem.file).endswith("zz-copy.yaml")


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("version: 580.126.16, flavor: open", "version: 580.x, flavor: open", "components.nvidia_driver.version"),
        ("nccl: {version: 2.28.9-1+cuda13.0}", "nccl: {version: 2.28.9}", "components.nccl.version"),
        ('cudnn: {version: 9.13.0.50, cuda: "13"}', 'cudnn: {version: "9.13", cuda: "13.0"}', "components.cudnn.cuda"),
    ],
)
def test_invalid_version_strings(catalog_copy, old, new, field):
    path = catalog_copy / "nvidia-base.yaml"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    problems = load_error(catalog_copy).problems
    assert any(p.field == field and "invalid value" in p.message for p in problems)


def test_bad_sku_table_entry(catalog_copy):
    path = catalog_copy / "skus.yaml"
    path.write_text(path.read_text().replace("    vcpus: 40\n", "    vcpus: forty\n", 1))
    problems = load_error(catalog_copy).problems
    assert any(str(p.file).endswith("skus.yaml") and p.field == "skus.Standard_NC40ads_H100_v5.vcpus"
               for p in problems)
