"""`exportctl base-image`: make the local Python base image offline, for sites without a container registry."""

from __future__ import annotations

from typing import Any

import click

from exportctl.commands.common import emit, err, json_option, out


@click.command("base-image")
@json_option
def base_image() -> None:
    """Build exportctl-base:bookworm-python3.11 (debootstrap + docker import, cached) for the Docker backend."""
    from exportctl.env.localbase import ensure_base_image
    from exportctl.runners.docker import connect

    client = connect()
    try:
        with err().status("making the local base image (debootstrap bookworm minbase + python3, cached)"):
            facts = ensure_base_image(client)
    finally:
        client.close()
    emit(facts, lambda: _render(facts))


def _render(facts: dict[str, Any]) -> None:
    how = "made and imported" if facts["debootstrapped"] else "imported" if facts["imported"] else "already present"
    out().print(f"{facts['image']} ({facts['image_id']}): {how}; recipe {facts['recipe_digest']}", highlight=False)
    out().print(f"builds use it when this is set (the Docker backend builds every toolchain FROM it):\n"
                f"  export {facts['variable']}={facts['image']}", highlight=False)
