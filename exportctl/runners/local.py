"""The local backend (the embedded default): uv environments from locks, cells in a process sandbox."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from exportctl import proc
from exportctl.env import uvenv as envs
from exportctl.paths import PACKAGE_DIR, RUNTIMES_DIR
from exportctl.runners import sandbox
from exportctl.runners.base import CELL_ENV, CELL_IN, CELL_OUT, Job, JobResult, cell_environment


class LocalRunner:
    name = "local"

    def __init__(self, sandbox_kind: str = "auto") -> None:
        self.sandbox = sandbox.detect(sandbox_kind)

    def isolation(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"backend": self.name, "sandbox": self.sandbox}
        if self.sandbox != "bwrap":
            facts["degraded"] = {
                "unshare": "network cut, filesystem not isolated, host paths visible to the cell",
                "none": "no isolation at all (explicit --sandbox none)",
            }[self.sandbox]
        return facts

    def prepare(self, toolchain: str) -> dict[str, Any]:
        path, created = envs.ensure_env(toolchain)
        return {"toolchain": toolchain, "environment": path.name, "created": created}

    def run(self, job: Job) -> JobResult:
        env_path, _ = envs.ensure_env(job.toolchain)
        if self.sandbox == "bwrap":
            argv = sandbox.bwrap_argv(
                env=env_path, interpreter_prefix=envs.base_interpreter_prefix(env_path), code=PACKAGE_DIR,
                runtimes=RUNTIMES_DIR, inputs=dict(job.inputs), output=job.output_dir,
                etc=sandbox.minimal_etc(envs.cache_root()),
            )
            cell_env = cell_environment(job)
            argv += [f"{CELL_ENV}/bin/python", "-B", "-s", "-m", job.module, *job.args]
            return self._run(argv, cell_env, cwd=None)
        return self._run_unisolated(job, env_path)

    def _run_unisolated(self, job: Job, env_path: Path) -> JobResult:
        """unshare/none: the same job at host paths (the cell's fixed paths are rewritten to real ones)."""
        with tempfile.TemporaryDirectory(prefix="exportctl-cell-") as scratch:
            inputs = Path(scratch) / "in"
            inputs.mkdir()
            for name, host in job.inputs.items():
                (inputs / name).parent.mkdir(parents=True, exist_ok=True)
                os.symlink(host, inputs / name)
            home = Path(scratch) / "home"
            home.mkdir()
            code = Path(scratch) / "code"
            code.mkdir()
            os.symlink(PACKAGE_DIR, code / "exportctl")
            os.symlink(RUNTIMES_DIR, code / "runtimes")
            mapping = {CELL_IN: str(inputs), CELL_OUT: str(job.output_dir)}
            args = [_repath(a, mapping) for a in job.args]
            cell_env = cell_environment(job, code_root=str(code), env_root=str(env_path), home=str(home))
            prefix = sandbox.unshare_argv() if self.sandbox == "unshare" else []
            argv = [*prefix, str(env_path / "bin" / "python"), "-B", "-s", "-m", job.module, *args]
            return self._run(argv, cell_env, cwd=job.output_dir)

    @staticmethod
    def _run(argv: list[str], env: dict[str, str], cwd: Path | None) -> JobResult:
        done = proc.run(argv, env=env, cwd=cwd)
        return JobResult(done.returncode, done.output, done.seconds)


def _repath(arg: Any, mapping: dict[str, str]) -> Any:
    """Rewrite cell paths to host paths in an argument, including inside a JSON `--export_config`."""
    if isinstance(arg, str) and arg.startswith("{"):
        return json.dumps(_repath(json.loads(arg), mapping), sort_keys=True)
    if isinstance(arg, dict):
        return {k: _repath(v, mapping) for k, v in arg.items()}
    if isinstance(arg, list):
        return [_repath(v, mapping) for v in arg]
    if isinstance(arg, str):
        for cell_path, host_path in mapping.items():
            if arg == cell_path or arg.startswith(cell_path + "/"):
                return host_path + arg[len(cell_path):]
    return arg

