"""OpenVINO: Ultralytics' exporter (torch.jit trace -> openvino.convert_model), NNCF post-training quantization
for int8, validated with the OpenVINO runtime's CPU plugin at f32 inference precision.

The artifact is a directory (model.xml + model.bin + metadata.yaml), stored as one canonical tar.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from exportctl.formats.spec import ExportStep, FormatSpec, precisions

ARTIFACT = "model_openvino_model"  # the suffix Ultralytics' AutoBackend recognises


def _intel_dir() -> Path:
    return Path(os.environ.get("HOME", "/tmp/home")) / "intel"


def telemetry_off() -> None:
    """Decline OpenVINO/NNCF telemetry the way openvino-telemetry honours: its consent file, containing "0".

    openvino-telemetry 2025.2 ignores OPENVINO_TELEMETRY_OPT_OUT; with no consent file it counts as consent,
    writes a client id under $HOME/intel and posts events from convert_model and nncf.quantize.
    """
    if "openvino_telemetry" in sys.modules:  # its client decides consent once, when first used
        raise RuntimeError("openvino_telemetry was imported before telemetry could be declined")
    consent = _intel_dir() / "openvino_telemetry"
    consent.parent.mkdir(parents=True, exist_ok=True)
    consent.write_text("0")


def check_telemetry_declined() -> None:
    """Check that telemetry stayed declined."""
    client_id = _intel_dir() / "openvino_ga_cid"
    if client_id.exists():
        raise RuntimeError(f"OpenVINO telemetry made a client id ({client_id}) although it was declined")


# A layer OpenVINO named itself: its type and a number from a process-wide counter of created nodes.
_COUNTED_NAME = re.compile(r' name="([A-Za-z]+)_\d+"')


def canonical_layer_names(xml: str) -> str:
    """The IR with every counter-numbered layer name renumbered by first appearance (`Constant_0`, `Convert_1`...).

    NNCF's calibration creates a number of nodes that varies between runs (measured: the classifier's int8 IR came
    out two ways over 300 images, every counted name off by one, model.bin identical). The names are labels only;
    tensor names (`names=`) and the graph are untouched.
    """
    ranks: dict[str, int] = {}

    def renumber(match: re.Match[str]) -> str:
        rank = ranks.setdefault(match.group(0), len(ranks))
        return f' name="{match.group(1)}_{rank}"'

    return _COUNTED_NAME.sub(renumber, xml)


def export(step: ExportStep) -> Path:
    from exportctl.formats.ultralytics import ultralytics_export

    telemetry_off()  # before openvino or nncf is imported: both read the consent file once
    artifact = ultralytics_export(step, {"format": "openvino"}, ARTIFACT)
    check_telemetry_declined()
    for xml in artifact.glob("*.xml"):
        xml.write_text(canonical_layer_names(xml.read_text(encoding="utf-8")), encoding="utf-8")
    return artifact


FORMAT = FormatSpec(
    name="openvino",
    artifact=ARTIFACT,
    runtime="OpenVINO runtime (CPU plugin, f32 inference precision)",
    precisions=precisions(
        ("fp32", "fp16", "int8"),
        refused="OpenVINO IR stores fp32 or fp16 weights, and int8 through NNCF's static quantization; "
                "Ultralytics has no w8a16/w8a32 scheme for it",
    ),
    backend="openvino",
    export=export,
    calibrated=("int8",),
    # Documented opt-out, but openvino-telemetry 2025.2 ignores it: the export also writes the consent file
    # before OpenVINO loads (`telemetry_off`). Kept for other versions.
    environment={"OPENVINO_TELEMETRY_OPT_OUT": "1"},
)
