"""The sandbox, proven from inside a real cell: a live listener on the host is unreachable from bwrap and
unshare cells, and reachable without a sandbox (so the probe can tell the difference)."""

from __future__ import annotations

import pytest

from exportctl import errors
from exportctl.commands.doctor import probe
from exportctl.runners import sandbox

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("kind", ["bwrap", "unshare"])
def test_cell_cannot_connect_anywhere(kind: str, listener) -> None:
    port, accepted = listener
    report = probe(kind, connect=[("127.0.0.1", port), ("192.0.2.1", 80)])
    assert all(v.startswith("refused") for v in report["connect"].values()), report["connect"]
    assert accepted == []


def test_without_sandbox_the_probe_does_connect(listener) -> None:
    port, accepted = listener
    report = probe("none", connect=[("127.0.0.1", port)])
    assert report["connect"][f"127.0.0.1:{port}"] == "allowed"
    assert report["isolation"]["degraded"]


def test_bwrap_cell_writes_only_its_output_and_sees_no_host_config() -> None:
    report = probe("bwrap")
    writes = report["write"]
    assert writes["/out"] == "allowed"
    for path in ("/", "/usr", "/etc"):
        assert writes[path].startswith("refused"), (path, writes[path])
    leaked = [k for k in report["environment"] if k.startswith(("PIP_", "UV_", "SSL_", "VIRTUAL_ENV"))]
    assert leaked == [] and "YOLO_OFFLINE" in report["environment"]
    assert report["cwd"] == "/out"


def test_no_sandbox_program_is_a_clear_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with neither bwrap nor unshare on it
    with pytest.raises(errors.SandboxUnavailable, match="apt-get install bubblewrap"):
        sandbox.choose("auto")
