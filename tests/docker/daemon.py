"""What the docker tier needs from the machine: a Docker daemon (the local base image is `exportctl base-image`'s).

CI machines reach the Debian archive but no container registry, so when running as root this installs
Debian's docker.io and debootstrap and starts a private dockerd (no iptables, no bridge, its own socket).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from exportctl import proc
from tests import services

PACKAGES = {"dockerd": "docker.io", "debootstrap": "debootstrap"}


@dataclass(frozen=True)
class Daemon:
    host: str  # DOCKER_HOST value
    pidfile: Path | None  # None: a daemon that was already running (not ours to stop)
    log: Path | None


def _check(argv: list[str], env: dict[str, str] | None = None, timeout: float = 1800) -> proc.Completed:
    done = proc.run(argv, env=env or proc.clean_env(), timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} … failed (exit {done.returncode}):\n{done.tail(20)}")
    return done


def ensure_packages() -> None:
    why = services.ensure_packages("docker tier", PACKAGES)
    if why:
        raise RuntimeError(why)


def start_dockerd(run_dir: Path, data_root: Path) -> Daemon:
    """dockerd in its own session with its own socket; stopped by `stop_dockerd` through its pidfile."""
    sock, pidfile, log = run_dir / "docker.sock", run_dir / "dockerd.pid", run_dir / "dockerd.log"
    data_root.mkdir(parents=True, exist_ok=True)
    daemon = ["dockerd", "--iptables=false", "--ip-masq=false", "--bridge=none", f"--data-root={data_root}",
              f"--exec-root={run_dir / 'exec'}", f"--host=unix://{sock}", f"--pidfile={pidfile}"]
    # setsid -f returns at once; the shell hands dockerd its log file so nothing waits on our pipe.
    _check(["setsid", "-f", "sh", "-c", 'exec "$@" >"$0" 2>&1', str(log), *daemon])
    result = Daemon(f"unix://{sock}", pidfile, log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if ping(result.host):
            return result
        time.sleep(0.5)
    stop_dockerd(result)
    raise RuntimeError(f"dockerd did not answer within 90 s:\n{log.read_text()[-3000:]}")


def stop_dockerd(daemon: Daemon) -> None:
    if daemon.pidfile is None or not daemon.pidfile.is_file():
        return
    pid = int(daemon.pidfile.read_text().strip())
    for sig, wait in ((signal.SIGTERM, 60), (signal.SIGKILL, 10)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.2)


def ping(host: str) -> bool:
    import docker

    try:
        client = docker.DockerClient(base_url=host, timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - not up (yet)
        return False
