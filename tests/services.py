"""What the service tiers share (registry, Slurm): their Debian packages, installed as root when missing; free
loopback ports; daemons started in their own session with their pid in a file, and stopped by that pid."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import time
from pathlib import Path

from exportctl import proc


def ensure_packages(tier: str, programs: dict[str, str]) -> str | None:
    """None when every program (program -> Debian package) is there, installed now if needed; else why not."""
    missing = sorted({pkg for program, pkg in programs.items() if shutil.which(program) is None})
    if not missing:
        return None
    if os.geteuid() != 0:
        return f"{tier}: {', '.join(missing)} missing and only root can apt-get install them"
    env = proc.clean_env({"DEBIAN_FRONTEND": "noninteractive"})
    install = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if proc.run(install, env=env, timeout=1800).returncode != 0:
        proc.run(["apt-get", "update"], env=env, timeout=600)  # a fresh machine's package lists may be empty
        done = proc.run(install, env=env, timeout=1800)
        if done.returncode != 0:
            return f"{tier}: apt-get install {' '.join(missing)} failed:\n{done.tail(10)}"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(argv: list[str], pidfile: Path, log: Path) -> None:
    """Start a foreground daemon in its own session; its own pid (it is exec'd) goes to `pidfile`."""
    script = 'echo $$ >"$0"; log=$1; shift; exec "$@" >"$log" 2>&1'
    started = proc.run(["setsid", "-f", "sh", "-c", script, str(pidfile), str(log), *argv], env=proc.clean_env())
    assert started.returncode == 0, started.output


def stop(pidfile: Path, wait_for_pidfile: float = 5.0) -> None:
    """SIGTERM the pid `pidfile` names (waiting a little for a just-spawned daemon to write it), SIGKILL after
    10 s. Nothing happens without a pidfile: the daemon never started."""
    deadline = time.monotonic() + wait_for_pidfile
    while not (pidfile.is_file() and pidfile.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not pidfile.is_file() or not pidfile.read_text().strip().isdigit():
        return
    pid = int(pidfile.read_text().strip())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
