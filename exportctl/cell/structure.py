"""Structural validation, for artifacts whose runtime cannot run here (CoreML off macOS).

Numbers cannot be compared, so the report's status is "not-validated" (never "passed") with the reason; what
can be checked without running the model is checked and any mismatch fails the cell like a tolerance would:
the input (an RGB image of the export size), the outputs (the reference's shape, or the NMS stage's pair),
the embedded metadata (task, size, class names) and the precision the model was built with.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

# Our precision names -> the `quantize` values Ultralytics records in the model's args (CoreML int8 = palettized).
QUANTIZE_RECORDED: dict[str, tuple[int | None, ...]] = {"fp32": (None, 32), "fp16": (16,), "int8": (8,)}
RGB = 20  # coremltools.proto.FeatureTypes_pb2.ImageFeatureType.RGB


def _check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"check": name, "ok": bool(ok), "detail": detail}


def coreml_checks(artifact: Path, info: dict[str, Any], precision: str) -> list[dict[str, Any]]:
    import coremltools as ct

    spec = ct.utils.load_spec(str(artifact))
    desc = spec.description
    imgsz = int(info["imgsz"])
    names = {int(k): v for k, v in info["names"].items()}
    meta = dict(desc.metadata.userDefined)
    args = ast.literal_eval(meta.get("args", "{}"))
    nms = bool(args.get("nms"))
    checks = []
    image = desc.input[0] if desc.input else None
    is_image = image is not None and image.type.WhichOneof("Type") == "imageType"
    size = (image.type.imageType.width, image.type.imageType.height) if is_image else None
    checks.append(_check("input", is_image and size == (imgsz, imgsz) and image.type.imageType.colorSpace == RGB,
                         f"{image.name if image else None}: image {size} (expected RGB {imgsz}x{imgsz})"))
    outputs = {o.name: o.type.multiArrayType for o in desc.output}
    if nms:
        conf, coords = outputs.get("confidence"), outputs.get("coordinates")
        dims = [[(r.lowerBound, r.upperBound) for r in o.shapeRange.sizeRanges] for o in (conf, coords) if o]
        ok = len(dims) == 2 and dims[0][1][0] >= len(names) and dims[1][1] == (4, 4)
        checks.append(_check("outputs", ok, f"NMS outputs confidence/coordinates with ranges {dims}"))
    else:
        shapes = [list(o.shape) for o in outputs.values()]
        expected = info["output_shapes"][:1]
        checks.append(_check("outputs", shapes == expected, f"output shapes {shapes} (reference {expected})"))
    recorded = ast.literal_eval(meta.get("names", "{}"))
    checks.append(_check("metadata", meta.get("task") == "detect" and recorded == names
                         and ast.literal_eval(meta.get("imgsz", "[]")) == [imgsz, imgsz],
                         f"task={meta.get('task')} imgsz={meta.get('imgsz')} names={len(recorded)} classes"))
    want, got = QUANTIZE_RECORDED.get(precision, ()), args.get("quantize")
    checks.append(_check("precision", got in want, f"quantize={got!r} recorded ({precision} records one of {want})"))
    return checks


def structural_report(artifact: Path, info: dict[str, Any], settings: dict[str, Any], precision: str,
                      reason: str) -> dict[str, Any]:
    checks = coreml_checks(artifact, info, precision)
    violations = [f"structure: {c['check']}: {c['detail']}" for c in checks if not c["ok"]]
    return {
        "runtime": "coremltools (structure only)",
        "images": 0,
        "tensor": {},
        "detection": None,
        "structure": checks,
        "tolerance": settings["tolerance"],
        "violations": violations,
        "status": "failed" if violations else "not-validated",
        "reason": reason,
    }
