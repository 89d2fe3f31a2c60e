"""A rebuild that would change nothing, answered without planning it again (importing the planner alone costs
more than the 0.3 s a no-op may take).

After a local build that passed, `record` writes a journal entry into the store: every host path the build read
with its stamp (readlog.py), every file and directory of exportctl's own code and data and of Python's import
path, the environment variables that can change a build, the sandboxes on PATH, and the summary and run record
it printed and wrote. A directory's stamp moves when an entry is added, removed or renamed, so a new file
anywhere in those trees is seen too. `answer` serves a later build with the same options only when all of that
is as it was and the bundle is still complete in the store. Any doubt (no entry, a changed stamp, a blob gone, a
docker daemon that `--backend auto` might now pick) returns None and the full build runs; it answers from its
action cache, so the fast path only ever skips work whose result is known.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

from exportctl import __version__, errors, paths, readlog
from exportctl.build.schedule import own_peak_rss_mib
from exportctl.canonical import digest_value, pretty_json
from exportctl.env.locks import lockfiles_dir
from exportctl.store import mediatypes as mt
from exportctl.store.atomic import atomic_write
from exportctl.store.descriptor import blob_references
from exportctl.store.layout import Store
from exportctl.store.referrers import BOM_TYPE

FORMAT = 1
# What can change a build besides the files it reads: exportctl's settings, pip/uv (environments), the caches'
# places, docker, Ultralytics, and the clock the cells are given.
_ENV_PREFIXES = ("EXPORTCTL_", "PIP_", "UV_", "XDG_", "DOCKER_", "YOLO_")
_ENV_NAMES = ("HOME", "PATH", "PYTHONPATH", "SOURCE_DATE_EPOCH", "TZ")
RACY_NS = 2_000_000_000  # changed this close to the build's start: may change again within one timestamp tick
_SANDBOXES = ("bwrap", "unshare")


def _entry_path(store_root: Path, recipe: Path, options: dict[str, Any]) -> Path:
    key = digest_value({"recipe": os.path.abspath(recipe), **options}).split(":")[1]
    return store_root / "exportctl" / "noop" / f"{key}.json"


def _world() -> dict[str, Any]:
    """Everything besides the stamped paths that decides what a build makes."""
    return {"format": FORMAT, "exportctl": __version__, "python": sys.version, "executable": sys.executable,
            "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith(_ENV_PREFIXES) or k in _ENV_NAMES},
            "sandboxes": {name: shutil.which(name) for name in _SANDBOXES}}


def _own_trees() -> dict[str, readlog.Stamp]:
    """exportctl's code and data (a wheel's data is inside the package; EXPORTCTL_LOCKFILES_DIR's locks) and the
    import path's directories: a package installed or removed changes its site-packages directory."""
    found: dict[str, readlog.Stamp] = {}
    for tree in (paths.PACKAGE_DIR, paths.RUNTIMES_DIR, lockfiles_dir(), paths.IMAGES_DIR):
        for directory, dirnames, filenames in os.walk(tree):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]  # Python's caches change, not the code
            found[directory] = readlog.stamp(directory)
            for name in filenames:
                found[os.path.join(directory, name)] = readlog.stamp(os.path.join(directory, name))
    cwd = os.getcwd()  # `python -m` puts it first; builds write there (a --store beside the recipe)
    found.update((entry, readlog.stamp(entry)) for entry in sys.path if entry not in ("", cwd) and os.path.isdir(entry))
    return found


def _docker_answers() -> bool:
    """Whether a docker daemon may listen where the docker backend looks (then `--backend auto` may pick it)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return True  # a remote daemon cannot be ruled out cheaply
    with socket.socket(socket.AF_UNIX) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(host.removeprefix("unix://"))
        except OSError:
            return False
    return True


def _local(options: dict[str, Any]) -> bool:
    return options["backend"] == "local" or (options["backend"] == "auto" and not _docker_answers())


def record(store: Store, recipe: Path, options: dict[str, Any], log: readlog.ReadLog, digest: str,
           summary: dict[str, Any]) -> bool:
    """Journal a passed local build, unless a path it read changed too close to its start to be trusted."""
    if not _local(options):
        return False
    # blobs are content-addressed (`_complete` checks them instead), under the store's path as given or resolved
    inside = (os.path.abspath(store.root) + os.sep, str(store.root.resolve()) + os.sep)
    reads = {p: s for p, s in log.paths.items() if not p.startswith(inside)}
    reads.update(_own_trees())
    if any(s is not None and max(s[4], s[5]) >= log.started_ns - RACY_NS for s in reads.values()):
        return False
    try:  # a journal is only a shortcut: failing to write one (a full disk) never fails the build it follows
        runs = store.run_records(digest)
        entry = {**_world(), "options": options, "reads": sorted([p, s] for p, s in reads.items()),
                 "bundle": digest, "summary": summary, "run": len(runs), "record": runs[-1]}
        atomic_write(_entry_path(store.root, recipe, options), pretty_json(entry))
    except (OSError, ValueError, IndexError, errors.ExportctlError):
        return False
    return True


def answer(store_root: Path, recipe: Path, options: dict[str, Any]) -> dict[str, Any] | None:
    """The journal entry of the same build, when nothing it read has changed and its bundle is whole; else None."""
    try:
        entry = json.loads(_entry_path(store_root, recipe, options).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or any(entry.get(k) != v for k, v in _world().items()):
        return None
    try:  # an entry damaged by hand or by another tool is a miss, never a traceback
        if options["require_isolation"] and entry["summary"].get("isolation_degraded"):
            return None  # the full build refuses it, with the reason
        if not _local(options):
            return None
        if any(readlog.stamp(where) != (tuple(was) if was else None) for where, was in entry["reads"]):
            return None
        return entry if _complete(Store(store_root), entry["bundle"]) else None
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _complete(store: Store, digest: str) -> bool:
    """The bundle is listed, its blobs are all there at their sizes, and its ML-BOM is attached."""
    try:
        if not any(m.digest == digest for m in store.manifests()):
            return False
        for _role, blob in blob_references(json.loads(store.read_blob(digest))):
            if store.blob_path(blob.digest).stat().st_size != blob.size:
                return False
        return any((m.annotations or {}).get(mt.ANNOTATION_SUBJECT) == digest and m.artifactType == BOM_TYPE
                   for m in store.manifests(referrers=True))
    except (OSError, ValueError, KeyError, TypeError, errors.ExportctlError):  # the full build decides
        return False


def repeat(store: Store, entry: dict[str, Any], started: dt.datetime) -> dict[str, Any]:
    """Write this no-op's run record (the recorded one, every action cached) and return its summary."""
    run = dict(entry["record"])
    for action in ("reference", "demo_checkpoint"):
        if isinstance(run.get(action), dict):
            run[action] = {**run[action], "cached": True}
    run.update(started=started.isoformat(), finished=dt.datetime.now(dt.UTC).isoformat(),
               unchanged_since_run=entry["run"], cells=[{**c, "cached": True} for c in run.get("cells", [])],
               orchestrator_peak_rss_mib=own_peak_rss_mib())
    store.add_run_record(entry["bundle"], run)
    summary = entry["summary"]
    return {**summary, "cells": [{**c, "cached": True} for c in summary["cells"]]}
