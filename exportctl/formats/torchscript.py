"""TorchScript: torch.jit.trace through Ultralytics' exporter, validated with torch.jit on CPU.

This toolchain's environment is plain PyTorch + Ultralytics, so it also computes the PyTorch reference
outputs and makes demo checkpoints (`reference_environment`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from exportctl.formats.spec import ExportStep, FormatSpec, Option, precisions

ARTIFACT = "model.torchscript"
DEBUG_RECORD_SUFFIX = ".debug_pkl"  # code/**/<module>.py.debug_pkl: source ranges and the Python call stack
SERIALIZATION_ID = ".data/serialization_id"  # the writer derives it from the records it wrote


def drop_debug_records(path: Path) -> None:
    """Rewrite the TorchScript archive at `path` without its `*.debug_pkl` records.

    A traced graph records the Python call stack of the trace (file:line of every frame, exportctl's in-cell
    code included) in debug_pkl records, so the artifact's bytes moved with any edit of that code while the
    model stayed the same. torch.jit.load needs none of them (they only map graph nodes to source lines in
    error messages). PyTorch's own reader and writer keep every other record's bytes, in archive order, with
    the storage alignment torch.jit.load expects; the archive name (the records' folder) is the file's stem,
    as in torch.jit.save. The writer recomputes `.data/serialization_id` from the names and CRC32s of the
    records it wrote, so the id is deterministic and no longer covers the dropped records.
    """
    import torch

    reader = torch._C.PyTorchFileReader(str(path))
    names = [name for name in reader.get_all_records()
             if not name.endswith(DEBUG_RECORD_SUFFIX) and name != SERIALIZATION_ID]
    records = [(name, reader.get_record(name)) for name in names]
    del reader  # closes the file before it is replaced
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        rewritten = Path(scratch) / path.name  # the same file name gives the same archive name
        writer = torch._C.PyTorchFileWriter(str(rewritten))
        for name, data in records:
            writer.write_record(name, data, len(data))
        writer.write_end_of_file()
        del writer
        os.replace(rewritten, path)


def export(step: ExportStep) -> Path:
    from exportctl.formats.ultralytics import ultralytics_export

    artifact = ultralytics_export(step, {"format": "torchscript", "optimize": step.options["optimize"]}, ARTIFACT)
    drop_debug_records(artifact)
    return artifact


FORMAT = FormatSpec(
    name="torchscript",
    artifact=ARTIFACT,
    runtime="torch.jit (CPU)",
    precisions=precisions(("fp32",), refused="Ultralytics exports TorchScript half only on CUDA"),
    backend="torchscript",
    export=export,
    # Kept so recipes that say `optimize: false` stay valid; Ultralytics 8.4 refuses the argument when it is true.
    options=(Option("optimize", bool, False, "Ultralytics 8.4 no longer runs optimize_for_mobile for TorchScript "
                    "exports; only false is accepted", choices=(False,)),),
    reference_environment=True,
)
