"""`exportctl build --executor slurm` on a real single-node Slurm: the digest of a one-machine build, every array
task COMPLETED on record, and the parts reached the coordinator only through the registry."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from exportctl import proc
from tests.conftest import QUICKSTART, exportctl

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
