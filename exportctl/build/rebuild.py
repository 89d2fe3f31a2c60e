"""`exportctl rebuild DIGEST --check`: build again from what the bundle recorded and compare, cell by cell.

The inputs come from the bundle, never from the working tree's recipe: its canonical recipe, its checkpoint
by digest (a demo checkpoint is made again from the recipe; a file must be in the store or given with
--checkpoint, and must hash to the recorded digest) and its lockfiles, which must be the ones this machine
would use (otherwise we say which differ instead of building something else). The build runs into an
empty scratch store, so every cell really runs; nothing is written to the user's store.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from exportctl import errors
from exportctl.bundle.read import CELL_ROLES, BundleInfo, read_bundle, recipe_of
from exportctl.canonical import canonical_json, digest_file, short
from exportctl.env.locks import lock_digest, lock_path
from exportctl.paths import cell_code_digest
from exportctl.store.atomic import link_or_copy, scratch_dir
from exportctl.store.layout import Store


def check_locks(info: BundleInfo) -> None:
    """The bundle's lockfiles must be the ones a build here would use; name every one that is not."""
    differ = []
    for toolchain, recorded in sorted(info.toolchains.items()):
        try:
            here = lock_digest(toolchain)
        except errors.ConfigError:
            here = "missing"
        if here != recorded.get("lock"):
            differ.append(f"{toolchain} (bundle {short(str(recorded.get('lock')), 16)}, "
                          f"here {short(here, 16)} = {lock_path(toolchain)})")
    if differ:
        raise errors.ConfigError(
            f"bundle {info.digest} was built with other lockfiles than this checkout's: {'; '.join(differ)}",
            hint="check out the exportctl that built it, or point EXPORTCTL_LOCKFILES_DIR at a directory holding "
                 "the bundle's lockfiles (`exportctl cat` prints them)")


def _inputs(store: Store, info: BundleInfo, recipe: dict[str, Any], workdir: Path, checkpoint: Path | None,
            inputs: Path | None) -> None:
    """Put every file the recipe names (by name, as bundled) into `workdir`, checking the checkpoint's digest."""
    names = [str(p) for p in (recipe.get("validation") or {}).get("images", [])]
    if recipe.get("calibration"):
        names.append(str(recipe["calibration"]["images"]))
    dataset = (recipe.get("validation") or {}).get("dataset")
    if dataset:  # bundled as "<directory>/data.yaml": the directory holds its images and labels
        names.append(str(dataset["data"]).split("/", 1)[0])
    for name in names:
        source = inputs / name if inputs is not None else None
        if source is None or not source.exists():
            raise errors.ConfigError(f"the recipe uses '{name}', which bundles do not carry",
                                     hint="give the directory holding it with --inputs DIR")
        (shutil.copytree if source.is_dir() else link_or_copy)(source, workdir / name)
    ck = recipe.get("checkpoint") or {}
    if ck.get("demo"):
        return  # made again from arch + seed: part of what the check checks
    target = workdir / str(ck["path"])
    if checkpoint is not None:
        found = Path(checkpoint)
    elif inputs is not None and (inputs / str(ck["path"])).is_file():
        found = inputs / str(ck["path"])
    elif store.has_blob(info.checkpoint):
        found = store.blob_path(info.checkpoint)
    else:
        raise errors.ConfigError(f"the bundle's checkpoint {info.checkpoint} ({ck['path']}) is not in the store",
                                 hint="give it with --checkpoint PATH; it is checked against that digest")
    if (actual := digest_file(found)) != info.checkpoint:
        raise errors.ConfigError(f"{found} hashes to {actual}; the bundle was built from {info.checkpoint}",
                                 hint="give the checkpoint the bundle records")
    link_or_copy(found, target)


@contextlib.contextmanager
def _scratch(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        if keep.exists() and any(keep.iterdir()):  # a used store would answer from its cache: no rebuild at all
            raise errors.ConfigError(f"--keep {keep} is not empty", hint="give a new or empty directory")
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with scratch_dir(prefix="exportctl-rebuild-") as path:
        yield path


def compare(a: BundleInfo, b: BundleInfo) -> list[dict[str, Any]]:
    rows = []
    for cell in [c.name for c in a.cells]:
        differs, digests = [], {}
        for role in CELL_ROLES:
            la, lb = a.cell_layer(cell, role), b.cell_layer(cell, role)
            digests[str(role)] = {"bundle": la.digest if la else None, "rebuilt": lb.digest if lb else None}
            if (la and la.digest) != (lb and lb.digest):
                differs.append(str(role))
        rows.append({"cell": cell, "identical": not differs, "differs": differs, **digests})
    return rows


def rebuild_check(store: Store, ref_text: str, *, checkpoint: Path | None = None, inputs: Path | None = None,
                  backend: str = "local", sandbox: str = "auto", jobs: int | None = None,
                  memory_budget_mib: int | None = None, keep: Path | None = None,
                  report: Callable[[str, str], None] = lambda step, msg: None) -> dict[str, Any]:
    """`jobs` (default: the cores) and `memory_budget_mib` schedule the cells as `build` does."""
    from exportctl.build.pipeline import build
    from exportctl.build.schedule import default_jobs
    from exportctl.recipe.load import parse_recipe
    from exportctl.runners import get_runner

    digest = store.resolve(ref_text).digest
    info = read_bundle(store, digest)
    check_locks(info)
    recipe_data = recipe_of(store, info)
    notes = []
    if info.cell_code != cell_code_digest():
        notes.append("this exportctl's in-cell code differs from the one that built the bundle")
    with _scratch(keep) as workdir:
        (workdir / "inputs").mkdir(exist_ok=True)
        _inputs(store, info, recipe_data, workdir / "inputs", checkpoint, inputs)
        recipe = parse_recipe(canonical_json(recipe_data).decode(), source=f"{short(digest)}:recipe.json",
                              base_dir=workdir / "inputs")
        scratch_store = Store.open(workdir / "store")
        outcome = build(recipe, scratch_store, get_runner(backend, sandbox=sandbox), report,
                        jobs=jobs or default_jobs(), memory_budget_mib=memory_budget_mib,
                        profile=None)  # bytes are what is checked: no latency profile
        rebuilt = read_bundle(scratch_store, outcome.digest)
        cells = compare(info, rebuilt)
    identical = all(c["identical"] for c in cells) and rebuilt.checkpoint == info.checkpoint
    return {"bundle": digest, "rebuilt": outcome.digest, "identical": identical,
            "same_digest": outcome.digest == digest, "checkpoint": {"bundle": info.checkpoint,
                                                                    "rebuilt": rebuilt.checkpoint},
            "cells": cells, "notes": notes, "scratch": str(keep) if keep else None}
