"""In-cell task that reports what a cell can reach: `exportctl doctor` and the isolation tests run it.

Each check *tries* the forbidden thing (connect, write outside /out, read host files) and reports what
happened, so the answer comes from the sandbox itself rather than from how exportctl configured it.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from functools import partial
from pathlib import Path

from exportctl.cell.contract import Invocation, main
from exportctl.cell.protocol import Kind

DEFAULT_TARGETS = (("192.0.2.1", 80), ("127.0.0.1", 9), ("::1", 9))  # TEST-NET-1 (never routed), loopback


def _try(fn: Callable[[], object]) -> str:
    try:
        fn()
    except OSError as exc:
        return f"refused: {exc.strerror or exc}"
    return "allowed"


def _connect(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect((host, port))


def probe(invocation: Invocation) -> int:
    out = invocation.output_dir
    targets = invocation.request.connect or DEFAULT_TARGETS
    # partial, not a default-argument lambda: binds the loop variable and keeps the callable typed
    writes = {p: _try(partial(Path(p, "exportctl-probe").write_text, "x"))
              for p in ("/", "/usr", "/etc", "/in", str(Path.home()), str(out))}
    report = {
        "connect": {f"{h}:{p}": _try(partial(_connect, h, p)) for h, p in targets},
        "resolve": _try(lambda: socket.getaddrinfo("localhost", 80)),
        "write": writes,
        "environment": sorted(os.environ),
        "cwd": os.getcwd(),
        "uid": os.getuid(),
    }
    (out / "probe.json").write_text(json.dumps(report, sort_keys=True, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    main(probe, Kind.probe)
