"""Catalog commands: list, show, validate, plan, matrix."""

from __future__ import annotations

import click

from builder.cli import Context, pass_ctx
from builder.errors import EXIT_FAILED, EXIT_INPUT, InputError
from builder.output import output_option

json_option = output_option()


@click.command("list")
@output_option(tabular=True)
@click.option("--all", "include_abstract", is_flag=True, help="Include abstract (non-buildable) images.")
@pass_ctx
def list_images(ctx: Context, as_json: bool, include_abstract: bool) -> None:
    """List catalog images."""
    from builder.output import emit_json, print_table

    rows = []
    for image in sorted(ctx.catalog.images.values(), key=lambda i: i.name):
        if image.abstract and not include_abstract:
            continue
        d = image.data
        rows.append({"name": image.name, "abstract": image.abstract, "os": d.get("os"), "kind": d.get("kind"),
                     "purpose": d.get("purpose"), "target_skus": d.get("target_skus", []),
                     "description": d.get("description"), "file": str(image.file)})
    if as_json:
        emit_json(rows)
        return
    print_table(None, ["image", "os", "kind", "purpose", "target SKUs"],
                [[r["name"] + (" (abstract)" if r["abstract"] else ""), r["os"], r["kind"], r["purpose"],
                  ", ".join(r["target_skus"])] for r in rows])


@click.command("show")
@click.argument("image")
@json_option
@click.option("--explain", is_flag=True, help="Show which file and line set each value.")
@pass_ctx
def show(ctx: Context, image: str, as_json: bool, explain: bool) -> None:
    """Show an image fully resolved (inheritance applied)."""
    from builder.catalog.loader import dotted
    from builder.output import emit_json
    from builder.yamlio import dump

    entry = ctx.catalog.get(image)
    if explain:
        leaves = _leaves(entry.data)
        rows = [{"field": dotted(path), "value": value, "file": entry.where(path)[0], "line": entry.where(path)[1]}
                for path, value in leaves]
        if as_json:
            emit_json(rows)
        else:
            width = max(len(r["field"]) for r in rows)
            for r in rows:
                click.echo(f"{r['field']:<{width}}  {r['value']!s:<40}  {r['file']}:{r['line']}")
        return
    if as_json:
        emit_json({"name": entry.name, "chain": entry.chain, **entry.data})
    else:
        click.echo(f"# {entry.name}: resolved from {' <- '.join(entry.chain)}")
        click.echo(dump(entry.data), nl=False)


def _leaves(data, path=()):
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(data, list) and any(isinstance(v, dict) for v in data):
        for index, value in enumerate(data):
            yield from _leaves(value, (*path, index))
    else:
        yield path, data


@click.command("validate")
@click.argument("images", nargs=-1)
@click.option("--all", "all_images", is_flag=True, help="Validate every buildable image (the default).")
@json_option
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@pass_ctx
def validate(ctx: Context, images: tuple[str, ...], all_images: bool, as_json: bool, strict: bool) -> int:
    """Validate the catalog schema and the stack rules (driver/CUDA/Fabric Manager/..., SKUs, gallery)."""
    from builder.catalog.loader import load_catalog
    from builder.catalog.rules import check_catalog
    from builder.output import emit_json

    if images and all_images:
        raise InputError(f"give image names or --all, not both (got {', '.join(images)[:200]} and --all)",
                         field="--all")
    try:
        catalog = load_catalog(ctx.catalog_root)
        names = list(images) or None
        problems = check_catalog(catalog, names)
    except InputError as exc:
        if as_json:  # the same JSON document as a run that found problems, never text
            emit_json({"ok": False, "images": list(images), "problems": [p.as_dict() for p in exc.problems]})
            return EXIT_INPUT
        raise
    errors = [p for p in problems if p.severity == "error" or strict]
    checked = names or [i.name for i in catalog.buildable()]
    if as_json:
        emit_json({"ok": not errors, "images": checked, "problems": [p.as_dict() for p in problems]})
    else:
        for problem in problems:
            click.echo(f"{problem.severity}: {problem}", err=True)
        if not errors:
            click.echo(f"ok: {len(checked)} image(s) valid ({len(problems)} warning(s))")
    return EXIT_INPUT if errors else 0


@click.command("plan")
@click.argument("image")
@click.option("--target", type=click.Choice(["local", "azure"]), default="local", show_default=True)
@json_option
@pass_ctx
def plan(ctx: Context, image: str, target: str, as_json: bool) -> int:
    """Show what a build would do: base, layers, components, tests, destination, next version."""
    from builder.catalog.rules import check_image
    from builder.output import console, emit_json, table
    from builder.plan import make_plan
    from builder.registry import LocalRegistry
    from builder.versioning import next_version

    catalog = ctx.catalog
    model = catalog.model(image)
    errors = [p for p in check_image(catalog.get(image), catalog) if p.severity == "error"]
    if errors:
        raise InputError(errors)
    from builder.packer.chain import lookup_from_env

    version = next_version(LocalRegistry(ctx.state_dir).versions(image))
    result = make_plan(catalog, model, target, version, lookup_from_env(catalog), ctx.state_dir)
    if as_json:
        emit_json(result)
        return 0
    out = console()
    out.print(f"[bold]{result['image']}[/] ({result['kind']}, {result['purpose']}, {result['os']}) "
              f"-> target [bold]{target}[/]")
    out.print(f"base: {result['base']}")
    if len(result["base_chain"]) > 1:
        out.print(f"layered on: {' -> '.join(result['base_chain'][1:])}")
    rows = [[layer["name"], ", ".join(layer["roles"]),
             ", ".join(f"{k} {v}" for k, v in layer["components"].items()) or "-"] for layer in result["layers"]]
    out.print(table("layers", ["layer", "roles", "components"], rows))
    out.print(f"then: {', '.join(result['final_roles'])}")
    out.print(f"target SKUs: {', '.join(result['target_skus'])}")
    out.print(f"tests: {', '.join(result['tests']['suites'])}")
    d = result["destination"]
    regions = ", ".join(f"{k} x{v}" for k, v in d["regions"].items())
    out.print(f"destination: {d['resource_group']}/{d['gallery']}/{d['definition']} ({regions}), "
              f"staged with excludeFromLatest={str(d['exclude_from_latest']).lower()}")
    out.print(f"build: {', '.join(f'{k}={v}' for k, v in result['build'].items())}")
    out.print(f"next version: [bold]{result['next_version']}[/]")
    if len(result["chain"]) > 1 or target == "azure":
        links = [[link["image"], link["base"], link["digest"][:12], link["published_version"] or "-",
                  (link["published_digest"] or "-")[:12], link["status"]] for link in result["chain"]]
        out.print(table("build chain (bottom first)", ["image", "built on", "inputs digest", "latest published",
                                                       "its digest", "status"], links))
        if all(link["status"] == "unknown" for link in result["chain"]):
            out.print("status unknown: no gallery configured (set AZURE_SUBSCRIPTION_ID to compare with it)")
    return 0


@click.command("matrix")
@click.option("--changed-since", "ref", default=None, help="Only images whose inputs changed since this git ref.")
@click.option("--images", "only", default=None, help="Comma-separated image names (default: all buildable).")
@pass_ctx
def matrix(ctx: Context, ref: str | None, only: str | None) -> int:
    """Print a GitHub Actions matrix (JSON) of buildable images, optionally only those changed."""
    from builder.matrix import build_matrix, changed_files
    from builder.output import emit_json

    catalog = ctx.catalog
    names = [n.strip() for n in only.split(",")] if only else None
    if names:
        for name in names:
            catalog.model(name)
    if ref is not None and (not ref or ref.startswith("-") or any(c in ref for c in "\0\n\r") or len(ref) > 256):
        # A ref is never an option: git would read `--output=F` as one (and write F).
        raise InputError(f"not a git revision: {ref[:80]!r}", field="--changed-since")
    changed = changed_files(ref, catalog.root) if ref else None  # git runs in the catalog's repository
    emit_json(build_matrix(catalog, changed, names))
    return 0


COMMANDS = [list_images, show, validate, plan, matrix]
__all__ = ["COMMANDS", "EXIT_FAILED"]
