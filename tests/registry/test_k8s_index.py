"""What one pod of `exportctl ci k8s` runs, run here (no cluster can): `ci k8s` pushes the inputs its Jobs name by
digest; an index's export-guide variables, sourced from the ConfigMap as the pod sources them, make `cell-task`
build that cell, push its part (the bundle a local `build --only` of that cell makes) and leave it in
OUTPUT_DIR as an OCI layout."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from exportctl import proc
from tests.conftest import QUICKSTART, exportctl

pytestmark = [pytest.mark.registry, pytest.mark.slow]


def test_an_index_of_the_rendered_job_builds_its_cell(plain_registry, quickstart_builds, tmp_path: Path) -> None:
    ref = f"{plain_registry.host}/k8s/quickstart:v1"
    rendered = exportctl("ci", "k8s", QUICKSTART, "--registry", ref, "--install", "", "--sandbox", "bwrap", "--json",
                         "-o", tmp_path / "job.yaml")
    assert json.loads(rendered.stdout)["pushed_inputs"] is True
    documents = {d["metadata"]["name"].rsplit("-", 1)[1]: d for d in yaml.safe_load_all((tmp_path / "job.yaml")
                                                                                          .read_text())}
    container = documents["cpu"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    cells = tmp_path / "cells"  # the ConfigMap, as the pod mounts it
    cells.mkdir()
    for name, text in documents["cells"]["data"].items():
        (cells / name).write_text(text)
    # The pod's own script, with its mount points mapped to directories here; toolchain environments come from
    # this machine's cache (a pod makes its own under EXPORTCTL_CACHE, from the package index).
    script = container["command"][2].replace("/etc/exportctl/cells", str(cells)).replace("/work/", f"{tmp_path}/")
    done = proc.run(["bash", "-c", script], env=proc.clean_env({
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HOME": os.environ.get("HOME", "/root"),
        "JOB_COMPLETION_INDEX": "0", "INPUTS": env["INPUTS"], "OUTPUT_DIR": str(tmp_path / "out")}), timeout=1800)
    assert done.returncode == 0, done.output
    part = next(line.split("=", 1)[1] for line in (cells / "cpu-0.env").read_text().splitlines()
                if line.startswith("PART="))
    assert f"pushed {part.rsplit(':', 1)[0]}@" in done.output

    # The part is the bundle a local `build --only onnx` makes (its cell is in the quickstart store's cache).
    local_store = tmp_path / "local"
    shutil.copytree(Path(str(quickstart_builds["store"])), local_store)
    local = json.loads(exportctl("build", QUICKSTART, "--only", "onnx", "--json", "--backend", "local", "--sandbox",
                                 "bwrap", store=local_store).stdout)["bundle"]
    pulled = json.loads(exportctl("pull", part, "--json", store=tmp_path / "pulled").stdout)["bundle"]
    assert pulled == local
    layout = tmp_path / "out" / part.rsplit(":", 1)[1]
    assert (layout / "oci-layout").is_file()
    assert json.loads((layout / "index.json").read_text())["manifests"][0]["digest"] == local
