"""`exportctl`: the command group, its global options, and THE one exit path.

Commands live in `exportctl/commands/` (one module each) and raise typed errors from `errors.py`; this module
alone turns an error into a message, a hint and the process exit code (the README's exit-code table).
A command's module is imported only when that command runs (or `--help` lists it): start-up pays for one.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any, NoReturn

import click

from exportctl import __version__, errors
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
    """The group whose `invoke` wraps every command: the one place where failures become exit codes.

    `lazy_commands` maps a command's name to "module:function" in `exportctl.commands`; the module is imported
    the first time click asks for that command, so `exportctl ls` never imports what `build` needs.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands: dict[str, str] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            module, function = self.lazy_commands[cmd_name].split(":")
            command = getattr(importlib.import_module(f"exportctl.commands.{module}"), function)
            if command.name != cmd_name:  # the table and the decorator must agree, or help and dispatch differ
                raise RuntimeError(f"exportctl.commands.{module}:{function} is {command.name!r}, not {cmd_name!r}")
            self.add_command(command)
        return super().get_command(ctx, cmd_name)

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


COMMANDS = (  # the README's "Commands" table, in its order; one line each: name, module:function in commands/
    ("build", "build:build"),
    ("render", "render:render"),
    ("plan", "plan:plan"),
    ("ls", "ls:list_bundles"),
    ("verify", "verify:verify"),
    ("export", "export:export_bundle"),
    ("keygen", "keygen:keygen"),
    ("sign", "sign:sign"),
    ("audit", "audit:audit"),
    ("report", "report:report"),
    ("bom", "bom:bom_command"),
    ("diff", "diff:diff"),
    ("rebuild", "rebuild:rebuild"),
    ("index", "index:index_command"),
    ("merge", "merge:merge"),
    ("push", "push:push"),
    ("pull", "pull:pull"),
    ("show", "show:show"),
    ("cat", "cat:cat_blob"),
    ("schema", "schema:schema"),
    ("doctor", "doctor:doctor"),
    ("base-image", "base_image:base_image"),
    ("gc", "gc:gc"),
    ("fsck", "fsck:fsck"),
    ("ci", "ci:ci"),
    ("cell-task", "cell_task:cell_task"),  # hidden: what a Slurm array task runs
)
main.lazy_commands.update(COMMANDS)
