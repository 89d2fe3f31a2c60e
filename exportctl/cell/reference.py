"""PyTorch reference outputs on fixed inputs, computed once per build (in the PyTorch toolchain's cell).

Writes `inputs.npy` (the letterboxed batch every cell's runtime is fed), one `<output>.npy` per model output
and `reference.json`. .npy files are plain header + bytes, so equal arrays give equal files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .contract import CellConfigError, Request, main
from .hermetic import seal


def compute(request: Request) -> int:
    seal()
    import torch
    from ultralytics import YOLO
    from ultralytics.utils import ASSETS
    from yolo_runtime import letterbox, load_image

    cfg = request.config
    imgsz = int(cfg["imgsz"])
    images = [Path(p) for p in cfg.get("images") or []] or sorted(Path(ASSETS).glob("*.jpg"))
    if not images:
        raise CellConfigError("no validation images given and the toolchain ships no sample images")
    assert request.checkpoint is not None
    model = YOLO(str(request.checkpoint), task="detect").model.float().eval()
    batch = np.concatenate([letterbox(load_image(p), imgsz) for p in images])
    outputs = []
    with torch.no_grad():
        for i in range(len(batch)):
            y = model(torch.from_numpy(batch[i : i + 1]))
            outputs.append((y[0] if isinstance(y, (list, tuple)) else y).numpy())
    out = request.output_dir
    np.save(out / "inputs.npy", batch)
    np.save(out / "output0.npy", np.concatenate(outputs))
    info = {
        "outputs": ["output0"],
        "output_shapes": [list(outputs[0].shape)],
        "imgsz": imgsz,
        "images": [{"name": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in images],
        "names": {str(k): v for k, v in model.names.items()},
        "model_name": Path(model.yaml.get("yaml_file", "model")).stem,
    }
    (out / "reference.json").write_text(json.dumps(info, sort_keys=True, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    main(compute)
