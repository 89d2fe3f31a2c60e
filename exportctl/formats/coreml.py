"""CoreML (.mlpackage, ML Program): Ultralytics' exporter through coremltools.

coremltools converts on Linux but predicts only on macOS: there the local backend runs `MLModel.predict` and
gates like any other cell; elsewhere the cell checks structure (inputs, outputs, shapes, metadata) and is
recorded as not validated, never as passed. int8 is 8-bit k-means palettized weights (fp16 compute).
"""

from __future__ import annotations

import ast
import json
import uuid
from pathlib import Path
from typing import Any

from exportctl.formats.spec import (
    ArtifactFacts,
    ExportStep,
    FormatSpec,
    ModelRefusal,
    Option,
    StructureCheck,
    StructureExpectation,
    precisions,
)

ARTIFACT = "model.mlpackage"
# Our precision names -> the `quantize` values Ultralytics records in the model's args (int8 = palettized).
QUANTIZE_RECORDED: dict[str, tuple[int | None, ...]] = {"fp32": (None, 32), "fp16": (16,), "int8": (8,)}
RGB = 20  # coremltools.proto.FeatureTypes_pb2.ImageFeatureType.RGB
CONVERSION_DATE = "com.github.apple.coremltools.conversion_date"


def make_reproducible(path: Path) -> None:
    """Make an .mlpackage's bytes a function of the model alone.

    coremltools names the package's items with random UUIDs (Manifest.json), stamps the conversion date into
    the spec's user-defined metadata, and serializes protobuf maps in an order that varies between processes.
    Identifiers become name-based UUIDs, the date SOURCE_DATE_EPOCH's, and specs are re-serialized with sorted
    map keys (`deterministic=True`); the parsed model is unchanged.
    """
    from coremltools.proto import Model_pb2

    from exportctl.formats.spec import source_date

    manifest_file = path / "Manifest.json"
    manifest = json.loads(manifest_file.read_text())
    entries = manifest["itemInfoEntries"]
    ids = {old: str(uuid.uuid5(uuid.NAMESPACE_URL, f"exportctl:{entry['path']}")) for old, entry in entries.items()}
    manifest["itemInfoEntries"] = {ids[old]: entry for old, entry in entries.items()}
    manifest["rootModelIdentifier"] = ids[manifest["rootModelIdentifier"]]
    manifest_file.write_text(json.dumps(manifest, indent=4, sort_keys=True) + "\n")
    for entry in entries.values():
        spec_file = path / "Data" / entry["path"]
        if spec_file.suffix != ".mlmodel":
            continue
        spec = Model_pb2.Model()
        spec.ParseFromString(spec_file.read_bytes())
        for model in [spec, *spec.pipeline.models]:  # an NMS pipeline carries its stages' specs inside
            metadata = model.description.metadata.userDefined
            if CONVERSION_DATE in metadata:
                metadata[CONVERSION_DATE] = source_date().strftime("%Y-%m-%d")
        spec_file.write_bytes(spec.SerializeToString(deterministic=True))


def export(step: ExportStep) -> Path:
    from exportctl.formats.ultralytics import QUANTIZE, ultralytics_export

    nms = bool(step.options["nms"])
    args: dict[str, Any] = {"format": "coreml", "nms": nms}
    quantize = QUANTIZE[step.precision]
    if nms:  # the NMS stage suppresses as validation does; unset, Ultralytics builds NMS pipelines in fp16
        args.update(conf=step.conf, iou=step.iou)
        quantize = 32 if quantize is None else quantize
    artifact = ultralytics_export(step, args, ARTIFACT, quantize=quantize)
    make_reproducible(artifact)
    return artifact


def structure(artifact: Path, expected: StructureExpectation) -> list[StructureCheck]:
    """Input, outputs (the reference's shape, or the NMS stage's pair), metadata and recorded precision."""
    import coremltools as ct

    desc = ct.utils.load_spec(str(artifact)).description
    imgsz, names = expected.imgsz, dict(expected.names)
    meta = dict(desc.metadata.userDefined)
    args = ast.literal_eval(meta.get("args", "{}"))
    checks = []
    image = desc.input[0] if desc.input else None
    image_type = image.type.imageType if image is not None and image.type.WhichOneof("Type") == "imageType" else None
    size = (image_type.width, image_type.height) if image_type is not None else None
    checks.append(StructureCheck(
        "input", image_type is not None and size == (imgsz, imgsz) and image_type.colorSpace == RGB,
        f"{image.name if image else None}: image {size} (expected RGB {imgsz}x{imgsz})"))
    outputs = {o.name: o.type.multiArrayType for o in desc.output}
    if args.get("nms"):
        conf, coords = outputs.get("confidence"), outputs.get("coordinates")
        dims = [[(r.lowerBound, r.upperBound) for r in o.shapeRange.sizeRanges] for o in (conf, coords) if o]
        ok = len(dims) == 2 and dims[0][1][0] >= len(names) and dims[1][1] == (4, 4)
        checks.append(StructureCheck("outputs", ok, f"NMS outputs confidence/coordinates with ranges {dims}"))
    elif desc.predictedFeatureName:  # a classifier: a label and a probability per class, as a dictionary
        kinds = {o.name: o.type.WhichOneof("Type") for o in desc.output}
        ok = (kinds.get(desc.predictedFeatureName) == "stringType"
              and kinds.get(desc.predictedProbabilitiesName) == "dictionaryType"
              and [len(s) for s in expected.output_shapes] == [2] and expected.output_shapes[0][1] == len(names))
        checks.append(StructureCheck("outputs", ok, f"classifier outputs {kinds} (reference probabilities "
                                                    f"{expected.output_shapes})"))
    else:
        shapes = [list(o.shape) for o in outputs.values()]
        reference = expected.output_shapes
        checks.append(StructureCheck("outputs", sorted(shapes) == sorted(reference),
                                     f"output shapes {shapes} (reference {reference})"))
    recorded = ast.literal_eval(meta.get("names", "{}"))
    checks.append(StructureCheck(
        "metadata", meta.get("task") == expected.task and recorded == names
        and ast.literal_eval(meta.get("imgsz", "[]")) == [imgsz, imgsz],
        f"task={meta.get('task')} imgsz={meta.get('imgsz')} names={len(recorded)} classes"))
    want, got = QUANTIZE_RECORDED.get(expected.precision, ()), args.get("quantize")
    checks.append(StructureCheck("precision", got in want,
                                 f"quantize={got!r} recorded ({expected.precision} records one of {want})"))
    return checks


def describe(artifact: Path) -> ArtifactFacts:
    """Outputs (-1 where flexible, as an NMS stage's box count is), input type and whether NMS is inside."""
    import coremltools as ct

    spec = ct.utils.load_spec(str(artifact))
    desc = spec.description
    shapes = []
    classes = len(ast.literal_eval(dict(desc.metadata.userDefined).get("names", "{}")))
    for output in desc.output:
        kind = output.type.WhichOneof("Type")
        if kind in ("stringType", "dictionaryType"):  # a classifier's label, and its probability per class name
            shapes.append([1] if kind == "stringType" else [classes])
            continue
        array = output.type.multiArrayType
        ranges = [(r.lowerBound, r.upperBound) for r in array.shapeRange.sizeRanges]
        shapes.append([lo if lo == hi else -1 for lo, hi in ranges] if ranges else [int(d) for d in array.shape])
    image = desc.input[0].type.WhichOneof("Type") == "imageType" if desc.input else False
    nms = spec.WhichOneof("Type") == "pipeline" and any(
        m.WhichOneof("Type") == "nonMaximumSuppression" for m in spec.pipeline.models)
    return ArtifactFacts(shapes, "uint8" if image else "float32", applies_nms=nms)


FORMAT = FormatSpec(
    name="coreml",
    artifact=ARTIFACT,
    runtime="coremltools MLModel.predict (macOS; structural checks only elsewhere)",
    precisions=precisions(
        ("fp32", "fp16", "int8"),
        refused="CoreML's 8-bit scheme is palettized weights with fp16 activations, built as int8 "
                "(w8a16 would be the same model); it has no float-activation int8 (w8a32)",
    ),
    backend="coreml",
    export=export,
    options=(Option("nms", bool, False, "append Apple's NMS stage: outputs become (confidence, coordinates) "
                                        "after suppression",
                    refusals=(
                        ModelRefusal(lambda m: not m.default_task, bool,
                                     "Apple's NMS stage takes a detection head's boxes and scores; for masks and "
                                     "keypoints Ultralytics traces its own NMS into the model and forces fp16 (an "
                                     "fp32 cell would silently be fp16), and classes or rotated boxes have none"),
                        ModelRefusal(lambda m: m.head == "RTDETRDecoder", bool,
                                     "RT-DETR's decoder has no boxes-and-scores head for Apple's NMS stage (its "
                                     "queries are one-to-one: nothing to suppress); Ultralytics would silently drop "
                                     "nms and build the model without it",
                                     "remove the option: RT-DETR's output needs no NMS"))),),
    structure=structure,
    structure_runtime="coremltools (structure only)",
    describe=describe,
)
