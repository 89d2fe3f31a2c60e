"""`exportctl keygen`: a new EC P-256 signing key pair."""

from __future__ import annotations

from pathlib import Path

import click

from exportctl.commands.common import emit, json_option, out


@click.command()
@click.argument("private", type=click.Path(path_type=Path))
@click.option("--public", type=click.Path(path_type=Path), default=None,
              help="Where the public key goes (default: PRIVATE with .pub.pem).")
@json_option
def keygen(private: Path, public: Path | None) -> None:
    """Write a new EC P-256 signing key pair (private key file mode 0600)."""
    from exportctl.trust.keys import keygen as make

    public = public or private.with_name(private.name.removesuffix(".pem") + ".pub.pem")
    keyid = make(private, public)
    data = {"private": str(private), "public": str(public), "keyid": keyid}
    emit(data, lambda: out().print(f"key {keyid[:16]}: private {private} (0600), public {public}", highlight=False))
