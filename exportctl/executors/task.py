"""One Slurm array task: fetch the inputs by digest, `exportctl build --only CELL` in a private working
directory, HOME and store, push the partial bundle, exit with the cell's exit code.

It runs the very command a user would (`python -m exportctl build RECIPE --only CELL`), with the same backend
and sandbox as the submitter asked for, so a cell built on a node is built exactly as on one machine. The first
line it prints is a JSON record (job and array ids, node) that the coordinator folds into its run record.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from exportctl import errors, proc
from exportctl.env.uvenv import cache_root
from exportctl.executors.inputs import fetch_inputs
from exportctl.registry.client import Registry
from exportctl.registry.push import push
from exportctl.registry.reference import parse
from exportctl.registry.transport import TransportOptions
from exportctl.store.atomic import scratch_dir
from exportctl.store.layout import Store

TASK_MARK = "exportctl-task "  # prefix of the line that carries the task's record
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


def run_task(inputs_ref: str, cell: str, part_ref: str, backend: str, sandbox: str,
             options: TransportOptions) -> int:
    inputs, part = parse(inputs_ref), parse(part_ref)
    with scratch_dir(Path(tempfile.gettempdir()), prefix="exportctl-task-") as work:
        home, store_dir = work / "home", work / "store"
        home.mkdir()
        print(TASK_MARK + json.dumps({**slurm_ids(), "cell": cell, "workdir": str(work)}), flush=True)
        recipe = fetch_inputs(Registry(inputs, options), str(inputs.digest), work / "inputs")
        env = proc.clean_env({"HOME": str(home), "EXPORTCTL_STORE": str(store_dir),
                              "EXPORTCTL_CACHE": str(cache_root())})  # toolchain envs: the node's cache
        for key in ("DOCKER_HOST", "EXPORTCTL_LOCKFILES_DIR", "EXPORTCTL_BASE_IMAGE_PYTHON"):
            if key in os.environ:
                env[key] = os.environ[key]
        done = proc.run([sys.executable, "-m", "exportctl", "build", recipe, "--only", cell, "--backend", backend,
                         "--sandbox", sandbox, "--json"], env=env, cwd=work)
        print(done.output, flush=True)
        bundles = Store.open(store_dir).manifests() if store_dir.is_dir() else []
        if len(bundles) != 1:  # a fresh store: the build's bundle is its only one, or the build made none
            return done.returncode or errors.EXPORT_FAILED
        digest = bundles[0].digest
        if done.returncode in (errors.OK, errors.VALIDATION_FAILED):  # results exist: the coordinator shows them
            pushed = push(Store.open(store_dir, create=False), digest, part, options)
            print(f"pushed {pushed.reference}", flush=True)
        return done.returncode
