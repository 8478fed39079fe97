"""Fuzz the catalog loader (issue 18): whatever the text, loading ends in a Catalog or an InputError, never another
exception; a Catalog that loads also passes through the rules without one.

Fixed budget, derandomized (the same examples on every run, so CI is deterministic): 300 examples in all over a
five-image slice of the shipped catalog, about ten seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.catalog.loader import load_catalog
from builder.catalog.rules import check_catalog
from builder.errors import InputError
from tests.conftest import REPO

SLICE = ("skus.yaml", "base-dsvm.yaml", "cpu-infer.yaml", "nvidia-base.yaml", "nvidia-infer.yaml", "nct4-infer.yaml")
FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _slice_texts() -> dict[str, str]:
    """The slice's files as shipped, except skus.yaml cut to the sizes the slice uses (it is most of the parse)."""
    texts = {name: (REPO / "images" / name).read_text() for name in SLICE}
    catalog = load_catalog(REPO / "images")
    used = {
        size
        for name in ("cpu-infer", "nct4-infer")
        for size in [*catalog.model(name).target_skus, catalog.model(name).build.vm_size]
    }
    table = yaml.safe_load(texts["skus.yaml"])
    texts["skus.yaml"] = yaml.safe_dump(
        {"skus": {k: v for k, v in table["skus"].items() if k in used}}, sort_keys=False
    )
    return texts


ORIGINAL = _slice_texts()
KEYS = [
    "name",
    "extends",
    "abstract",
    "description",
    "os",
    "purpose",
    "kind",
    "base",
    "target_skus",
    "build",
    "components",
    "gallery",
    "tests",
    "marketplace",
    "image",
    "version",
    "region",
    "vm_size",
    "replicas",
    "target_regions",
    "resource_group",
    "identifier",
    "publisher",
    "sku",
    "cuda",
    "nvidia_driver",
    "skus",
    "<<",
]
SNIPPETS = [
    "&a ",
    "*a",
    "<<: *a\n",
    "!!python/object:os.system ",
    "!!binary ",
    "? ",
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    "\t",
    "\x00",
    "\x01",
    "\ufeff",
    "\udcff",
    ".nan",
    ".inf",
    "~",
    "null",
    "'",
    '"',
    "#",
    "%YAML 1.1\n",
    "---\n",
    "...\n",
    "\n",
    "  ",
    "2026-13-45",
    "0x1F",
    "1e999",
    "yes",
    "\u0661",
    "\u0433",
]


@pytest.fixture(scope="module")
def fuzz_catalog(tmp_path_factory) -> Path:
    """A small copy of the shipped catalog: a CPU and a GPU chain and the SKU table."""
    root = tmp_path_factory.mktemp("fuzz") / "images"
    root.mkdir()
    restore(root)
    return root


def load_and_check(root: Path) -> None:
    """The property: a clean Catalog (and rules that run on it) or an InputError, nothing else."""
    try:
        catalog = load_catalog(root)
    except InputError as exc:
        assert exc.problems and all(str(p) for p in exc.problems)
        return
    check_catalog(catalog)


def restore(root: Path) -> None:
    for name, text in ORIGINAL.items():
        (root / name).write_text(text)
    for extra in root.glob("fuzz*.yaml"):
        extra.unlink()


VALUES = [
    "",
    "*a",
    "[*a, *a]",
    "{x: *a}",
    "&a [1, *a]",
    ".nan",
    "-.inf",
    "'text'",
    "1",
    "true",
    '"false"',
    "[",
    "{",
    "!!binary AAAA",
    "!!python/name:os.system",
    "!!set {a}",
    "2026-02-30",
    "a\x01b",
    "12:30",
    "0o17",
    "nct4-infer",
    "base-dsvm",
    "x" * 300,
]


def _render(node: tuple, indent: int = 0) -> str:
    """Block-style YAML text of a generated tree: ("map" | "anchored", [(key, child)]) or ("scalar", text);
    an "anchored" mapping carries ``&a``, so a ``*a`` inside it is a recursive alias."""
    _kind, body = node
    pad = "  " * indent
    lines = []
    for key, child in body:
        if child[0] == "scalar":
            lines.append(f"{pad}{key}: {child[1]}\n")
        else:
            anchor = " &a" if child[0] == "anchored" else ""
            lines.append(f"{pad}{key}:{anchor}\n{_render(child, indent + 1) or pad + '  {}' + chr(10)}")
    return "".join(lines)


yaml_trees = st.recursive(
    st.tuples(st.just("scalar"), st.sampled_from(VALUES)),
    lambda inner: st.tuples(
        st.sampled_from(["map", "anchored"]),
        st.lists(
            st.tuples(st.sampled_from(KEYS) | st.text("abc_-.", min_size=1, max_size=4), inner), min_size=1, max_size=4
        ),
    ),
    max_leaves=12,
).filter(lambda node: node[0] != "scalar")
yaml_lines = yaml_trees.map(lambda tree: "name: fuzz\n" + _render(tree))


@FUZZ
@given(text=yaml_lines)
def test_generated_yaml_as_an_image_file(fuzz_catalog, text):
    """Nested block YAML with anchors, recursive aliases, tags and odd scalars (the loader before issue 18 raised
    RecursionError here)."""
    restore(fuzz_catalog)
    (fuzz_catalog / "fuzz.yaml").write_text(text)
    load_and_check(fuzz_catalog)


@settings(FUZZ, max_examples=50)
@given(
    text=st.lists(st.sampled_from([*SNIPPETS, *KEYS, "a", "1", ".", "-"]), max_size=60).map("".join)
    | st.text(max_size=300)
)
def test_any_text_as_an_image_file(fuzz_catalog, text):
    restore(fuzz_catalog)
    (fuzz_catalog / "fuzz.yaml").write_bytes(text.encode("utf-8", "surrogateescape"))
    load_and_check(fuzz_catalog)


@st.composite
def mutations(draw) -> tuple[str, bytes]:
    """A real catalog file with a few bytes deleted, inserted or replaced, or a line duplicated."""
    name = draw(st.sampled_from(SLICE))
    data = bytearray(ORIGINAL[name].encode())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["delete", "insert", "replace", "duplicate-line"]))
        piece = draw(st.sampled_from(SNIPPETS + KEYS) | st.binary(min_size=1, max_size=4).map(bytes.hex)).encode(
            "utf-8", "surrogateescape"
        )
        if kind == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif kind == "insert":
            data[at:at] = piece
        elif kind == "replace":
            data[at : at + len(piece)] = piece
        else:
            start = data.rfind(b"\n", 0, at) + 1
            end = data.find(b"\n", at)
            line = bytes(data[start : end + 1 if end >= 0 else len(data)])
            data[start:start] = line
    return name, bytes(data)


@FUZZ
@given(mutation=mutations())
def test_mutated_real_catalog_files(fuzz_catalog, mutation):
    restore(fuzz_catalog)
    name, data = mutation
    (fuzz_catalog / name).write_bytes(data)
    load_and_check(fuzz_catalog)


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.dates()
    | st.sampled_from(["13.0", "580.65.06", "eastus2", "ai_images"])
)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)


@settings(FUZZ, max_examples=50)
@given(overrides=st.dictionaries(st.sampled_from(KEYS[:13]), documents, max_size=6))
def test_structured_child_of_a_real_image(fuzz_catalog, overrides):
    """Well-formed YAML of any shape laid over a real parent: the schema and rules see every kind of value."""
    restore(fuzz_catalog)
    doc = {"name": "fuzz-child", "extends": "nct4-infer", **overrides}
    (fuzz_catalog / "fuzz-child.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    load_and_check(fuzz_catalog)
