"""What the registry-aware commands share: --ca-file/--insecure, and "a digest, a directory or a reference"."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from exportctl.commands.common import err

if TYPE_CHECKING:
    from exportctl.registry.transport import TransportOptions
    from exportctl.store.layout import Store

F = TypeVar("F", bound=Callable[..., Any])


def registry_options(func: F) -> F:
    func = click.option("--insecure", is_flag=True,
                        help="Skip TLS verification (and allow plain HTTP) off loopback.")(func)
    return click.option("--ca-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
                        help="CA certificate(s) (PEM) to trust for the registry, besides the system's.")(func)


def transport_options(ca_file: Path | None, insecure: bool) -> TransportOptions:
    from exportctl.registry.transport import TransportOptions

    return TransportOptions(ca_file=ca_file, insecure=insecure)


def is_reference(text: str) -> bool:
    from exportctl.registry.reference import looks_like_reference

    return looks_like_reference(text)


def pull_into(store: Store, text: str, ca_file: Path | None, insecure: bool) -> str:
    """Pull reference `text` into `store` (checked; nothing stored if refused) and return the bundle digest."""
    from exportctl.registry.pull import pull
    from exportctl.registry.reference import parse

    with err().status(f"pulling {text}", spinner="dots"):
        pulled = pull(store, parse(text), transport_options(ca_file, insecure))
    err().print(f"  pulled {pulled.name} {pulled.digest} ({pulled.traffic.downloaded_bytes} bytes, "
                f"{len(pulled.referrers)} referrer(s))", highlight=False, soft_wrap=True)
    return pulled.digest
