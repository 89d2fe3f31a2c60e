"""The Docker backend for real: images built offline FROM the local base, cells isolated by the daemon, and
the same bytes as the local backend for the same recipe and locks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exportctl import errors
from exportctl.cell.protocol import CellRequest, Kind
from exportctl.env.locks import lock_digest
from exportctl.runners import Job
from tests.conftest import QUICKSTART, ROOT, exportctl

pytestmark = pytest.mark.docker


def _build(store: Path, backend: str, env: dict[str, str]) -> tuple[dict, float]:
    start = time.monotonic()
    done = exportctl("build", QUICKSTART, "--json", "--backend", backend, store=store, env=env)
    return json.loads(done.stdout), time.monotonic() - start


def _inputs_of(store: Path, bundle: str) -> dict:
    """What a bundle says its bytes came from, besides the recipe: the in-cell code and the locks."""
    manifest = json.loads(exportctl("cat", bundle, store=store).stdout)
    config = json.loads(exportctl("cat", manifest["config"]["digest"], store=store).stdout)["exportctl"]
    return {"cell_code": config["cell_code"], "toolchains": config["toolchains"]}


def test_docker_and_local_backends_give_the_same_bundle(tmp_path: Path, docker_env: dict[str, str]) -> None:
    docker, docker_seconds = _build(tmp_path / "docker", "docker", docker_env)
    local, local_seconds = _build(tmp_path / "local", "local", {})
    # TorchScript debug info records the cell code's line numbers: an edit between the two builds changes bytes.
    assert _inputs_of(tmp_path / "docker", docker["bundle"]) == _inputs_of(tmp_path / "local", local["bundle"]), \
        "exportctl's cell code or a lock changed between the two builds; run the test again"
    print(f"\nquickstart from empty stores: docker backend {docker_seconds:.1f}s, local backend {local_seconds:.1f}s")
    assert docker["exit_code"] == local["exit_code"] == errors.OK
    assert {c["cell"]: c["artifact"] for c in docker["cells"]} == {c["cell"]: c["artifact"] for c in local["cells"]}
    assert docker["bundle"] == local["bundle"]
    shown = json.loads(exportctl("show", docker["bundle"], "--json", store=tmp_path / "docker").stdout)
    run = shown["runs"][0]
    assert run["isolation"]["backend"] == "docker" and run["isolation"]["network"] == "none"
    images = {e["toolchain"]: e for e in run["environments"]}
    assert set(images) == {"onnx", "torchscript"}
    assert all(e["image_id"].startswith("sha256:") and e["image"].startswith("exportctl/") for e in images.values())


def test_rendered_context_builds_without_network_from_the_local_base(tmp_path: Path, docker_client, base_image) -> None:
    rows = json.loads(exportctl("render", QUICKSTART, "--out", tmp_path / "r", "--json").stdout)
    assert sorted(r["toolchain"] for r in rows) == ["onnx", "torchscript"]
    onnx = next(r for r in rows if r["toolchain"] == "onnx")
    assert sorted(p.name for p in Path(onnx["context"]).iterdir()) == [
        "Dockerfile", "exportctl", "lock.txt", "runtimes", "wheelhouse"]
    tag = "exportctl-render-test/onnx:latest"
    log, image_id = [], None
    for chunk in docker_client.api.build(path=onnx["context"], tag=tag, buildargs={"BASE_IMAGE": base_image},
                                         network_mode="none", rm=True, forcerm=True, decode=True):
        log.append(chunk.get("stream", "") + chunk.get("error", ""))
        assert "error" not in chunk, "".join(log)[-3000:]
        image_id = chunk.get("aux", {}).get("ID", image_id)
    try:
        config = docker_client.images.get(tag).attrs["Config"]
        assert config["User"] == "10001:10001"
        assert config["Labels"]["dev.exportctl.lock"] == lock_digest("onnx")
        assert config["Labels"]["org.opencontainers.image.base.name"] == base_image
        assert config["Labels"]["org.opencontainers.image.source"] == "images/onnx/Dockerfile.j2"
    finally:
        docker_client.images.remove(tag, force=True)


def _host_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # no packet is sent: this only asks the kernel which source address it would use
        return str(s.getsockname()[0])


def _probe(runner, tmp_path: Path, connect: list[tuple[str, int]]) -> dict:
    out = tmp_path / "out"
    out.mkdir()
    job = Job(toolchain="onnx", request=CellRequest(Kind.probe, connect=tuple(connect)),
              inputs={"checkpoint.pt": QUICKSTART}, output_dir=out, source_date_epoch=0, label="probe")
    result = runner.run(job)
    assert result.returncode == 0, result.log
    return json.loads((out / "probe.json").read_text())


def test_a_docker_cell_cannot_connect_anywhere_nor_write_outside_out(tmp_path: Path, docker_runner, listener) -> None:
    port, accepted = listener
    report = _probe(docker_runner, tmp_path, [("127.0.0.1", port), (_host_address(), port), ("192.0.2.1", 80)])
    assert all(v.startswith("refused") for v in report["connect"].values()), report["connect"]
    assert accepted == []
    writes = report["write"]
    assert writes["/out"] == "allowed"
    for path in ("/", "/usr", "/etc", "/in"):
        assert writes[path].startswith("refused"), (path, writes[path])
    assert report["uid"] != 0 and report["cwd"] == "/out"
    leaked = [k for k in report["environment"] if k.startswith(("PIP_", "UV_", "SSL_", "VIRTUAL_ENV", "DOCKER_"))]
    assert leaked == [] and "YOLO_OFFLINE" in report["environment"]


def _labelled(client, label: str) -> list[object]:
    return client.containers.list(all=True, filters={"label": f"dev.exportctl.cell={label}"})


def test_containers_are_removed_after_failure_and_ctrl_c(tmp_path: Path, docker_runner, docker_client,
                                                         docker_env: dict[str, str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    failed = docker_runner.run(Job(toolchain="onnx", module="exportctl.cell.no_such_module", args=(), inputs={},
                                   output_dir=out, source_date_epoch=0, label="failing-cell"))
    assert failed.returncode != 0 and "No module named" in failed.log
    assert _labelled(docker_client, "failing-cell") == []

    # A cell that never ends (a server on the container's own loopback), interrupted like Ctrl-C does.
    # SIGINT handled as at a terminal even when the tests run under a shell that started them with it ignored.
    script = (f"import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
              f"from pathlib import Path; from exportctl.runners.docker import DockerRunner; "
              f"from exportctl.runners import Job; DockerRunner().run(Job(toolchain='onnx', module='http.server', "
              f"args=(), inputs={{}}, output_dir=Path({str(out)!r}), source_date_epoch=0, label='ctrl-c-cell'))")
    child = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env={**os.environ, **docker_env},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # its KeyboardInterrupt trace
    try:
        deadline = time.monotonic() + 120
        while not _labelled(docker_client, "ctrl-c-cell"):
            assert time.monotonic() < deadline and child.poll() is None, "the cell's container never appeared"
            time.sleep(0.2)
        time.sleep(1)
        child.send_signal(signal.SIGINT)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode != 0
    assert _labelled(docker_client, "ctrl-c-cell") == []


def test_an_image_is_built_once_per_context(docker_runner, docker_client) -> None:
    from exportctl.runners.docker import DockerRunner

    first = docker_runner.prepare("onnx")
    again = DockerRunner().prepare("onnx")
    assert again["created"] is False and again["image_id"] == first["image_id"]
    labels = docker_client.images.get(first["image"]).labels
    assert labels["dev.exportctl.context"] == first["context"]


def test_a_failed_image_build_fails_the_cell_with_the_build_log(tmp_path: Path, docker_env: dict[str, str]) -> None:
    env = {**docker_env, "EXPORTCTL_BASE_IMAGE_PYTHON": "exportctl-missing-base:0"}
    done = exportctl("build", QUICKSTART, "--backend", "docker", store=tmp_path / "store", env=env, check=False)
    assert done.returncode == errors.EXPORT_FAILED, done.stderr
    assert "image exportctl/" in done.stderr and "failed" in done.stderr
    assert "exportctl-missing-base" in done.stderr  # from the build log's tail
    assert "EXPORTCTL_BASE_IMAGE_PYTHON" in done.stderr  # how to point the build at a local base
    assert "exportctl base-image" in done.stderr  # how to make one offline
    assert "inside the cell" not in done.stderr  # the failure is the image build's, on the host
