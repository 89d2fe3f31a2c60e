"""One remote cell (a Slurm array task, a Kubernetes Job index): fetch the inputs by digest, `exportctl build
--only CELL` in a private working directory, HOME and store, push the partial bundle, exit with the cell's code.

It runs the very command a user would (`python -m exportctl build RECIPE --only CELL`), with the same backend
and sandbox as the submitter asked for, so a cell built on a node is built exactly as on one machine. Prepared
actions in the inputs (the coordinator's reference and demo checkpoint) go into the fresh store first, so the
build answers them from the cache. The first line it prints is a JSON record (job and array ids, node), the
last one what the build took from the shipped inputs; the coordinator folds both into its run record.

Without `--cell`, the task speaks the export guide's entrypoint contract, as a Kubernetes Job's pod does:
EXPORT_FORMAT and EXPORT_CONFIG name the cell (checked against the recipe), CHECKPOINT_PATH the checkpoint,
OUTPUT_DIR receives the part as an OCI layout; the exit code is the cell's (0 ok, 1 export, 2 validation,
3 configuration).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exportctl import errors, proc
from exportctl.cell.contract import guide_options
from exportctl.env.uvenv import cache_root
from exportctl.executors.inputs import fetch_inputs
from exportctl.executors.shared import SharedDir
from exportctl.recipe.load import load_recipe
from exportctl.registry.client import Registry
from exportctl.registry.push import push
from exportctl.registry.reference import parse
from exportctl.registry.transport import TransportOptions
from exportctl.store.atomic import scratch_dir
from exportctl.store.layout import Store
from exportctl.store.referrers import export

TASK_MARK = "exportctl-task "  # prefix of the line that carries the task's record
DONE_MARK = "exportctl-task-done "  # ... and of its closing record (exit code, what came from the shipped inputs)
_ERRORS: dict[int, type[errors.ExportctlError]] = {
    errors.EXPORT_FAILED: errors.ExportFailed, errors.VALIDATION_FAILED: errors.ValidationFailed,
    errors.CONFIG_ERROR: errors.ConfigError, errors.SANDBOX_UNAVAILABLE: errors.SandboxUnavailable,
    errors.ENVIRONMENT_FAILED: errors.EnvironmentFailed, errors.BACKEND_UNAVAILABLE: errors.BackendUnavailable,
    errors.REGISTRY_ERROR: errors.RegistryError}


def error_for(code: int, message: str, hint: str | None = None) -> errors.ExportctlError:
    """The typed error whose exit code is a cell's: a task or the submitter exits as the cell did."""
    return _ERRORS.get(code, errors.ExportFailed)(message, hint=hint)


def slurm_ids() -> dict[str, Any]:
    return {"job": os.environ.get("SLURM_JOB_ID"), "array_job": os.environ.get("SLURM_ARRAY_JOB_ID"),
            "array_task": os.environ.get("SLURM_ARRAY_TASK_ID"),
            "node": os.environ.get("SLURMD_NODENAME") or socket.gethostname()}


@dataclass(frozen=True)
class TaskInputs:
    """Where a task finds its inputs: a registry reference (HOST/REPO@sha256:…), or a digest in a shared dir."""
    ref: str
    shared_dir: Path | None = None

    def fetch(self, dest: Path, store: Store, options: TransportOptions) -> Path:
        if self.shared_dir is not None:
            return fetch_inputs(SharedDir(self.shared_dir), self.ref, dest, store)
        ref = parse(self.ref)
        if ref.digest is None:
            raise errors.ConfigError(f"--inputs {self.ref} names no digest", hint="write it as HOST/REPO@sha256:…")
        return fetch_inputs(Registry(ref, options), ref.digest, dest, store)


def run_task(inputs: TaskInputs, cell: str | None, part_ref: str, backend: str, sandbox: str,
             options: TransportOptions, workdir: Path | None = None) -> int:
    part = parse(part_ref)
    with _workdir(workdir) as work:
        home, store_dir = work / "home", work / "store"
        home.mkdir()
        print(TASK_MARK + json.dumps({**slurm_ids(), "cell": cell, "workdir": str(work)}), flush=True)
        store = Store.open(store_dir)  # the shipped reference and demo checkpoint go in before the build
        recipe = inputs.fetch(work / "inputs", store, options)
        cell = cell or contract_cell(recipe)
        env = proc.clean_env({"HOME": str(home), "EXPORTCTL_STORE": str(store_dir),
                              "EXPORTCTL_CACHE": str(cache_root())})  # toolchain envs: the node's cache
        for key in ("DOCKER_HOST", "EXPORTCTL_LOCKFILES_DIR", "EXPORTCTL_BASE_IMAGE_PYTHON"):
            if key in os.environ:
                env[key] = os.environ[key]
        done = proc.run([sys.executable, "-m", "exportctl", "build", recipe, "--only", cell, "--backend", backend,
                         "--sandbox", sandbox, "--json"], env=env, cwd=work)
        print(done.output, flush=True)
        bundles = store.manifests()
        if len(bundles) != 1:  # a fresh store: the build's bundle is its only one, or the build made none
            return done.returncode or errors.EXPORT_FAILED
        digest = bundles[0].digest
        run = store.run_records(digest)[-1]
        print(DONE_MARK + json.dumps({"cell": cell, "exit_code": done.returncode,
                                      "reference_cached": run["reference"]["cached"],
                                      "checkpoint_cached": (run.get("demo_checkpoint") or {}).get("cached")}),
              flush=True)
        if done.returncode in (errors.OK, errors.VALIDATION_FAILED):  # results exist: the coordinator shows them
            pushed = push(store, digest, part, options)
            print(f"pushed {pushed.reference}", flush=True)
            if os.environ.get("OUTPUT_DIR"):  # the export guide's output directory: the part as an OCI layout
                export(store, digest, Path(os.environ["OUTPUT_DIR"]) / part.target, ())
        return done.returncode


@contextlib.contextmanager
def _workdir(workdir: Path | None) -> Iterator[Path]:
    """A private working directory: the given one (emptied first: a pod's volume), else a fresh temp dir."""
    if workdir is None:
        with scratch_dir(Path(tempfile.gettempdir()), prefix="exportctl-task-") as work:
            yield work
        return
    for name in ("home", "store", "inputs"):
        shutil.rmtree(workdir / name, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    yield workdir


def contract_cell(recipe_file: Path) -> str:
    """The cell the export guide's variables name (EXPORT_FORMAT, EXPORT_CONFIG's precision), refused (exit 3)
    where they disagree with the recipe fetched by digest, which decides what is built; CHECKPOINT_PATH, when
    set, must be the recipe's checkpoint."""
    recipe = load_recipe(recipe_file)
    fmt = os.environ.get("EXPORT_FORMAT", "")
    if not fmt:
        raise errors.ConfigError("no --cell and no EXPORT_FORMAT: the task does not know which cell to build",
                                 hint="pass --cell FORMAT/PRECISION, or set the export guide's variables")
    try:
        config = json.loads(os.environ.get("EXPORT_CONFIG") or "{}")
    except json.JSONDecodeError as exc:
        raise errors.ConfigError(f"EXPORT_CONFIG is not valid JSON: {exc}") from None
    entry = recipe.formats.get(fmt)
    if entry is None or not isinstance(config, dict):
        raise errors.ConfigError(f"EXPORT_FORMAT={fmt}: the recipe builds {', '.join(recipe.formats)} only"
                                 if entry is None else "EXPORT_CONFIG must be a JSON object")
    precision = str(config.get("precision", "fp32"))
    if precision not in [p.value for p in entry.precisions]:
        raise errors.ConfigError(f"EXPORT_CONFIG precision {precision}: the recipe builds {fmt} in "
                                 f"{', '.join(p.value for p in entry.precisions)} only")
    if guide_options(config) != entry.options:
        raise errors.ConfigError(f"EXPORT_CONFIG options {json.dumps(guide_options(config), sort_keys=True)} are "
                                 f"not the recipe's formats.{fmt}.options {json.dumps(entry.options, sort_keys=True)}",
                                 hint="the recipe (fetched by digest) decides the build; render the manifests again")
    checkpoint = os.environ.get("CHECKPOINT_PATH")
    if checkpoint and (recipe.checkpoint.path is None or
                       Path(checkpoint).resolve() != recipe.resolve(recipe.checkpoint.path).resolve()):
        raise errors.ConfigError(f"CHECKPOINT_PATH={checkpoint} is not the recipe's checkpoint "
                                 f"({recipe.checkpoint.path or 'a demo checkpoint'})")
    return f"{fmt}/{precision}"
