"""End-to-end detection for one exported model: image path in, `Detections` out.

This is the code path users copy into their applications, and the one exportctl's validation runs, so
what they see is what was validated.
"""

from __future__ import annotations

import json
from pathlib import Path

from .backends import Backend, open_backend
from .postprocess import Detections, decode_detections
from .preprocess import letterbox, load_image


class YOLOInference:
    """An exported YOLO detect model plus the metadata needed to feed it and name its classes.

    `metadata_path` defaults to `metadata.json` beside the model (the bundle layout). An explicit `imgsz`
    wins over the metadata's `input_shape`, e.g. for a model exported with dynamic axes; an explicit `fmt`
    (export format name: onnx, openvino, ...) over the metadata's `export_format`.
    """

    def __init__(self, model_path: str | Path, metadata_path: str | Path | None = None, imgsz: int | None = None,
                 fmt: str | None = None):
        model_path = Path(model_path)
        if metadata_path is None and (model_path.parent / "metadata.json").is_file():
            metadata_path = model_path.parent / "metadata.json"
        meta = json.loads(Path(metadata_path).read_text()) if metadata_path is not None else {}
        if imgsz is None and "input_shape" in meta:
            h, w = meta["input_shape"][:2]
            if h != w:
                raise ValueError(f"only square inputs are supported, metadata input_shape is {meta['input_shape']}")
            imgsz = int(h)
        if imgsz is None:
            raise ValueError(f"no imgsz given and no metadata input_shape found for {model_path}")
        names = meta.get("class_names", [])
        # JSON object keys are strings; accept both a list and an {"0": "person"} mapping.
        self.names: dict[int, str] = (
            {int(k): v for k, v in names.items()} if isinstance(names, dict) else dict(enumerate(names))
        )
        self.imgsz = imgsz
        fmt = fmt or meta.get("export_format")
        if fmt is None:
            raise ValueError(f"no fmt given and no metadata export_format found for {model_path}")
        self.backend: Backend = open_backend(model_path, fmt)

    def predict(self, image_path: str | Path, conf: float = 0.25, iou: float = 0.45) -> Detections:
        """Detect objects in one image; boxes are in the letterboxed `imgsz` x `imgsz` input's pixels."""
        x = letterbox(load_image(image_path), self.imgsz)
        return decode_detections(self.backend.run(x)[0], conf=conf, iou=iou)[0]

    def class_name(self, i: int) -> str:
        """Name of class `i`, or its number as text when the metadata has no name for it."""
        return self.names.get(int(i), str(i))
