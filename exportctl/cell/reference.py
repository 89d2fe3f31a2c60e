"""PyTorch reference outputs on fixed inputs, computed once per build (in the reference environment's cell).

Writes `inputs.npy` (the preprocessed batch every cell's runtime is fed), one `<output>.npy` per output the
task keeps and `reference.json`. .npy files are plain header + bytes, so equal arrays give equal files. With a
labelled set, also `accuracy.json`: the task's standard metric of the PyTorch model on it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from exportctl import tasks
from exportctl.cell import accuracy
from exportctl.cell.contract import CellConfigError, Invocation, main
from exportctl.cell.hermetic import seal
from exportctl.cell.protocol import Kind


def compute(invocation: Invocation) -> int:
    request = invocation.request
    task = tasks.get(request.task)
    if task is None:
        raise CellConfigError(f"unknown task '{request.task}'")
    seal()
    import torch
    from ultralytics import YOLO
    from ultralytics.utils import ASSETS

    images = [invocation.input(name) for name in request.images] or sorted(Path(ASSETS).glob("*.jpg"))
    if not images:
        raise CellConfigError("no validation images given and the toolchain ships no sample images")
    assert request.checkpoint is not None
    model = YOLO(str(invocation.input(request.checkpoint)), task=task.name).model.float().eval()
    if hasattr(model, "end2end"):  # as Ultralytics' exporter sets it for nms=None/True: the one-to-many head
        model.end2end = False
    batch = np.concatenate([task.preprocess(p, request.imgsz) for p in images])
    names = [f"output{i}" for i in range(task.reference_outputs)]
    def run(x: np.ndarray) -> list[np.ndarray]:
        """The model's outputs the task keeps, for one preprocessed image."""
        with torch.no_grad():
            kept = inference_outputs(model(torch.from_numpy(x)))
        return [kept[k].numpy() for k in range(len(names))]

    per_image = [run(batch[i : i + 1]) for i in range(len(batch))]
    outputs = [[o[k] for o in per_image] for k in range(len(names))]
    out = invocation.output_dir
    if request.dataset is not None:
        labelled = accuracy.load(invocation.input(request.dataset.directory), request.dataset)
        accuracy.write_reference(out, labelled, accuracy.measure(task, run, labelled, request.imgsz))
    np.save(out / "inputs.npy", batch)
    for name, arrays in zip(names, outputs, strict=True):
        np.save(out / f"{name}.npy", np.concatenate(arrays))
    info = {
        "outputs": names,
        "output_shapes": [list(arrays[0].shape) for arrays in outputs],
        "imgsz": request.imgsz,
        "images": [{"name": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in images],
        "names": {str(k): v for k, v in model.names.items()},
        "model_name": Path(model.yaml.get("yaml_file", "model")).stem,
        "head": type(model.model[-1]).__name__,
        "end2end": bool(getattr(model, "end2end", False)),
    }
    head = model.model[-1]
    if getattr(head, "kpt_shape", None) is not None:  # keypoints per instance and values per keypoint
        info["kpt_shape"] = [int(v) for v in head.kpt_shape]
        info["kpt_names"] = {str(k): list(v) for k, v in (getattr(model, "kpt_names", None) or {}).items()}
    (out / "reference.json").write_text(json.dumps(info, sort_keys=True, indent=2) + "\n")
    return 0


def inference_outputs(y: Any) -> list[Any]:
    """The tensors an export emits, from the PyTorch model's inference return value, in the export's order.

    Outside export mode the heads return `(outputs, extras)`: a detect head `(y, raw)`, a classify head
    `(probabilities, logits)`, a segment head `((y, protos), raw)`; what the exported graph returns is the first
    element, itself a tuple where the export has several outputs.
    """
    first = y[0] if isinstance(y, (list, tuple)) else y
    return list(first) if isinstance(first, (list, tuple)) else [first]


if __name__ == "__main__":
    main(compute, Kind.reference)
