"""The one way exportctl starts a process: argv lists only, explicit environment, captured or streamed output.

Keeping every subprocess here means one place decides what a child sees of the host (nothing by default).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Variables a child may inherit from the host; everything else (PIP_*, UV_*, PYTHON*, HOME, ...) is dropped.
HOST_PASSTHROUGH = ("PATH", "LANG", "LC_ALL", "TMPDIR")


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    output: str
    seconds: float

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: os.environ[k] for k in HOST_PASSTHROUGH if k in os.environ}
    env.update(extra or {})
    return env


def run(argv: Sequence[str | Path], *, env: Mapping[str, str], cwd: Path | None = None,
        timeout: float | None = None, log: Path | None = None, stdin: bytes | None = None) -> Completed:
    """Run argv to completion with exactly `env`; stdout+stderr go to `log` (if given) and are returned.
    `stdin`: bytes the child reads (a credential helper's host name); otherwise it reads nothing."""
    args = tuple(str(a) for a in argv)
    start = time.monotonic()
    try:
        feed: dict[str, object] = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
        proc = subprocess.run(args, env=dict(env), cwd=cwd, stdout=subprocess.PIPE,  # type: ignore[call-overload]
                              stderr=subprocess.STDOUT, timeout=timeout, check=False, **feed)
        returncode, raw = proc.returncode, proc.stdout
    except subprocess.TimeoutExpired as exc:
        returncode, raw = 124, (exc.stdout or b"") + f"\n[exportctl] timed out after {timeout}s\n".encode()
    except FileNotFoundError:
        returncode, raw = 127, f"[exportctl] program not found: {args[0]}\n".encode()
    output = raw.decode(errors="replace")
    if log is not None:
        log.write_text(output)
    return Completed(args, returncode, output, time.monotonic() - start)
