"""What every task's spec shares (not a task; the registry skips it): the export guide's common metadata.json
fields and the letterbox preprocessing of the tasks that find instances."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from exportctl.tasks.spec import MetadataFacts, ToleranceKey

# The raw-tensor keys the tasks share: one meaning and one range each, wherever a task gates on them.
BOX_MAX_ABS = ToleranceKey("max_abs", "largest absolute difference of the raw box rows (input pixels)", gt=0)
SCORE_MAX_ABS = ToleranceKey("score_max_abs", "largest absolute difference of the raw class-score rows (probability)",
                             gt=0)
RAW_COSINE = ToleranceKey("cosine_min", "cosine similarity of the raw box rows, and of the raw score rows", ge=-1, le=1)


def letterbox_input(image: Path, imgsz: int) -> Any:
    """Letterboxed RGB NCHW float32 in [0, 1], as Ultralytics' inference and users' code feed the model."""
    from yolo_runtime import letterbox, load_image

    return letterbox(load_image(image), imgsz)


def base_metadata(facts: MetadataFacts, task_type: str, resize_mode: str = "letterbox") -> dict[str, Any]:
    """The export guide's fields every task's `metadata.json` has; shapes and dtypes as measured from the artifact."""
    class_names = [facts.names[i] for i in sorted(facts.names)]
    return {
        "framework": "ultralytics",
        "model_name": facts.model_name,
        "export_format": facts.export_format,
        "precision": facts.precision,
        "task_type": task_type,
        "input_shape": [facts.imgsz, facts.imgsz, 3],
        "input_dtype": facts.input_dtype,
        "output_shape": facts.output_shapes,
        "class_names": class_names,
        "num_classes": len(class_names),
        "created_at": facts.created_at,
        "export_config": facts.export_config,
        "preprocessing": {"mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0], "color_space": "RGB",
                          "resize_mode": resize_mode, "normalize": True},
    }


def instance_postprocessing(facts: MetadataFacts, coordinate_format: str = "xyxy") -> dict[str, Any]:
    """`postprocessing` of the tasks that find instances: apply_nms says whether the consumer must suppress (the
    raw head), i.e. the artifact has no NMS stage inside."""
    return {"apply_nms": not facts.applies_nms, "confidence_threshold": facts.conf, "iou_threshold": facts.iou,
            "coordinate_format": coordinate_format}
