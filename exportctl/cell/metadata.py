"""The export guide's `metadata.json` for one artifact (detection task)."""

from __future__ import annotations

from typing import Any

from .hermetic import created_at


def detection_metadata(*, model_name: str, export_format: str, precision: str, imgsz: int,
                       output_shapes: list[list[int]], names: dict[int, str], export_config: dict[str, Any],
                       conf: float, iou: float) -> dict[str, Any]:
    class_names = [names[i] for i in sorted(names)]
    return {
        "framework": "ultralytics",
        "model_name": model_name,
        "export_format": export_format,
        "precision": precision,
        "task_type": "detection",
        "input_shape": [imgsz, imgsz, 3],
        "input_dtype": "float32",
        "output_shape": output_shapes,
        "class_names": class_names,
        "num_classes": len(class_names),
        "anchor_based": False,
        "created_at": created_at(),
        "export_config": export_config,
        "preprocessing": {"mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0], "color_space": "RGB",
                          "resize_mode": "letterbox", "normalize": True},
        "postprocessing": {"apply_nms": True, "confidence_threshold": conf, "iou_threshold": iou,
                           "coordinate_format": "xyxy"},
    }
