"""`exportctl build --executor slurm` on a real single-node Slurm: the digest of a one-machine build, every array
task COMPLETED on record, the parts reached the coordinator only through the registry, the reference ran once
(on the coordinator), inputs through a shared directory; and what Slurm does to tasks: a time limit, scancel
from outside, Ctrl-C of the coordinator."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from exportctl import errors, proc
from tests.conftest import QUICKSTART, exportctl
from tests.registry.proxy import tampering

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def test_quickstart_on_slurm_gives_the_local_digest(slurm_cluster, plain_registry, quickstart_builds, tmp_path):
    local = quickstart_builds["a"]["bundle"]
    coordinator = tmp_path / "coordinator-store"
    ref = f"{plain_registry.host}/cluster/quickstart:latest"
    done = exportctl("build", QUICKSTART, "--executor", "slurm", "--registry", ref, "--log-dir", tmp_path / "logs",
                     "--json", store=coordinator, env=slurm_cluster)
    result = json.loads(done.stdout)
    assert result["bundle"] == local, done.stderr
    assert result["reference"] == f"{plain_registry.host}/cluster/quickstart@{local}"
    assert sorted(t["cell"] for t in result["tasks"]) == ["onnx/fp32", "torchscript/fp32"]

    # Slurm's own record: every array task COMPLETED (scontrol keeps finished jobs for MinJobAge).
    array_job = result["tasks"][0]["slurm_array_job"]
    shown = proc.run(["scontrol", "show", "job", "-o", array_job], env=proc.clean_env(slurm_cluster))
    states = {line.split("ArrayTaskId=")[1].split()[0]: line.split("JobState=")[1].split()[0]
              for line in shown.output.splitlines() if "ArrayTaskId=" in line}
    assert states == {"0": "COMPLETED", "1": "COMPLETED"}, shown.output

    # The run record names each cell's job, array task and node.
    runs = json.loads(exportctl("show", local, "--json", store=coordinator).stdout)["runs"]
    slurm_run = next(r for r in runs if r.get("executor") == "slurm")
    # The demo checkpoint and the reference ran once, on the coordinator; every task took them from its inputs.
    assert slurm_run["reference"]["cached"] is False and slurm_run["reference"]["demo_checkpoint"]["cached"] is False
    assert [(c["reference_cached"], c["checkpoint_cached"]) for c in slurm_run["cells"]] == [(True, True)] * 2
    assert {(c["cell"], c["slurm_array_job"], c["node"]) for c in slurm_run["cells"]} == {
        ("onnx/fp32", array_job, "localhost"), ("torchscript/fp32", array_job, "localhost")}

    # Tasks built in their own working directory, HOME and store (none of them the submitter's, all gone now)
    # and their parts came back through the registry: the coordinator's store knows them only as pulled refs.
    for task in result["tasks"]:
        log = (tmp_path / "logs" / task["log"]).read_text()
        record = json.loads(log.split("exportctl-task ", 1)[1].splitlines()[0])
        work = Path(record["workdir"])
        assert not work.exists() and coordinator not in work.parents and Path.cwd() not in work.parents
        assert Path(os.environ.get("HOME", "/root")) not in work.parents
        assert f"pushed {plain_registry.host}/cluster/quickstart@{task['part']}" in log
        remotes = json.loads((coordinator / "exportctl" / "remotes" / f"{task['part'][7:]}.json").read_text())
        assert remotes == [f"{plain_registry.host}/cluster/quickstart"]


def test_inputs_through_a_shared_directory(slurm_cluster, plain_registry, quickstart_builds, tmp_path):
    shared = tmp_path / "shared"
    ref = f"{plain_registry.host}/cluster/shared:latest"
    done = exportctl("build", QUICKSTART, "--executor", "slurm", "--registry", ref, "--shared-dir", shared,
                     "--log-dir", tmp_path / "logs", "--json", store=tmp_path / "coordinator", env=slurm_cluster)
    result = json.loads(done.stdout)
    assert result["bundle"] == quickstart_builds["a"]["bundle"], done.stderr
    assert {(t["reference_cached"], t["checkpoint_cached"]) for t in result["tasks"]} == {(True, True)}
    # The tasks read their inputs (recipe, demo checkpoint, reference outputs) from the directory, by digest.
    inputs = re.search(r"wrote (sha256:[0-9a-f]{64}) to", done.stderr)
    assert inputs, done.stderr
    manifest = json.loads((shared / "blobs" / "sha256" / inputs.group(1)[7:]).read_text())
    assert all((shared / "blobs" / "sha256" / layer["digest"][7:]).is_file() for layer in manifest["layers"])
    assert len(manifest["layers"]) > 3  # the recipe plus the shipped actions' entries and blobs
    in_registry = requests.get(f"http://{plain_registry.host}/v2/cluster/shared/manifests/{inputs.group(1)}",
                               headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}, timeout=10)
    assert in_registry.status_code == 404  # the registry carried the parts and the bundle, not the inputs


@pytest.fixture(scope="module")
def waiting_store(tmp_path_factory):
    """One coordinator store for the tests whose tasks never finish: the first computes the reference there, the
    others reuse it (no cell of theirs is ever stored, so every cell is submitted again)."""
    return tmp_path_factory.mktemp("waiting") / "store"


def _array_state(slurm_env: dict[str, str], array_job: str) -> set[str]:
    shown = proc.run(["scontrol", "show", "job", "-o", array_job], env=proc.clean_env(slurm_env))
    return set(re.findall(r"JobState=(\S+)", shown.output))


def _running_array(slurm_env: dict[str, str], coordinator: subprocess.Popen, timeout: float = 600) -> str:
    """The array job of our one task, once Slurm runs it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert coordinator.poll() is None, "the coordinator ended before its task ran"
        found = proc.run(["squeue", "-h", "-n", "exportctl", "-t", "RUNNING", "-o", "%A"],
                         env=proc.clean_env(slurm_env)).output.split()
        if found:
            return found[0]
        time.sleep(1)
    raise AssertionError("no task of ours started running")


def _coordinator(slurm_env, registry_host, store, tmp_path, *extra) -> subprocess.Popen:
    """`exportctl build --executor slurm` in the background, its output in files, SIGINT reaching Python."""
    argv = [sys.executable, "-m", "exportctl", "build", str(QUICKSTART), "--backend", "local", "--only", "onnx",
            "--executor", "slurm", "--registry", f"{registry_host}/cluster/waiting", "--log-dir",
            str(tmp_path / "logs"), *extra]
    return subprocess.Popen(argv, env={**os.environ, **slurm_env, "EXPORTCTL_STORE": str(store)},
                            stdout=open(tmp_path / "out", "w"), stderr=open(tmp_path / "err", "w"),  # noqa: SIM115
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_a_task_past_its_time_limit_is_reported_as_timed_out(slurm_cluster, plain_registry, waiting_store,
                                                              tmp_path):
    """A task whose download stalls (the registry stops answering) outlives `--time 1` (a minute): Slurm kills it
    and the coordinator says so, with Slurm's exit code, and exits 14 (the scheduler ended it, not the cell)."""
    with tampering(plain_registry.host, "stall") as stalled:
        done = exportctl("build", QUICKSTART, "--only", "onnx", "--executor", "slurm", "--registry",
                         f"{stalled}/cluster/waiting", "--time", "1", "--log-dir", tmp_path / "logs",
                         store=waiting_store, env=slurm_cluster, check=False)
    assert done.returncode == errors.REGISTRY_ERROR, done.stderr
    assert re.search(r"timed out after \S+ \(Slurm state TIMEOUT, exit code \d+:\d+\)", done.stderr), done.stderr
    assert "raise --time" in done.stderr and "Traceback" not in done.stderr
    array_job = re.search(r"array (\d+): 1 CPU task", done.stderr).group(1)  # type: ignore[union-attr]
    assert _array_state(slurm_cluster, array_job) == {"TIMEOUT"}


def test_scancel_from_outside_is_reported_as_cancelled(slurm_cluster, plain_registry, waiting_store, tmp_path):
    with tampering(plain_registry.host, "stall") as stalled:
        coordinator = _coordinator(slurm_cluster, stalled, waiting_store, tmp_path)
        try:
            array_job = _running_array(slurm_cluster, coordinator)
            proc.run(["scancel", array_job], env=proc.clean_env(slurm_cluster))
            code = coordinator.wait(timeout=300)
        finally:
            coordinator.kill()
    stderr = (tmp_path / "err").read_text()
    assert code == errors.REGISTRY_ERROR and "was cancelled" in stderr and "Traceback" not in stderr, stderr
    assert _array_state(slurm_cluster, array_job) == {"CANCELLED"}


def test_ctrl_c_cancels_the_submitted_array(slurm_cluster, plain_registry, waiting_store, tmp_path):
    with tampering(plain_registry.host, "stall") as stalled:
        coordinator = _coordinator(slurm_cluster, stalled, waiting_store, tmp_path)
        try:
            array_job = _running_array(slurm_cluster, coordinator)
            coordinator.send_signal(signal.SIGINT)
            code = coordinator.wait(timeout=120)
        finally:
            coordinator.kill()
    assert code == errors.INTERRUPTED, (tmp_path / "err").read_text()
    deadline = time.monotonic() + 60  # scancel was sent; Slurm records the cancellation within moments
    while _array_state(slurm_cluster, array_job) != {"CANCELLED"} and time.monotonic() < deadline:
        time.sleep(1)
    assert _array_state(slurm_cluster, array_job) == {"CANCELLED"}
