"""`exportctl gc`: remove what the store no longer needs, and nothing it does.

Kept: every bundle not chosen for removal, its referrers (signatures, provenance), its run records and their
logs, the action cache (except entries whose blobs are gone, or all of it with --drop-cache) and every blob
any of these name. Bundles are removed only when asked (`--keep-last N` per recipe, `--older-than AGE`; both
given: a bundle must fail both to go), never when signed or tagged unless `--include-signed`.
Removal order keeps the store consistent if gc is killed at any instant: index.json entries first (nothing
then names what follows), then cache entries, then blobs, run records and temp files (litter at worst).
gc holds the store's lease alone (store/lease.py): running builds finish first, and none starts meanwhile.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from exportctl import catalog, errors
from exportctl.maintenance.reachable import Roots, cache_blobs, live_blobs, roots
from exportctl.store import referrers as ref
from exportctl.store.housekeeping import (
    action_entries,
    blob_files,
    drop_index_entries,
    journal_entries,
    remove_blob,
    remove_tree,
    run_dirs,
    stale_temps,
)
from exportctl.store.layout import Store
from exportctl.store.lease import Say, lease

TAG = "org.opencontainers.image.ref.name"
RECIPE = "dev.exportctl.recipe"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> dt.timedelta:
    match = re.fullmatch(r"\s*(\d{1,6})\s*([smhdw])\s*", text)
    if not match:
        raise errors.ConfigError(f"--older-than {text!r} is not an age", hint="e.g. 30d, 12h, 90m, 2w")
    return dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    keep_last: int | None = None
    older_than: dt.timedelta | None = None
    include_signed: bool = False
    drop_cache: bool = False


def _built(store: Store, digest: str) -> dt.datetime | None:
    try:
        runs = store.run_records(digest)
        return dt.datetime.fromisoformat(str(runs[0]["started"])) if runs else None
    except (ValueError, KeyError, TypeError, OSError, errors.ExportctlError):
        return None


def doomed_bundles(store: Store, found: Roots, options: Options, now: dt.datetime) -> set[str]:
    if options.keep_last is None and options.older_than is None:
        return set()
    protected = {d for d, e in found.bundles.items() if TAG in e.annotations} | (
        set() if options.include_signed else
        {r.subject for r in found.referrers.values() if r.artifact_type == ref.SIGNATURE_TYPE and r.subject})
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    by_recipe: dict[str, list[tuple[dt.datetime, str]]] = {}
    for digest, entry in found.bundles.items():
        when = _built(store, digest) or epoch
        by_recipe.setdefault(entry.annotations.get(RECIPE, "?"), []).append((when, digest))
    doomed = set()
    for builds in by_recipe.values():
        for rank, (when, digest) in enumerate(sorted(builds, reverse=True)):
            beyond = options.keep_last is None or rank >= options.keep_last
            old = options.older_than is None or when < now - options.older_than
            if beyond and old and digest not in protected:
                doomed.add(digest)
    return doomed


def collect(store: Store, options: Options, say: Say) -> dict[str, Any]:
    with lease(store.root, "gc", exclusive=True, say=say):
        found = roots(store)
        doomed = doomed_bundles(store, found, options, dt.datetime.now(dt.UTC))
        kept = set(found.bundles) - doomed
        # A referrer goes with its bundle; one whose bundle is not in the store at all is dangling.
        doomed_refs = {d for d, r in found.referrers.items() if r.subject not in kept}
        drop_cache, keep_cache = [], set()
        for path, value in action_entries(store):
            needed = cache_blobs(value)
            if options.drop_cache or value is None or not all(store.has_blob(d) for d in needed):
                drop_cache.append(path)
            else:
                keep_cache |= needed
        live = live_blobs(store, kept, set(found.referrers) - doomed_refs, with_cache=False) | keep_cache
        garbage = [(d, p) for d, p in blob_files(store) if d not in live]
        runs = [p for d, p in run_dirs(store) if d not in kept]
        # The no-op journal is a cache too: an entry whose bundle goes would only ever send its build the long way.
        journal = [p for p, bundle in journal_entries(store) if options.drop_cache or bundle not in kept]
        temps = list(stale_temps(store))
        freed = sum(p.stat().st_size for _, p in garbage if p.exists())
        if not options.dry_run:
            drop_index_entries(store, doomed | doomed_refs)
            for path in drop_cache:
                path.unlink(missing_ok=True)
            freed = sum(remove_blob(store, d) for d, _ in garbage)
            for path in [*runs, *temps, *journal]:
                remove_tree(path)
            catalog.sync(store)
    return {"dry_run": options.dry_run, "bundles_removed": sorted(doomed), "referrers_removed": len(doomed_refs),
            "bundles_kept": len(kept), "cache_entries_removed": len(drop_cache), "blobs_removed": len(garbage),
            "bytes_freed": freed, "run_records_removed": len(runs), "temp_removed": len(temps),
            "journal_entries_removed": len(journal)}
