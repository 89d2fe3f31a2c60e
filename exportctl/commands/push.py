"""`exportctl push`: publish a stored bundle with its signatures and provenance to an OCI registry."""

from __future__ import annotations

from pathlib import Path

import click

from exportctl.commands.common import emit, err, json_option, open_store, store_option
from exportctl.commands.remote import registry_options, transport_options


@click.command()
@click.argument("digest")
@click.argument("reference", metavar="REF")
@registry_options
@store_option()
@json_option
def push(digest: str, reference: str, ca_file: Path | None, insecure: bool) -> None:
    """Upload bundle DIGEST and its referrers to REF (HOST[:PORT]/REPO[:TAG]); prints REF@sha256:…"""
    from exportctl.registry.push import push as run_push
    from exportctl.registry.reference import parse

    ref = parse(reference)
    store = open_store(create=False)
    full = store.resolve(digest).digest
    with err().status(f"pushing to {ref}", spinner="dots"):
        pushed = run_push(store, full, ref, transport_options(ca_file, insecure),
                          report=lambda msg: err().print(f"  {msg}", highlight=False, soft_wrap=True))
    t = pushed.traffic
    data = {"reference": pushed.reference, "bundle": full, "referrers": pushed.referrers,
            "uploaded_blobs": t.uploaded, "uploaded_bytes": t.uploaded_bytes, "skipped_blobs": t.skipped,
            "mounted_blobs": t.mounted}
    err().print(f"  {t.uploaded} blob(s) uploaded ({t.uploaded_bytes} bytes), {t.skipped} already there"
                f"{f' ({t.mounted} mounted)' if t.mounted else ''}", highlight=False, soft_wrap=True)
    emit(data, lambda: click.echo(pushed.reference))  # one line, never wrapped: scripts capture it
