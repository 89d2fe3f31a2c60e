"""`exportctl rebuild --check`: rebuild a bundle from what it recorded and compare the bytes, cell by cell."""

from __future__ import annotations

from pathlib import Path

import click

from exportctl import errors
from exportctl.commands.common import (
    emit,
    err,
    json_option,
    open_store,
    out,
    parallel_options,
    sandbox_option,
    store_option,
)
from exportctl.commands.remote import is_reference, pull_into, registry_options


@click.command()
@click.argument("digest", metavar="DIGEST|REF")
@click.option("--check", is_flag=True, required=True, help="Compare the rebuilt bytes with the bundle's.")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="The checkpoint file, when the bundle was built from one that is not in the store.")
@click.option("--inputs", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Directory with the other files the recipe names (validation images, calibration set).")
@sandbox_option()
@parallel_options
@click.option("--keep", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Build into this directory and keep it (default: a temporary one).")
@registry_options
@store_option()
@json_option
def rebuild(digest: str, check: bool, checkpoint: Path | None, inputs: Path | None, sandbox: str,
            jobs: int | None, memory_budget: int | None, keep: Path | None, ca_file: Path | None,
            insecure: bool) -> None:
    """Rebuild a bundle from what it recorded into a scratch store and report, cell by cell, identical or not."""
    from exportctl.build.rebuild import rebuild_check

    if is_reference(digest):  # pulled into the store first (checked; nothing stored if refused)
        store = open_store()
        digest = pull_into(store, digest, ca_file, insecure)
    else:
        store = open_store(create=False)
    with err().status("rebuilding", spinner="dots") as status:
        data = rebuild_check(store, digest, checkpoint=checkpoint, inputs=inputs, sandbox=sandbox, jobs=jobs,
                             memory_budget_mib=memory_budget, keep=keep,
                             report=lambda step, msg: status.update(f"{step}: {msg}"))

    def render() -> None:
        for cell in data["cells"]:
            verdict = "[green]identical[/]" if cell["identical"] else f"[red]differs[/] ({', '.join(cell['differs'])})"
            out().print(f"{cell['cell']:20} {verdict}  artifact {cell['artifact']['rebuilt']}", highlight=False)
        for note in data["notes"]:
            out().print(f"[yellow]note:[/] {note}", highlight=False)
        out().print(f"rebuilt {data['rebuilt']} ({'same digest' if data['same_digest'] else 'other digest'})",
                    highlight=False)

    emit(data, render)
    if not data["identical"]:
        differ = [c["cell"] for c in data["cells"] if not c["identical"]] or ["the checkpoint"]
        raise errors.NotReproducible(f"not reproducible: the rebuild of {data['bundle']} differs in "
                                     f"{', '.join(differ)}")
