"""The one way exportctl starts a process: argv lists only, explicit environment, captured or streamed output.

Keeping every subprocess here means one place decides what a child sees of the host (nothing by default).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
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
        timeout: float | None = None, log: Path | None = None,
        on_line: Callable[[str], None] | None = None, stdin: bytes | None = None) -> Completed:
    """Run argv to completion with exactly `env`; stdout+stderr go to `log` (if given) and are returned.

    `on_line` also receives each line of output as it comes (live progress, `build -v`). `stdin`: bytes the
    child reads (a credential helper's host name); otherwise it reads nothing.
    """
    args = tuple(str(a) for a in argv)
    start = time.monotonic()
    if on_line is not None:
        returncode, raw = _streamed(args, env, cwd, timeout, on_line)
    else:
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


# Streamed children (cells run from worker threads), so that Ctrl-C in the main thread can stop them: a
# sandboxed cell runs in its own session and never sees the terminal's SIGINT.
_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()


def kill_streamed() -> None:
    """Kill every child `run(on_line=...)` is still waiting for (their `run` calls then return)."""
    with _LIVE_LOCK:
        children = list(_LIVE)
    for child in children:
        if child.poll() is None:
            child.kill()


def _streamed(args: tuple[str, ...], env: Mapping[str, str], cwd: Path | None, timeout: float | None,
              on_line: Callable[[str], None]) -> tuple[int, bytes]:
    try:
        child = subprocess.Popen(args, env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT)
    except FileNotFoundError:
        return 127, f"[exportctl] program not found: {args[0]}\n".encode()
    with _LIVE_LOCK:
        _LIVE.add(child)
    expired = threading.Event()

    def kill() -> None:
        expired.set()
        child.kill()

    timer = threading.Timer(timeout, kill) if timeout is not None else None
    if timer is not None:
        timer.start()
    chunks = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            chunks.append(line)
            on_line(line.decode(errors="replace").rstrip("\n"))
        returncode = child.wait()
    finally:
        if timer is not None:
            timer.cancel()
        if child.poll() is None:  # an exception (Ctrl-C) in the loop: the child must not outlive us
            child.kill()
            child.wait()
        with _LIVE_LOCK:
            _LIVE.discard(child)
    if expired.is_set():
        chunks.append(f"\n[exportctl] timed out after {timeout}s\n".encode())
        returncode = 124
    return returncode, b"".join(chunks)
