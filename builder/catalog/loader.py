"""Load ``images/*.yaml`` and ``images/skus.yaml``: parse, resolve ``extends``, validate the schema."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from builder.catalog.merge import OWN_KEYS, Origin, merge, strip_nulls
from builder.catalog.schema import Image, Sku
from builder.errors import InputError, Problem
from builder.yamlio import LocatedDoc, load_mapping, shown

SKU_FILE = "skus.yaml"
MAX_PER_ENTRY = 50  # problems listed per image or SKU; the rest are counted
MAX_PROBLEMS = 500  # problems listed per load; the rest are counted
SKU_KEYS = ("skus", "health_checks")  # health_checks: validated by builder/verify/sku.py


@dataclass
class CatalogImage:
    """One catalog entry: its own document, the merged data, provenance and (when valid) the model."""

    name: str
    doc: LocatedDoc
    data: dict[str, Any] = field(default_factory=dict)
    origin: dict[tuple, Origin] = field(default_factory=dict)
    chain: list[str] = field(default_factory=list)  # self first, then parents
    model: Image | None = None

    @property
    def file(self) -> Path:
        return self.doc.file

    @property
    def abstract(self) -> bool:
        """Only a YAML ``true`` makes an image abstract (a string such as "false" is a type error)."""
        return self.doc.data.get("abstract") is True

    def where(self, path: tuple) -> tuple[str, int]:
        """File and line that set ``path`` (or its nearest set parent)."""
        for end in range(len(path), 0, -1):
            found = self.origin.get(tuple(path[:end]))
            if found:
                return found
        return (str(self.file), 1)

    def problem(self, path: tuple, message: str, severity: str = "error") -> Problem:
        file, line = self.where(path)
        return Problem(message, file=file, line=line, field=dotted(path), image=self.name, severity=severity)


@dataclass
class Catalog:
    root: Path
    images: dict[str, CatalogImage]
    skus: dict[str, Sku]
    sku_doc: LocatedDoc | None = None

    def buildable(self) -> list[CatalogImage]:
        return [img for img in self.images.values() if not img.abstract]

    def get(self, name: str) -> CatalogImage:
        if name in self.images:
            return self.images[name]
        hint = difflib.get_close_matches(name, list(self.images), n=1) if len(name) <= 200 else []
        suffix = f"; did you mean '{hint[0]}'?" if hint else f"; known images: {', '.join(sorted(self.images))}"
        raise InputError(f"unknown image {shown(name)}{suffix}", file=self.root)

    def model(self, name: str) -> Image:
        image = self.get(name)
        if image.model is None or image.abstract:
            raise InputError(f"image '{name}' is abstract and cannot be built", file=image.file)
        return image.model


def dotted(path: tuple, limit: int = 40) -> str:
    """``a.b[0].c``; a part longer than ``limit`` characters is cut (a hostile key cannot flood a message)."""
    out = ""
    for part in path:
        text = str(part) if len(str(part)) <= limit else f"{str(part)[:limit]}..."
        out += f"[{part}]" if isinstance(part, int) else (f".{text}" if out else text)
    return out


def catalog_files(root: Path) -> list[Path]:
    if not root.is_dir():
        raise InputError("catalog folder not found (use --catalog DIR)", file=root)
    return sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.name != SKU_FILE)


def load_catalog(root: Path, validate_models: bool = True) -> Catalog:
    """Parse, resolve and schema-check every image; raise InputError listing every problem."""
    problems: list[Problem] = []
    skus, sku_doc = _load_skus(root, problems)
    images: dict[str, CatalogImage] = {}
    for file in catalog_files(root):
        try:
            doc = load_mapping(file, what="catalog image")
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        name = _image_name(doc, problems)
        if name is None:
            continue
        if name in images:
            first = images[name].doc
            problems.append(Problem(f"duplicate image name {shown(name)} (also in {first.file}:"
                                    f"{first.lines[('name',)]})", file=file, line=doc.lines[("name",)], field="name"))
            continue
        _check_own_keys(doc, problems)
        images[name] = CatalogImage(name=name, doc=doc)
    cycles: set[frozenset[str]] = set()
    for image in images.values():
        _resolve(image, images, problems, cycles)
    catalog = Catalog(root=root, images=images, skus=skus, sku_doc=sku_doc)
    if validate_models:
        for image in images.values():
            if image.chain:
                _validate(image, problems)
    if problems:
        raise InputError(_capped(_unique(problems)))
    return catalog


def _image_name(doc: LocatedDoc, problems: list[Problem]) -> str | None:
    """The image's ``name`` when it is a non-empty string; else None, with the problem recorded."""
    if "name" not in doc.data:
        problems.append(Problem("required field missing: every image names itself", file=doc.file, line=1,
                                field="name"))
        return None
    name = doc.data["name"]
    if not isinstance(name, str) or not name:
        problems.append(Problem(f"wrong type: expected a non-empty string, found {type(name).__name__} "
                                f"{shown(name)}", file=doc.file, line=doc.line_of(("name",)), field="name"))
        return None
    return name


def _check_own_keys(doc: LocatedDoc, problems: list[Problem]) -> None:
    """``abstract`` must be a YAML boolean: a string "false" would otherwise read as true."""
    value = doc.data.get("abstract", False)
    if not isinstance(value, bool):
        problems.append(Problem(f"wrong type: expected a boolean (true or false, unquoted), found "
                                f"{type(value).__name__} {shown(value)}", file=doc.file,
                                line=doc.line_of(("abstract",)), field="abstract", image=str(doc.data["name"])))


def _unique(problems: list[Problem]) -> list[Problem]:
    """``problems`` without repeats, in order (one bad parent is reported once, not once per child)."""
    seen: set[str] = set()
    out = []
    for problem in problems:
        key = str(problem)
        if key not in seen:
            seen.add(key)
            out.append(problem)
    return out


def _capped(problems: list[Problem]) -> list[Problem]:
    if len(problems) <= MAX_PROBLEMS:
        return problems
    rest = Problem(f"{len(problems) - MAX_PROBLEMS} more problems not shown", file=problems[MAX_PROBLEMS].file)
    return [*problems[:MAX_PROBLEMS], rest]


def _load_skus(root: Path, problems: list[Problem]) -> tuple[dict[str, Sku], LocatedDoc | None]:
    file = root / SKU_FILE
    if not file.exists():
        problems.append(Problem(f"SKU table missing: create {SKU_FILE} with a 'skus' mapping", file=file))
        return {}, None
    try:
        doc = load_mapping(file, what="SKU table")
    except InputError as exc:
        problems.extend(exc.problems)
        return {}, None
    for key in doc.data:
        if key not in SKU_KEYS:
            hint = difflib.get_close_matches(key, SKU_KEYS, n=1) if len(key) <= 200 else []
            tip = f"did you mean '{hint[0]}'?" if hint else f"allowed: {', '.join(SKU_KEYS)}"
            problems.append(Problem(f"unknown key {shown(key)}; {tip}", file=file,
                                    line=doc.line_of((key,)), field=dotted((key,))))
    table = doc.data.get("skus")
    if not isinstance(table, dict):
        problems.append(Problem("expected a mapping 'skus' of VM size -> facts", file=file,
                                line=doc.line_of(("skus",)), field="skus"))
        return {}, doc
    skus: dict[str, Sku] = {}
    for name, facts in table.items():
        try:
            skus[name] = Sku.model_validate(facts)
        except ValidationError as exc:
            for err in _first(exc.errors(), problems, file, doc.line_of(("skus", name)), dotted(("skus", name))):
                path = ("skus", name, *err["loc"])
                problems.append(Problem(_message(err, Sku, err["loc"]), file=file, line=doc.line_of(path),
                                        field=dotted(path)))
    return skus, doc


def _resolve(image: CatalogImage, images: dict[str, CatalogImage], problems: list[Problem],
             cycles: set[frozenset[str]]) -> None:
    """Merge ``image`` over its ``extends`` chain; a bad parent or a cycle is reported once, however many
    images lead to it (``cycles`` holds the cycles already reported)."""
    chain = [image.name]
    current = image
    while (parent_name := current.doc.data.get("extends")) is not None:
        line = current.doc.lines.get(("extends",), 1)
        if not isinstance(parent_name, str) or parent_name not in images:
            short = isinstance(parent_name, str) and len(parent_name) <= 200
            hint = difflib.get_close_matches(parent_name, list(images), n=1) if short else []
            tip = f"; did you mean '{hint[0]}'?" if hint else ""
            problems.append(Problem(f"unknown parent image {shown(parent_name)}{tip}", file=current.file, line=line,
                                    field="extends", image=current.name))
            return
        if parent_name in chain:
            members = chain[chain.index(parent_name):]
            if frozenset(members) not in cycles:
                cycles.add(frozenset(members))
                cycle = " -> ".join(dotted((name,)) for name in [*members, parent_name])
                problems.append(Problem(f"cycle in extends: {cycle}", file=current.file, line=line,
                                        field="extends", image=current.name))
            return
        chain.append(parent_name)
        current = images[parent_name]
    data: dict[str, Any] = {}
    origin: dict[tuple, Origin] = {}
    for name in reversed(chain):
        doc = images[name].doc
        own = {k: v for k, v in doc.data.items() if k not in OWN_KEYS or name == image.name}
        own_origin = {p: (str(doc.file), line) for p, line in doc.lines.items()}
        data, origin = merge(data, origin, own, own_origin)
    image.data = strip_nulls(data)
    image.origin = origin
    image.chain = chain


def _validate(image: CatalogImage, problems: list[Problem]) -> None:
    try:
        image.model = Image.model_validate(image.data)
    except ValidationError as exc:
        errors = [e for e in exc.errors() if not (image.abstract and e["type"] == "missing")]
        # abstract images may leave required fields to their children
        for err in _first(errors, problems, *image.where(()), image.name):
            loc = tuple(err["loc"])
            problems.append(image.problem(loc, _message(err, Image, loc)))


def _first(errors: list[dict], problems: list[Problem], file: str | Path, line: int, subject: str) -> list[dict]:
    """The first ``MAX_PER_ENTRY`` errors; a note for the rest (10,000 unknown keys give 51 lines, not 10,000)."""
    if len(errors) > MAX_PER_ENTRY:
        problems.append(Problem(f"{len(errors) - MAX_PER_ENTRY} more problems in {subject} not shown", file=file,
                                line=line))
    return errors[:MAX_PER_ENTRY]


def _message(err: dict, model: type[BaseModel], loc: tuple) -> str:
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1) if len(str(loc[-1])) <= 200 else []
        tip = f"; did you mean '{hint[0]}'?" if hint else (f"; allowed: {', '.join(allowed)}" if allowed else "")
        return f"unknown key {shown(loc[-1])}{tip}"
    if kind == "missing":
        return "required field missing"
    if kind == "string_pattern_mismatch":
        return f"invalid value {shown(value)}: expected the pattern {err['ctx']['pattern']}"
    if kind in ("string_type", "int_type", "bool_type", "dict_type", "list_type", "model_type", "float_type",
                "int_parsing", "bool_parsing", "date_type", "date_from_datetime_parsing", "date_parsing"):
        expected = {"string_type": "a string (quote versions such as \"13.0\")"}.get(kind, kind.split("_")[0])
        return f"wrong type: expected {expected}, found {type(value).__name__} {shown(value)}"
    if kind in ("enum", "literal_error"):
        return f"invalid value {shown(value)}: expected {err['ctx'].get('expected')}"
    return f"{err['msg']} (found {shown(value)})" if value is not None and not isinstance(value, dict) else err["msg"]


def _allowed_keys(model: type[BaseModel], path: tuple) -> list[str]:
    current: Any = model
    for part in path:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        info = current.model_fields.get(part)
        if info is None:
            return []
        current = _model_in(info.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(current.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None
