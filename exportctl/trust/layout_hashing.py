"""How model-signing hashes an exported layout, for signing and verifying alike, reading each byte once.

model-signing's manifest of a layout is the SHA-256 of every file in it. Signing and verifying a bundle first
re-hash its blobs (store.verify, the layout checks), then model-signing would hash the same files again. With a
ledger (canonical.hash_ledger), a file the ledger hashed as it is now gives model-signing that digest; any
other file (index.json, one written since, one never seen) is hashed by model-signing itself. The signature
still binds every file's digest: the manifest is model-signing's own, only who read the bytes changes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from exportctl.canonical import DIGEST_ALGORITHM, HashLedger
from exportctl.store import referrers as ref
from exportctl.trust.model_signing_import import model_signing

_Algorithm = Literal["sha256", "blake2", "blake3"]  # model-signing's names


def layout_hashing(ledger: HashLedger | None = None) -> model_signing.hashing.Config:
    # Only signatures/ is left out (recorded in the signature, so model-signing's CLI leaves it out too);
    # git paths are not, because an exported bundle has none and a stray one must fail verification.
    config = _LedgerHashing(ledger) if ledger else model_signing.hashing.Config()  # type: ignore[no-untyped-call]
    return config.set_ignored_paths(paths=[ref.SIGNATURES_DIR], ignore_git_paths=False)


class _LedgerHashing(model_signing.hashing.Config):
    """model-signing's default hashing (files, SHA-256), each file's digest from the ledger where it has it."""

    def __init__(self, ledger: HashLedger) -> None:
        self._ledger = ledger  # first: the base __init__ builds the file hasher through the method below
        super().__init__()  # type: ignore[no-untyped-call]

    def _build_file_hasher_factory(self, hashing_algorithm: _Algorithm = "sha256", chunk_size: int = 1 << 20,
                                   max_workers: int | None = None) -> Callable[[Path], Any]:
        hasher_for = super()._build_file_hasher_factory(hashing_algorithm, chunk_size, max_workers)
        if hashing_algorithm != DIGEST_ALGORITHM:
            return hasher_for
        ledger = self._ledger
        return lambda path: _KnownOrHashed(Path(path), hasher_for(path), ledger)


class _KnownOrHashed:
    """A model-signing file hasher (digest_name, digest_size, compute) that asks the ledger before reading."""

    def __init__(self, path: Path, hasher: Any, ledger: HashLedger) -> None:
        self._path, self._hasher, self._ledger = path, hasher, ledger

    @property
    def digest_name(self) -> str:
        return str(self._hasher.digest_name)

    @property
    def digest_size(self) -> int:
        return int(self._hasher.digest_size)

    def compute(self) -> Any:
        known = self._ledger.known(self._path)
        if known is None:
            return self._hasher.compute()
        # a frozen dataclass (algorithm name, digest bytes); model_signing is imported already (see above)
        from model_signing._hashing.hashing import Digest

        return Digest(self.digest_name, bytes.fromhex(known.split(":", 1)[1]))
