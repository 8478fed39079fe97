"""``builder doctor``: before a build, check what it needs and say how to fix each miss."""

from __future__ import annotations

import click

from builder.cli import Context, pass_ctx
from builder.output import output_option


@click.command("doctor")
@click.argument("image", required=False)
@click.option("--target", type=click.Choice(["local", "azure"]), default="local", show_default=True,
              help="What the build would run on: local (debootstrap, QEMU) or azure (Packer, Azure).")
@click.option("--feed", default="upstream", show_default=True,
              help="Local target: the feed the build would use (stand-in needs dpkg-deb, apt-ftparchive, gpg).")
@click.option("--no-boot-test", is_flag=True, help="Local target: the build skips the QEMU boot test.")
@click.option("--subscription", default=None, metavar="ID",
              help="Azure target: subscription id [default: $AZURE_SUBSCRIPTION_ID].")
@output_option(tabular=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
@pass_ctx
def doctor(ctx: Context, image: str | None, target: str, feed: str, no_boot_test: bool, subscription: str | None,
           as_json: bool, quiet: bool) -> None:
    """Check the tools, credentials, quota, rights, terms and gallery definition a build of IMAGE needs.

    Without IMAGE only the target's tools are checked. Exit 0 when everything is there, 1 on any miss, 2 on bad
    input (an unknown image)."""
    from builder.doctor.azure import azure_checks
    from builder.doctor.checks import summary
    from builder.doctor.local import azure_tool_checks, local_checks

    catalog = ctx.catalog
    if image is not None:
        catalog.model(image)  # an unknown or abstract image: InputError, exit 2, as every command reports it

    def say(message: str) -> None:
        if not quiet:
            click.echo(f"doctor: {message}", err=True)

    if target == "local":
        say("checking the local build's tools")
        checks = local_checks(feed=feed, boot=not no_boot_test)
    else:
        say("checking Packer, its plugins and Ansible")
        checks = azure_tool_checks(catalog)
        if image is not None:
            checks += azure_checks(catalog, image, target, say, subscription=subscription)
    result = summary(checks, image, target)
    if as_json:
        from builder.output import emit_json

        emit_json(result)
    else:
        _print(result)
    click.get_current_context().exit(0 if result["ok"] else 1)


def _print(result: dict) -> None:
    from builder.output import console, output_format, print_table

    rows = [[c["name"], "ok" if c["ok"] else "MISS", c["found"], c["fix"]] for c in result["checks"]]
    print_table(None, ["check", "status", "found", "how to fix"], rows)
    if output_format() == "tsv":  # the rows only
        return
    out = console()
    subject = f"{result['image']} ({result['target']})" if result["image"] else f"{result['target']} tools"
    if result["ok"]:
        out.print(f"{subject}: everything a build needs is there", markup=False)
    else:
        out.print(f"{subject}: {result['misses']} miss(es)", markup=False)


COMMANDS = [doctor]
