"""`exportctl`: the command group, its global options, and THE one exit path.

Commands live in `exportctl/commands/` (one module each) and raise typed errors from `errors.py`; this module
alone turns an error into a message, a hint and the process exit code (the README's exit-code table).
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click

from exportctl import __version__, errors
from exportctl.commands import (
    audit,
    base_image,
    bom,
    build,
    cat,
    cell_task,
    ci,
    diff,
    doctor,
    export,
    fsck,
    gc,
    index,
    keygen,
    ls,
    merge,
    plan,
    pull,
    push,
    rebuild,
    render,
    report,
    schema,
    show,
    sign,
    verify,
)
from exportctl.commands.common import Settings, err, json_option, store_option


def fail(ctx: click.Context, error: errors.ExportctlError) -> NoReturn:
    """Report `error` (stderr; under --json also one JSON object on stdout) and exit with its code."""
    from rich.text import Text

    # Messages quote user text (recipe values, paths): print them as text, never as rich markup.
    # soft_wrap: rich inserts no line breaks, so a digest in a message stays whole (the terminal wraps).
    err().print(Text.assemble(("error:", "bold red"), " ", error.message), highlight=False, soft_wrap=True)
    if error.hint:
        err().print(Text.assemble("  ", ("fix:", "bold"), " ", error.hint), highlight=False, soft_wrap=True)
    state = ctx.ensure_object(Settings)
    if state.as_json and not state.emitted:  # stdout holds one JSON document: the result or the error
        click.echo(json.dumps({"error": error.message, "exit_code": error.exit_code, "hint": error.hint}))
    sys.exit(error.exit_code)


class ExportctlGroup(click.Group):
    """The group whose `invoke` wraps every command: the one place where failures become exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except errors.ExportctlError as error:
            fail(ctx, error)
        except click.UsageError as usage:  # click's own exit 2 would read as "validation failed"
            where = f"`{usage.ctx.command_path} --help`" if usage.ctx else "`exportctl --help`"
            fail(ctx, errors.ConfigError(usage.format_message(), hint=f"see {where}"))
        except KeyboardInterrupt:
            fail(ctx, errors.Interrupted("interrupted: the store keeps only complete writes"))


@click.group(cls=ExportctlGroup)
@click.version_option(__version__, prog_name="exportctl")
@store_option(envvar="EXPORTCTL_STORE")
@json_option
def main() -> None:
    """Reproducible, hermetic builds of model exports into a content-addressed store."""


COMMANDS = (  # the README's "Commands" table, in its order; one line each
    build.build,
    render.render,
    plan.plan,
    ls.list_bundles,
    verify.verify,
    export.export_bundle,
    keygen.keygen,
    sign.sign,
    audit.audit,
    report.report,
    bom.bom_command,
    diff.diff,
    rebuild.rebuild,
    index.index_command,
    merge.merge,
    push.push,
    pull.pull,
    show.show,
    cat.cat_blob,
    schema.schema,
    doctor.doctor,
    base_image.base_image,
    gc.gc,
    fsck.fsck,
    ci.ci,
    cell_task.cell_task,  # hidden: what a Slurm array task runs
)
for _command in COMMANDS:
    main.add_command(_command)
