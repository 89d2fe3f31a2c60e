"""What the docker tier needs from the machine: a Docker daemon and a local Python base image.

CI machines reach the Debian archive but no container registry, so when running as root this installs
Debian's docker.io and debootstrap, starts a private dockerd (no iptables, no bridge, its own socket), and
makes the base image the toolchain templates build FROM out of a debootstrapped bookworm with python3 and
venv (bookworm's python3 is 3.11, as the locks require), cached as a tarball between runs.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from exportctl import proc
from exportctl.canonical import digest_value, short
from exportctl.env.uvenv import cache_root

BASE_REPOSITORY, BASE_TAG = "exportctl-base", "bookworm-python3.11"
BASE_IMAGE = f"{BASE_REPOSITORY}:{BASE_TAG}"
# Changing this recipe makes a new tarball (its digest names the cache entry and labels the image).
BASE_RECIPE = {"suite": "bookworm", "variant": "minbase", "include": ["python3", "python3-venv"], "version": 1}
BASE_LABEL = "dev.exportctl.base-recipe"
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
    missing = sorted({pkg for program, pkg in PACKAGES.items() if shutil.which(program) is None})
    if not missing:
        return
    env = proc.clean_env({"DEBIAN_FRONTEND": "noninteractive"})
    if proc.run(["apt-get", "install", "-y", "--no-install-recommends", *missing], env=env).returncode != 0:
        _check(["apt-get", "update"], env)
        _check(["apt-get", "install", "-y", "--no-install-recommends", *missing], env)


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


def apt_mirror(suite: str) -> str:
    """The archive URI apt on this machine uses for `suite` (read at run time: never written in the repo)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.MULTILINE))
                if "deb" in fields.get("Types", "").split() and suite in fields.get("Suites", "").split():
                    return fields["URIs"].split()[0]
        elif path.suffix in (".list", ""):
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line).split()
                if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                    return words[1]
    raise RuntimeError(f"apt has no source for Debian {suite}; debootstrap needs one")


def base_tarball() -> Path:
    """The debootstrapped root filesystem as a tar, made once per BASE_RECIPE and kept in the user cache."""
    cache = cache_root() / "docker-base"
    tarball = cache / f"{BASE_RECIPE['suite']}-{short(digest_value(BASE_RECIPE), 16)}.tar"
    if tarball.is_file():
        return tarball
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="debootstrap-", dir=cache) as scratch:
        root = Path(scratch) / "root"
        _check(["debootstrap", f"--variant={BASE_RECIPE['variant']}", f"--include={','.join(BASE_RECIPE['include'])}",
                BASE_RECIPE["suite"], str(root), apt_mirror(BASE_RECIPE["suite"])])
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (root / leftover).glob("*"):
                if item.is_file():
                    item.unlink()
        partial = Path(scratch) / "root.tar"
        _check(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."])
        os.replace(partial, tarball)
    return tarball


def ensure_base_image(client: object) -> str:
    """`exportctl-base:bookworm-python3.11` in the daemon, imported from the cached tarball if needed."""
    import docker

    key = digest_value(BASE_RECIPE)
    try:
        if client.images.get(BASE_IMAGE).labels.get(BASE_LABEL) == key:  # type: ignore[attr-defined]
            return BASE_IMAGE
    except docker.errors.ImageNotFound:
        pass
    client.api.import_image(src=str(base_tarball()), repository=BASE_REPOSITORY, tag=BASE_TAG,  # type: ignore[attr-defined]
                            changes=[f"LABEL {BASE_LABEL}={key}", 'CMD ["/bin/sh"]'])
    return BASE_IMAGE
