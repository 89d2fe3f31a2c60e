"""Process sandboxes for the local backend: bubblewrap (full isolation) or unshare (network only).

bubblewrap gives the cell a fresh mount namespace: host /usr read-only, the toolchain environment, code and
inputs read-only at fixed paths, /out the only writable host directory, no network, a private /tmp.
`unshare --net` is the fallback where bubblewrap is missing: it cuts the network but cannot hide or
re-path the filesystem, so bundles record it and artifacts may carry host paths.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from exportctl import errors
from exportctl.cell.view import CELL_CODE, CELL_ENV, CELL_HOME, CELL_IN, CELL_OUT

_ETC_FILES = {
    "passwd": "root:x:0:0:root:/tmp/home:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    "group": "root:x:0:\nnogroup:x:65534:\n",
    "hosts": "127.0.0.1 localhost\n::1 localhost\n",
    "hostname": "cell\n",
}


def choose(requested: str = "auto") -> str:
    """The sandbox to use; `none` only when explicitly requested (it is recorded in the bundle)."""
    if requested == "none":
        return "none"
    for name in ("bwrap", "unshare") if requested == "auto" else (requested,):
        if shutil.which(name):
            return name
    raise errors.SandboxUnavailable(
        "no sandbox to isolate cells: neither bubblewrap (bwrap) nor unshare is installed",
        hint="install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap), "
             "or pass --sandbox none to build without isolation (recorded in the bundle)",
    )


def minimal_etc(cache: Path) -> Path:
    """A fixed /etc for cells: the host's users, resolver and configuration stay outside."""
    etc = cache / "sandbox-etc"
    etc.mkdir(parents=True, exist_ok=True)
    for name, text in _ETC_FILES.items():
        if not (etc / name).is_file() or (etc / name).read_text() != text:
            (etc / name).write_text(text)
    return etc


def bwrap_argv(*, env: Path, interpreter_prefix: Path, code: Path, runtimes: Path,
               inputs: dict[str, Path], output: Path, etc: Path) -> list[str]:
    argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--hostname", "cell",
            "--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
            "--dir", CELL_HOME, "--tmpfs", "/etc"]
    for name in sorted(_ETC_FILES):
        argv += ["--ro-bind", str(etc / name), f"/etc/{name}"]
    for top in ("/bin", "/sbin", "/lib", "/lib64", "/lib32"):
        path = Path(top)
        if path.is_symlink():  # merged-/usr systems: keep the link, its target is already mounted
            argv += ["--symlink", str(path.readlink()), top]
        elif path.is_dir():
            argv += ["--ro-bind", top, top]
    for name in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d"):
        if (Path("/etc") / name).exists():
            argv += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    argv += ["--remount-ro", "/etc"]
    if not interpreter_prefix.is_relative_to("/usr"):
        argv += ["--ro-bind", str(interpreter_prefix), str(interpreter_prefix)]
    argv += ["--ro-bind", str(env), CELL_ENV,
             "--ro-bind", str(code), f"{CELL_CODE}/exportctl",
             "--ro-bind", str(runtimes), f"{CELL_CODE}/runtimes"]
    for name, host in sorted(inputs.items()):
        argv += ["--ro-bind", str(host), f"{CELL_IN}/{name}"]
    # The sandbox's own root is a scratch tmpfs; read-only it, so /out and /tmp are the only writable places.
    argv += ["--bind", str(output), CELL_OUT, "--remount-ro", "/", "--chdir", CELL_OUT]
    return argv


def unshare_argv() -> list[str]:
    return ["unshare", "--net", "--map-root-user", "--"]
