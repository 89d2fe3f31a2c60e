"""LiteRT (.tflite): Ultralytics' exporter through litert-torch (PyTorch -> LiteRT, no TensorFlow) and
ai-edge-quantizer, validated with ai-edge-litert's Interpreter on CPU.

Schemes: fp32; w8a32 (dynamic range: int8 weights, float activations, no calibration); int8 (static: int8
weights and activations, calibrated); w8a16 (static: int8 weights, int16 activations, calibrated).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from exportctl.formats.spec import ExportStep, FormatSpec, precisions

ARTIFACT = "model.tflite"


def _zip_date() -> tuple[int, int, int, int, int, int]:
    from exportctl.formats.spec import source_date

    date: tuple[int, int, int, int, int, int] = source_date().timetuple()[:6]
    return max(date, (1980, 1, 1, 0, 0, 0))  # the earliest date a zip entry can hold


def fix_zip_dates(path: Path) -> None:
    """Re-append the metadata zip Ultralytics adds to a .tflite with fixed entry dates.

    `ZipFile.writestr(name, ...)` stamps each entry with the wall clock, so two builds a second apart differ.
    The flatbuffer before the zip is kept byte for byte; the entries keep their names, contents and order.
    """
    data = path.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as old:  # zipfile locates a zip behind prepended bytes itself
        infos = old.infolist()
        if not infos:
            return
        entries = [(info, old.read(info)) for info in infos]
        start = min(info.header_offset for info in infos)
    out = io.BytesIO(data[:start])
    with zipfile.ZipFile(out, "a") as new:
        for info, content in entries:
            fixed = zipfile.ZipInfo(info.filename, date_time=_zip_date())
            fixed.compress_type, fixed.external_attr = info.compress_type, info.external_attr
            new.writestr(fixed, content)
    path.write_bytes(out.getvalue())


def export(step: ExportStep) -> Path:
    from exportctl.formats.ultralytics import ultralytics_export

    artifact = ultralytics_export(step, {"format": "litert"}, ARTIFACT)
    fix_zip_dates(artifact)
    return artifact


FORMAT = FormatSpec(
    name="litert",
    artifact=ARTIFACT,
    runtime="ai-edge-litert Interpreter (CPU, 1 thread)",
    precisions=precisions(
        ("fp32", "w8a32", "int8", "w8a16"),
        refused="LiteRT has no fp16 model: an fp32 model runs in fp16 at runtime (GPU delegate, XNNPACK FORCE_FP16)",
    ),
    backend="litert",
    export=export,
    calibrated=("int8", "w8a16"),
)
