"""The local backend (the embedded default): uv environments from locks, cells in a process sandbox."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from exportctl import proc
from exportctl.cell.view import CELL_ENV, CELL_IN, CELL_OUT
from exportctl.env import uvenv as envs
from exportctl.paths import PACKAGE_DIR, RUNTIMES_DIR
from exportctl.runners import sandbox
from exportctl.runners.base import Job, JobResult, cell_argv, cell_environment, job_inputs


class LocalRunner:
    name = "local"

    def __init__(self, sandbox_kind: str = "auto") -> None:
        self.sandbox = sandbox.choose(sandbox_kind)
        # bubblewrap gives each cell a private /tmp; unshare and none share the host's, where two cells at once
        # would overwrite each other's work directory.
        self.concurrent = self.sandbox == "bwrap"

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

    def cancel(self) -> None:
        proc.kill_streamed()

    def run(self, job: Job) -> JobResult:
        env_path, _ = envs.ensure_env(job.toolchain)
        with tempfile.TemporaryDirectory(prefix="exportctl-cell-") as scratch:
            inputs = job_inputs(job, Path(scratch))
            if self.sandbox == "bwrap":
                argv = sandbox.bwrap_argv(
                    env=env_path, interpreter_prefix=envs.base_interpreter_prefix(env_path), code=PACKAGE_DIR,
                    runtimes=RUNTIMES_DIR, inputs=inputs, output=job.output_dir,
                    etc=sandbox.minimal_etc(envs.cache_root()),
                )
                argv += cell_argv(job, f"{CELL_ENV}/bin/python", CELL_IN, CELL_OUT)
                return self._run(argv, cell_environment(job), cwd=None, on_line=job.on_line)
            return self._run_unisolated(job, env_path, inputs, Path(scratch))

    def _run_unisolated(self, job: Job, env_path: Path, inputs: dict[str, Path], scratch: Path) -> JobResult:
        """unshare/none: the same job at host paths (inputs linked into a scratch directory)."""
        input_dir = scratch / "in"
        input_dir.mkdir()
        for name, host in inputs.items():
            (input_dir / name).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(host, input_dir / name)
        home = scratch / "home"
        home.mkdir()
        code = scratch / "code"
        code.mkdir()
        os.symlink(PACKAGE_DIR, code / "exportctl")
        os.symlink(RUNTIMES_DIR, code / "runtimes")
        cell_env = cell_environment(job, code_root=str(code), env_root=str(env_path), home=str(home))
        prefix = sandbox.unshare_argv() if self.sandbox == "unshare" else []
        argv = [*prefix, *cell_argv(job, str(env_path / "bin" / "python"), str(input_dir), str(job.output_dir))]
        return self._run(argv, cell_env, cwd=job.output_dir, on_line=job.on_line)

    @staticmethod
    def _run(argv: list[str], env: dict[str, str], cwd: Path | None,
             on_line: Callable[[str], None] | None) -> JobResult:
        done = proc.run(argv, env=env, cwd=cwd, on_line=on_line)
        return JobResult(done.returncode, done.output, done.seconds)
