"""What every command shares: the --store/--json options, the store, the consoles, JSON-or-render output.

--store and --json are accepted both on the group (`exportctl --json ls`) and on each command
(`exportctl ls --json`): both write into one `Settings` object that every click context of a run shares.
Nothing heavy is imported here (rich, pydantic, the store) so that `exportctl --help` starts fast.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from exportctl.runners import SANDBOXES

if TYPE_CHECKING:
    from rich.console import Console

    from exportctl.store.layout import Store

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Settings:
    """The global options of one run, wherever on the command line they were given."""

    store: Path | None = None
    as_json: bool = False
    emitted: bool = False  # a command's JSON result is on stdout: an error after it must not add a second one


def settings() -> Settings:
    return click.get_current_context().ensure_object(Settings)


# Click calls these for the group's options before it makes the command's context, so the group's context
# creates the one Settings and the command's context inherits it (a given value replaces the group's).
def _set_store(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    state = ctx.ensure_object(Settings)
    if value is not None:
        state.store = value


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    state = ctx.ensure_object(Settings)
    if value:
        state.as_json = True


def store_option(envvar: str | None = None) -> Callable[[F], F]:
    return click.option("--store", type=click.Path(path_type=Path), envvar=envvar, default=None,
                        expose_value=False, callback=_set_store,
                        help="Store directory (default: $EXPORTCTL_STORE or the user data dir).")


json_option: Callable[[F], F] = click.option(
    "--json", "as_json", is_flag=True, expose_value=False, callback=_set_json,
    help="Machine-readable output on stdout (a failure prints one {\"error\", \"exit_code\", \"hint\"} object).")
recipe_argument: Callable[[F], F] = click.argument("recipe", type=click.Path(path_type=Path))


def sandbox_option(help_text: str | None = None) -> Callable[[F], F]:
    return click.option("--sandbox", type=click.Choice(["auto", *SANDBOXES]), default="auto", show_default=True,
                        help=help_text)


def parallel_options(command: F) -> F:
    """-j/--jobs and --memory-budget: how many cells run at once (`build`, and `rebuild --check` alike)."""
    command = click.option("--memory-budget", type=click.IntRange(min=1), default=None, metavar="MIB",
                           help="Memory the running cells may use together (default: the memory available now).",
                           )(command)
    return click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
                        help="Cells run at once (default: the number of cores).")(command)


def open_store(create: bool = True) -> Store:
    from exportctl.store.layout import Store, default_store_root

    return Store.open(settings().store or default_store_root(), create=create)


@functools.cache
def out() -> Console:
    """Results: tables and pages on stdout."""
    from rich.console import Console

    return Console()


@functools.cache
def err() -> Console:
    """Progress, warnings and errors on stderr, so that stdout stays the result."""
    from rich.console import Console

    return Console(stderr=True)


def emit(data: Any, render: Callable[[], None]) -> None:
    """Print `data` as JSON under --json, else call `render` to print it for people."""
    state = settings()
    if state.as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        state.emitted = True
    else:
        render()


def print_columns(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """An aligned table in plain text on stdout (bold header on a terminal), whole values and one line a row.

    For listings that grow with the store (`ls`): rich measures and wraps every cell, which on 1 000 rows costs
    more than the command's start-up, and at 80 columns it cut digests to `sha256:5fba…`, which no one can copy.
    """
    # Values come from the store, which may be someone else's: no escape sequence or line break reaches the terminal.
    rows = [tuple(v if v.isprintable() else "".join(c if c.isprintable() else "?" for c in v) for v in r)
            for r in rows]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    click.echo(click.style(line(headers), bold=True))  # click drops the style when stdout is not a terminal
    if rows:
        click.echo("\n".join(line(r) for r in rows))
