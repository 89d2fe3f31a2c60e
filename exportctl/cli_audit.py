"""Signing and audit commands: keygen, sign, ls (index-backed filters), index, audit, diff, rebuild.

Registered on `exportctl.cli.main` when imported (cli.py imports this module last).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from exportctl import errors
from exportctl.cli import JSON, _emit, _handle_errors, _store, console, main, out


@main.command()
@click.argument("private", type=click.Path(path_type=Path))
@click.option("--public", type=click.Path(path_type=Path), default=None,
              help="Where the public key goes (default: PRIVATE with .pub.pem).")
@JSON
@_handle_errors
def keygen(private: Path, public: Path | None, as_json: bool) -> None:
    """Write a new EC P-256 signing key pair (private key file mode 0600)."""
    from exportctl.trust.signing import keygen as make

    public = public or private.with_name(private.name.removesuffix(".pem") + ".pub.pem")
    keyid = make(private, public)
    data = {"private": str(private), "public": str(public), "keyid": keyid}
    _emit(as_json, data, lambda: out.print(f"key {keyid[:16]}: private {private} (0600), public {public}",
                                           highlight=False))


@main.command()
@click.argument("digest")
@click.option("--key", type=click.Path(path_type=Path), default=None, help="EC private key (PEM) to sign with.")
@click.option("--sigstore", is_flag=True, help="Sign keylessly with Sigstore (CI OIDC identity).")
@JSON
@click.pass_context
@_handle_errors
def sign(ctx: click.Context, digest: str, key: Path | None, sigstore: bool, as_json: bool) -> None:
    """Sign a bundle in the model-signing format; its first signature also attaches SLSA provenance."""
    from exportctl.trust.signing import sign_bundle

    data = sign_bundle(_store(ctx, create=False), digest, key=key, sigstore=sigstore)
    _emit(as_json, data, lambda: out.print(
        f"signed {data['bundle']} with {data['signer']} {data['keyid'][:16]}"
        + (f"; provenance {data['provenance']} attached" if data["provenance_created"] else ""), highlight=False))


def _since(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise errors.ConfigError(f"--since {value!r} is not a date",
                                 hint="use YYYY-MM-DD or an ISO 8601 time") from None
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).isoformat()


@main.command(name="ls")
@click.option("--checkpoint", default=None, help="Only bundles built from this checkpoint (digest or prefix).")
@click.option("--format", "fmt", default=None, help="Only bundles with a cell of this format.")
@click.option("--since", default=None, help="Only bundles first built at or after this date (YYYY-MM-DD).")
@click.option("--signed-by", default=None, help="Only bundles signed by this key id (prefix) or Sigstore identity.")
@JSON
@click.pass_context
@_handle_errors
def list_bundles(ctx: click.Context, checkpoint: str | None, fmt: str | None, since: str | None,
                 signed_by: str | None, as_json: bool) -> None:
    """List the bundles in the store (answered from the store's index, which follows the store)."""
    from rich.table import Table

    from exportctl import catalog as index

    rows = index.query(_store(ctx), checkpoint=checkpoint, fmt=fmt, since=_since(since), signed_by=signed_by)

    def render() -> None:
        table = Table(title="bundles")
        for col in ("bundle", "recipe", "cells", "status", "built", "signed by"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["bundle"], r["name"] or "?", ", ".join(r["cells"]), ", ".join(r["status"]),
                          (r["created"] or "?")[:19], ", ".join(r["signed_by"]) or "-")
        out.print(table)

    _emit(as_json, rows, render)


@main.command(name="index")
@click.option("--rebuild", is_flag=True, help="Recreate the index from the store.")
@JSON
@click.pass_context
@_handle_errors
def index_command(ctx: click.Context, rebuild: bool, as_json: bool) -> None:
    """Bring the store's SQLite index up to date (--rebuild: from scratch) and count what it holds."""
    from exportctl import catalog as index

    store = _store(ctx)
    counts = index.rebuild(store) if rebuild else {"bundles": len(index.query(store))}
    data = {**counts, "path": str(index.index_path(store))}
    _emit(as_json, data, lambda: out.print(f"index {data['path']}: {data['bundles']} bundles", highlight=False))


@main.command()
@click.argument("digest")
@JSON
@click.pass_context
@_handle_errors
def audit(ctx: click.Context, digest: str, as_json: bool) -> None:
    """One page on a bundle: recipe, checkpoint, toolchains, validation, signatures, provenance, runs."""
    from exportctl.views.audit import audit as collect
    from exportctl.views.audit import render

    data = collect(_store(ctx, create=False), digest)
    _emit(as_json, data, lambda: render(out, data))


@main.command()
@click.argument("a")
@click.argument("b")
@JSON
@click.pass_context
@_handle_errors
def diff(ctx: click.Context, a: str, b: str, as_json: bool) -> None:
    """What changed from bundle A to bundle B: recipe, lock pins, images, artifacts, validation metrics."""
    from exportctl.bundle.diff import diff as compare
    from exportctl.bundle.diff import render

    data = compare(_store(ctx, create=False), a, b)
    _emit(as_json, data, lambda: render(out, data))


@main.command()
@click.argument("digest")
@click.option("--check", is_flag=True, required=True, help="Compare the rebuilt bytes with the bundle's.")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="The checkpoint file, when the bundle was built from one that is not in the store.")
@click.option("--inputs", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Directory with the other files the recipe names (validation images, calibration set).")
@click.option("--sandbox", type=click.Choice(["auto", "bwrap", "unshare", "none"]), default="auto", show_default=True)
@click.option("--keep", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Build into this directory and keep it (default: a temporary one).")
@JSON
@click.pass_context
@_handle_errors
def rebuild(ctx: click.Context, digest: str, check: bool, checkpoint: Path | None, inputs: Path | None,
            sandbox: str, keep: Path | None, as_json: bool) -> None:
    """Rebuild a bundle from what it recorded into a scratch store and report, cell by cell, identical or not."""
    from exportctl.build.rebuild import rebuild_check

    with console.status("rebuilding", spinner="dots") as status:
        data = rebuild_check(_store(ctx, create=False), digest, checkpoint=checkpoint, inputs=inputs,
                             sandbox=sandbox, keep=keep, report=lambda step, msg: status.update(f"{step}: {msg}"))

    def render() -> None:
        for cell in data["cells"]:
            verdict = "[green]identical[/]" if cell["identical"] else f"[red]differs[/] ({', '.join(cell['differs'])})"
            out.print(f"{cell['cell']:20} {verdict}  artifact {cell['artifact']['rebuilt']}", highlight=False)
        for note in data["notes"]:
            out.print(f"[yellow]note:[/] {note}", highlight=False)
        out.print(f"rebuilt {data['rebuilt']} ({'same digest' if data['same_digest'] else 'other digest'})",
                  highlight=False)

    _emit(as_json, data, render)
    if not data["identical"]:
        differ = [c["cell"] for c in data["cells"] if not c["identical"]] or ["the checkpoint"]
        console.print(f"[bold red]error:[/] not reproducible: the rebuild of {data['bundle']} differs in "
                      f"{', '.join(differ)}", highlight=False)
        sys.exit(errors.NOT_REPRODUCIBLE)
