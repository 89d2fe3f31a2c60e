"""What each format's toolchain does that would make two builds of the same inputs differ, undone.

Every function here fixes one measured cause (see the README's determinism notes); each runs on the finished
artifact in the cell, or before the toolchain is imported, and never changes what the model computes.
"""

from __future__ import annotations

import os
from pathlib import Path


def openvino_telemetry_off() -> None:
    """Decline OpenVINO/NNCF telemetry the way openvino-telemetry honours: its consent file, containing "0".

    openvino-telemetry 2025.2 ignores OPENVINO_TELEMETRY_OPT_OUT; with no consent file it counts as consent,
    writes a client id under $HOME/intel and posts events from convert_model and nncf.quantize.
    """
    import sys

    if "openvino_telemetry" in sys.modules:  # its client decides consent once, when first used
        raise RuntimeError("openvino_telemetry was imported before telemetry could be declined")
    consent = Path(os.environ.get("HOME", "/tmp/home")) / "intel" / "openvino_telemetry"
    consent.parent.mkdir(parents=True, exist_ok=True)
    consent.write_text("0")


def openvino(path: Path) -> None:
    """Nothing in the IR to fix (two builds measured byte-identical); check that telemetry stayed declined."""
    client_id = Path(os.environ.get("HOME", "/tmp/home")) / "intel" / "openvino_ga_cid"
    if client_id.exists():
        raise RuntimeError(f"OpenVINO telemetry made a client id ({client_id}) although it was declined")


def _zip_date() -> tuple[int, int, int, int, int, int]:
    from .hermetic import source_date

    return max(source_date().timetuple()[:6], (1980, 1, 1, 0, 0, 0))  # the earliest date a zip entry can hold


def litert(path: Path) -> None:
    """Re-append the metadata zip Ultralytics adds to a .tflite with fixed entry dates.

    `ZipFile.writestr(name, ...)` stamps each entry with the wall clock, so two builds a second apart differ.
    The flatbuffer before the zip is kept byte for byte; the entries keep their names, contents and order.
    """
    import io
    import zipfile

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


def coreml(path: Path) -> None:
    """Make an .mlpackage's bytes a function of the model alone.

    coremltools names the package's items with random UUIDs (Manifest.json), stamps the conversion date into
    the spec's user-defined metadata, and serializes protobuf maps in an order that varies between processes.
    Identifiers become name-based UUIDs, the date SOURCE_DATE_EPOCH's, and specs are re-serialized with sorted
    map keys (`deterministic=True`); the parsed model is unchanged.
    """
    import json
    import uuid

    from coremltools.proto import Model_pb2

    from .hermetic import source_date

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
            if "com.github.apple.coremltools.conversion_date" in metadata:
                metadata["com.github.apple.coremltools.conversion_date"] = source_date().strftime("%Y-%m-%d")
        spec_file.write_bytes(spec.SerializeToString(deterministic=True))
