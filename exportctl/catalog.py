"""A local SQLite index of the store, so `exportctl ls` filters answer without reading blobs.

It lives at <store>/exportctl/index.sqlite and holds nothing the store does not: every row is derived from
index.json, a bundle's manifest and config, its first run record and its referrers' index entries. So it
is a cache, never a source of truth: `rebuild` recreates it from the store, and every query first checks
index.json's digest and brings the index up to date when the store changed behind its back (another
exportctl version, a copied store, a failed update).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from exportctl.canonical import digest_bytes
from exportctl.errors import ExportctlError, StoreError
from exportctl.store import mediatypes as mt
from exportctl.store import referrers as ref
from exportctl.store.descriptor import Descriptor
from exportctl.store.layout import Store

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE bundles (digest TEXT PRIMARY KEY, name TEXT, checkpoint TEXT, created TEXT, cells TEXT, status TEXT);
CREATE TABLE cells (bundle TEXT, cell TEXT, format TEXT, precision TEXT, status TEXT, artifact TEXT,
                    PRIMARY KEY (bundle, cell));
CREATE TABLE referrers (digest TEXT PRIMARY KEY, bundle TEXT, kind TEXT, keyid TEXT, signer TEXT,
                        identity TEXT, created TEXT);
CREATE INDEX bundles_checkpoint ON bundles (checkpoint);
CREATE INDEX bundles_created ON bundles (created);
CREATE INDEX cells_format ON cells (format, bundle);
CREATE INDEX referrers_keyid ON referrers (keyid, bundle);
CREATE INDEX referrers_bundle ON referrers (bundle);
"""


def index_path(store: Store) -> Path:
    return store.root / "exportctl" / "index.sqlite"


@contextlib.contextmanager
def _connect(store: Store) -> Iterator[sqlite3.Connection]:
    path = index_path(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=30)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = (con.execute("SELECT value FROM meta WHERE key='schema'").fetchone() if "meta" in tables else None)
        if version != (SCHEMA_VERSION,):  # new, or written by another exportctl: it is only a cache
            with con:
                for table in tables:
                    con.execute(f"DROP TABLE {table}")
                con.executescript(_SCHEMA)
                con.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        with con:
            yield con
    except sqlite3.Error as e:
        raise StoreError(f"the store index {path} cannot be used: {e}",
                         hint="run `exportctl index --rebuild` (it only holds what the store holds)") from e
    finally:
        con.close()


def _add_bundle(con: sqlite3.Connection, store: Store, digest: str) -> None:
    from exportctl.bundle.read import read_bundle  # only when the index is behind: `ls` answers without it

    info = read_bundle(store, digest)
    runs = store.run_records(digest)
    created = runs[0].get("started") if runs else None
    cells = info.cells
    con.execute("INSERT OR REPLACE INTO bundles VALUES (?, ?, ?, ?, ?, ?)",
                (digest, info.name, info.checkpoint, created, json.dumps([c.name for c in cells]),
                 json.dumps(sorted({str(c.status) for c in cells}))))
    con.execute("DELETE FROM cells WHERE bundle = ?", (digest,))
    con.executemany("INSERT INTO cells VALUES (?, ?, ?, ?, ?, ?)",
                    [(digest, c.name, *c.name.split("/", 1), c.status, c.artifact) for c in cells])


def _add_referrer(con: sqlite3.Connection, entry: Descriptor) -> None:
    # Index annotations are enough (attach copies them there), so referrers cost no blob reads.
    ann = entry.annotations or {}
    kind = {ref.SIGNATURE_TYPE: "signature", ref.BOM_TYPE: "bom"}.get(str(entry.artifactType), "provenance")
    con.execute("INSERT OR REPLACE INTO referrers VALUES (?, ?, ?, ?, ?, ?, ?)",
                (entry.digest, ann.get(mt.ANNOTATION_SUBJECT), kind, ann.get(ref.ANNOTATION_KEYID),
                 ann.get(ref.ANNOTATION_SIGNER), ann.get(ref.ANNOTATION_IDENTITY), ann.get(ref.ANNOTATION_CREATED)))


def _sync(con: sqlite3.Connection, store: Store, force: bool = False) -> None:
    try:
        stamp = digest_bytes((store.root / "index.json").read_bytes())
    except OSError as e:
        raise StoreError(f"cannot read {store.root / 'index.json'}: {e.strerror}") from e
    if not force and con.execute("SELECT value FROM meta WHERE key='synced'").fetchone() == (stamp,):
        return
    bundles = {m.digest for m in store.manifests()}
    known = {r[0] for r in con.execute("SELECT digest FROM bundles")}
    for digest in sorted(bundles - known):
        _add_bundle(con, store, digest)
    for digest in known - bundles:
        con.execute("DELETE FROM bundles WHERE digest = ?", (digest,))
        con.execute("DELETE FROM cells WHERE bundle = ?", (digest,))
    referrers = {m.digest: m for m in store.manifests(referrers=True)}
    known = {r[0] for r in con.execute("SELECT digest FROM referrers")}
    for digest in sorted(set(referrers) - known):
        _add_referrer(con, referrers[digest])
    con.executemany("DELETE FROM referrers WHERE digest = ?", [(d,) for d in known - set(referrers)])
    con.execute("INSERT OR REPLACE INTO meta VALUES ('synced', ?)", (stamp,))


def record(store: Store, digest: str) -> None:
    """Index a bundle just stored or signed. A failure here never fails the build: the next query syncs."""
    with contextlib.suppress(ExportctlError, OSError, ValueError), _connect(store) as con:
        _add_bundle(con, store, digest)
        for entry in store.manifests(referrers=True):
            if (entry.annotations or {}).get(mt.ANNOTATION_SUBJECT) == digest:
                _add_referrer(con, entry)


def sync(store: Store) -> None:
    """Bring the index up to date with index.json (after `gc` removed bundles); a failure waits for the next query."""
    with contextlib.suppress(ExportctlError, OSError, ValueError), _connect(store) as con:
        _sync(con, store)


def rebuild(store: Store) -> dict[str, int]:
    index_path(store).unlink(missing_ok=True)
    with _connect(store) as con:
        _sync(con, store, force=True)
        return {"bundles": con.execute("SELECT count(*) FROM bundles").fetchone()[0],
                "referrers": con.execute("SELECT count(*) FROM referrers").fetchone()[0]}


def query(store: Store, *, checkpoint: str | None = None, fmt: str | None = None, since: str | None = None,
          signed_by: str | None = None) -> list[dict[str, Any]]:
    """Bundles matching every filter given, oldest first; `signed_by` is a key id prefix or a Sigstore identity."""
    if checkpoint is not None and not checkpoint.startswith("sha256:"):
        checkpoint = f"sha256:{checkpoint}"
    sql = ["SELECT digest, name, cells, status, created, checkpoint FROM bundles b WHERE 1=1"]
    args: list[Any] = []
    if checkpoint is not None:
        sql.append("AND substr(checkpoint, 1, ?) = ?")
        args += [len(checkpoint), checkpoint.lower()]
    if fmt is not None:
        sql.append("AND EXISTS (SELECT 1 FROM cells c WHERE c.bundle = b.digest AND c.format = ?)")
        args.append(fmt)
    if since is not None:
        sql.append("AND created >= ?")
        args.append(since)
    if signed_by is not None:
        sql.append("AND EXISTS (SELECT 1 FROM referrers r WHERE r.bundle = b.digest AND r.kind = 'signature' "
                   "AND (substr(r.keyid, 1, ?) = ? OR r.identity = ?))")
        args += [len(signed_by), signed_by.lower(), signed_by]
    sql.append("ORDER BY created, digest")
    with _connect(store) as con:
        _sync(con, store)
        rows = con.execute(" ".join(sql), args).fetchall()
        signers: dict[str, list[str]] = {}
        for bundle, keyid in con.execute("SELECT bundle, keyid FROM referrers WHERE kind = 'signature' "
                                         "ORDER BY created"):
            signers.setdefault(bundle, []).append((keyid or "?")[:ref.KEYID_CHARS])
    return [{"bundle": d, "name": name, "cells": json.loads(cells), "status": json.loads(status), "created": created,
             "checkpoint": ck, "signed_by": signers.get(d, [])} for d, name, cells, status, created, ck in rows]
