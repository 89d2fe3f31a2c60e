"""Bundle signing (issue 4 fills this in)."""

from __future__ import annotations

from pathlib import Path

from . import errors
from .store.layout import Store


def sign_bundle(store: Store, digest: str, *, key: Path | None, sigstore: bool) -> None:
    raise errors.ConfigError("signing is not available in this version", hint="build without --sign-key/--sigstore")
