"""`exportctl verify`: re-hash a stored or exported bundle and check its provenance and signatures."""

from __future__ import annotations

from pathlib import Path

import click

from exportctl.commands.common import emit, json_option, open_store, out, store_option


@click.command()
@click.argument("target", metavar="DIGEST|DIR")
@click.option("--key", type=click.Path(path_type=Path), default=None, help="Require a valid signature by this "
              "public key (PEM).")
@store_option()
@json_option
def verify(target: str, key: Path | None) -> None:
    """Re-hash a bundle (stored, or exported to DIR) and check its provenance and signatures (see exit codes)."""
    from exportctl.trust.verify import render, verify_layout, verify_stored

    report = (verify_layout(Path(target), key) if Path(target).is_dir()
              else verify_stored(open_store(create=False), target, key))
    emit(report, lambda: render(out(), report))
