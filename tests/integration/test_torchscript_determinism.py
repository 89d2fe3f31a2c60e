"""TorchScript artifacts carry no record of the Python call stack that traced them.

torch.jit.trace stores `file(line): function` of every frame of the export (exportctl's in-cell code
included) in `code/**/*.debug_pkl` records, so the bytes moved with any edit of that code. The format's
finish step (`exportctl.formats.torchscript.drop_debug_records`) rewrites the archive without them.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from exportctl.env.uvenv import ensure_env
from tests.conftest import ROOT, exportctl

pytestmark = pytest.mark.slow

# Runs in the torchscript toolchain: a tiny module traced from call site 1 or 2 (two line numbers, each run in
# its own process as every cell is), saved with and without the fix; prints what the test compares.
TRACE_FROM_CALL_SITE = """
import json, sys, zipfile
from pathlib import Path
import torch
from exportctl.formats.torchscript import drop_debug_records

out, site = Path(sys.argv[1]), sys.argv[2]
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.SiLU()).eval()
example = torch.zeros(1, 3, 8, 8)
if site == "1":
    traced = torch.jit.trace(net, example)
else:

    traced = torch.jit.trace(net, example)
raw, fixed = out / "raw" / "model.torchscript", out / "fixed" / "model.torchscript"
for path in (raw, fixed):
    path.parent.mkdir(parents=True)
    traced.save(str(path), _extra_files={"config.txt": '{"task": "detect"}'})
drop_debug_records(fixed)
once = fixed.read_bytes()
drop_debug_records(fixed)
def kept(path):
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i).hex()) for i in z.infolist()
                if not i.filename.endswith((".debug_pkl", ".data/serialization_id"))]
x = torch.rand(1, 3, 8, 8)
print(json.dumps({
    "raw": raw.read_bytes().hex(), "fixed": fixed.read_bytes().hex(), "idempotent": fixed.read_bytes() == once,
    "records_kept": kept(raw) == kept(fixed),
    "had_debug": any(n.endswith(".debug_pkl") for n in zipfile.ZipFile(raw).namelist()),
    "debug_left": [n for n in zipfile.ZipFile(fixed).namelist() if n.endswith(".debug_pkl")],
    "same_outputs": torch.equal(torch.jit.load(str(raw))(x), torch.jit.load(str(fixed))(x)),
}))
"""


def test_built_torchscript_has_no_debug_records_and_keeps_metadata(quickstart_builds: dict) -> None:
    store, digest = quickstart_builds["store"], quickstart_builds["a"]["bundle"]
    layers = {la["title"]: la for la in json.loads(exportctl("show", digest, "--json", store=store).stdout)["layers"]}
    blob = store / "blobs" / "sha256" / layers["torchscript-fp32/model.torchscript"]["digest"].split(":")[1]
    data = blob.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        assert not [n for n in names if n.endswith(".debug_pkl")], "the trace's call stack is in the artifact"
        expected = {"model/extra/config.txt", "model/data.pkl", "model/version", "model/.data/serialization_id"}
        assert expected <= set(names)
        assert any(n.startswith("model/code/") for n in names)
    assert b"exportctl" not in data, "an exportctl source path is in the artifact"


def _trace(site: str, out: Path) -> dict:
    python = ensure_env("torchscript")[0] / "bin" / "python"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'runtimes' / 'python'}"}
    done = subprocess.run([str(python), "-c", TRACE_FROM_CALL_SITE, str(out), site], env=env, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_traces_from_two_call_sites_are_identical_once_stripped(tmp_path: Path) -> None:
    one, two = _trace("1", tmp_path / "1"), _trace("2", tmp_path / "2")
    assert one["raw"] != two["raw"], "the traced call stack no longer reaches the archive: is the fix still needed?"
    assert one["fixed"] == two["fixed"]
    for run in (one, two):
        assert run["had_debug"] and run["debug_left"] == []
        assert run["records_kept"] and run["idempotent"] and run["same_outputs"]
