"""Ultralytics loads what exportctl builds: `YOLO(artifact)` with no task given (AutoBackend) reads the task, class
names, image size and keypoint shape from the metadata each format embeds, and predicts the task's output on a scene
of the model's own kind.

Every task's trained test model is built to ONNX fp32 (the detector also to OpenVINO fp32); the
artifacts are taken from the store and loaded by Ultralytics inside their format's toolchain environment, offline
and without auto-installs (~1 min per task on two cores).
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from exportctl.env.uvenv import ensure_env
from exportctl.store import mediatypes as mt
from tests.conftest import NO_PROFILE, ROOT, build_json, exportctl
from tests.fixtures.shapes import CLASSES, OBB_CLASSES, POSE_CLASSES, SHAPES, TASK_SCENES, scene, write_bmp

pytestmark = pytest.mark.slow

FIXTURES = ROOT / "tests" / "fixtures"
# task -> (trained model, its class names, the Results attribute that holds the task's output)
MODELS = {"detect": ("detector.pt", CLASSES, "boxes"), "segment": ("segment.pt", CLASSES, "masks"),
          "classify": ("classify.pt", SHAPES, "probs"), "pose": ("pose.pt", POSE_CLASSES, "keypoints"),
          "obb": ("obb.pt", OBB_CLASSES, "obb")}
# Not TorchScript: Ultralytics' TorchScript backend imports torchvision before torch.jit.load (which cannot be had
# here, below); exportctl validates that artifact with torch.jit.load itself.
FORMATS = {"detect": {"onnx": "fp32", "openvino": "fp32"}}


def formats_of(task: str) -> dict[str, str]:
    """format -> precision built for `task`: ONNX fp32 unless FORMATS says more."""
    return FORMATS.get(task, {"onnx": "fp32"})

IMAGES = 4  # validation scenes of the build; the first is the one predicted

# Runs in the toolchain environment: one JSON line per artifact. Ultralytics' predictor loop imports torchvision
# (for its NMS at warm-up, and for the classifier's transforms), which CPU torch 2.13 cannot load here (the
# registry's torchvision 0.28 is a CUDA build whose ops need libtorch_cuda), so the task's own predictor is set up
# as `predict` sets it up (its AutoBackend on the artifact) and runs its inference and postprocessing on a square
# scene of the model's size, the tensor its letterbox (and the classifier's transforms) give for one: RGB CHW / 255.
PREDICT = """
import json, sys
import cv2, torch

from ultralytics import YOLO

image, imgsz = sys.argv[1], int(sys.argv[2])
img = cv2.imread(image)
assert img.shape[:2] == (imgsz, imgsz), img.shape
x = torch.from_numpy(img[..., ::-1].transpose(2, 0, 1).copy())[None].float() / 255
for path in sys.argv[3:]:
    model = YOLO(path)  # no task: read from the artifact's metadata
    predictor = model._smart_load("predictor")(overrides={"conf": 0.25, "device": "cpu", "verbose": False})
    predictor.setup_model(path)  # AutoBackend: names, image size, keypoint shape... from the metadata
    predictor.batch = ([image],)
    r = predictor.postprocess(predictor.model(x), x, [img])[0]
    out = {"path": path, "task": model.task, "names": {str(k): v for k, v in r.names.items()}}
    if r.probs is not None:
        out["probs"] = {"n": len(r.probs.data), "top1": int(r.probs.top1)}
    for kind in ("boxes", "masks", "keypoints", "obb"):
        value = getattr(r, kind)
        if value is not None:
            out[kind] = {"n": len(value), "shape": list(value.data.shape)}
    found = r.obb if r.obb is not None else r.boxes
    out["classes"] = [] if found is None else sorted(int(c) for c in found.cls.tolist())
    print(json.dumps(out), flush=True)
"""


def _recipe(task: str, directory: Path) -> Path:
    checkpoint, _, _ = MODELS[task]
    _, imgsz = TASK_SCENES.get(task, (scene, 160))
    images = "".join(f"\n    - {directory / 'scenes' / f'{i:04d}.bmp'}" for i in range(IMAGES))
    formats = "".join(f"\n  {fmt}: {{precisions: [{p}]}}" for fmt, p in formats_of(task).items())
    path = directory / f"autobackend-{task}.yaml"
    path.write_text(f"name: autobackend-{task}\ncheckpoint: {{path: {FIXTURES / checkpoint}}}\n"
                    f"input: {{imgsz: {imgsz}}}\nformats:{formats}\nvalidation:\n  images:{images}\n")
    return path


def _artifacts(store: Path, bundle: str, directory: Path) -> dict[str, Path]:
    """cell -> its artifact, as a user gets it out of the store (a directory artifact untarred under its name)."""
    manifest = json.loads(exportctl("cat", bundle, store=store).stdout)
    found = {}
    for layer in manifest["layers"]:
        ann = layer["annotations"]
        if ann.get(mt.ANNOTATION_ROLE) != "artifact":
            continue
        blob = store / "blobs" / "sha256" / layer["digest"].split(":")[1]
        target = directory / ann[mt.ANNOTATION_TITLE]
        target.parent.mkdir(parents=True, exist_ok=True)
        if layer["mediaType"] == mt.WEIGHT_TAR:
            with tarfile.open(blob) as tar:
                tar.extractall(target, filter="data")
        else:
            target.write_bytes(blob.read_bytes())
        found[ann[mt.ANNOTATION_CELL]] = target
    return found


def _predict(toolchain: str, image: Path, imgsz: int, paths: list[Path], home: Path) -> list[dict]:
    python = ensure_env(toolchain)[0] / "bin" / "python"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "False",
           "PYTHONPATH": str(ROOT / "exportctl" / "cell" / "site")}  # the torchvision stand-in cells use
    done = subprocess.run([str(python), "-c", PREDICT, str(image), str(imgsz), *map(str, paths)], env=env,
                          cwd=home, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module", params=sorted(MODELS))
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One task's build, its artifacts loaded and run by Ultralytics, and the predicted scene's true labels."""
    task = request.param
    base = tmp_path_factory.mktemp(f"autobackend-{task}")
    draw, imgsz = TASK_SCENES.get(task, (scene, 160))
    rng = np.random.default_rng(2)
    truth = []
    (base / "scenes").mkdir()
    for i in range(IMAGES):
        img, labels = draw(rng, imgsz)
        write_bmp(base / "scenes" / f"{i:04d}.bmp", img)
        truth.append(labels)
    code, summary = build_json(_recipe(task, base), base / "store", NO_PROFILE)
    assert code == 0 and all(c["status"] == "passed" for c in summary["cells"]), summary["cells"]
    artifacts = _artifacts(base / "store", summary["bundle"], base / "artifacts")
    home = base / "home"
    home.mkdir()
    results = {}
    for toolchain in sorted({cell.split("/")[0] for cell in artifacts}):
        cells = sorted(c for c in artifacts if c.startswith(f"{toolchain}/"))
        outs = _predict(toolchain, base / "scenes" / "0000.bmp", imgsz, [artifacts[c] for c in cells], home)
        results.update(zip(cells, outs, strict=True))
    return {"task": task, "cells": {c["cell"] for c in summary["cells"]}, "results": results, "truth": truth[0]}


def _true_classes(task: str, labels: Any) -> list[int]:
    """The classes in a scene's labels (a class index, pose dicts or rows that start with the class)."""
    if task == "classify":
        return [int(labels)]
    return sorted(int(lb["class"] if isinstance(lb, dict) else lb[0]) for lb in labels)


def test_ultralytics_loads_every_artifact_with_its_task_and_names(loaded: dict) -> None:
    task = loaded["task"]
    _, names, _ = MODELS[task]
    assert set(loaded["results"]) == loaded["cells"] == {f"{f}/{p}" for f, p in formats_of(task).items()}
    for cell, out in loaded["results"].items():
        assert out["task"] == task, (cell, out)
        assert out["names"] == {str(i): n for i, n in enumerate(names)}, (cell, out)


def test_each_artifact_predicts_the_tasks_output_on_a_scene(loaded: dict) -> None:
    task = loaded["task"]
    _, names, kind = MODELS[task]
    truth = _true_classes(task, loaded["truth"])
    for cell, out in loaded["results"].items():
        assert kind in out and out[kind]["n"] > 0, (cell, out)
        if task == "classify":
            assert out["probs"] == {"n": len(names), "top1": truth[0]}, (cell, out, truth)
            continue
        assert out["classes"] == truth, (cell, out, truth)  # every shape found once, with its class
        if task == "segment":
            assert out["masks"]["n"] == out["boxes"]["n"], (cell, out)
        if task == "pose":
            assert out["keypoints"]["shape"][1:] == [3, 3], (cell, out)  # kpt_shape from the metadata
