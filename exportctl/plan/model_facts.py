"""What a checkpoint is (its Ultralytics task and head), read on the host at plan time without torch.

An Ultralytics `.pt` is a torch zip whose `data.pkl` pickles the checkpoint dict and the model object. The
host has no torch, so the pickle is read with an unpickler that builds *no* real class: every global it names
becomes an inert stand-in that only keeps its pickled state, and tensors' storages are never loaded. That is
also why reading an untrusted checkpoint here is safe (nothing in it runs).

The task is the one Ultralytics' `load_checkpoint` gives the model: the model's pickled `task` attribute,
else `train_args["task"]`, else its default task; the head is the class of the model's last layer.
A demo architecture's task comes from the yaml's name, as Ultralytics guesses it from a file name (`-seg`,
`-pose`, ...); the demo cell checks the built model's own task against it.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Ultralytics tasks and families exportctl refuses, with the precise reason (keyed by task, head class, or a
# marker of an architecture yaml's name).
REFUSED_TASKS = {
    "semantic": "YOLO26 semantic segmentation outputs a per-pixel class map, for which exportctl has no "
                "validation (decode, metrics, metadata.json schema)",
    "depth": "YOLO26 depth estimation outputs a depth map, for which exportctl has no validation "
             "(decode, metrics, metadata.json schema)",
}
REFUSED_HEADS = {
    "WorldDetect": "YOLO-World takes text embeddings as a second input (open vocabulary); exportctl validates "
                   "image-only models",
    "YOLOEDetect": "YOLOE takes text or visual prompt embeddings (open vocabulary); exportctl validates image-only "
                   "models",
    "YOLOESegment": "YOLOE takes text or visual prompt embeddings (open vocabulary); exportctl validates "
                    "image-only models",
}
REFUSED_ARCH_MARKERS = {
    "-sem": REFUSED_TASKS["semantic"],
    "-depth": REFUSED_TASKS["depth"],
    "world": REFUSED_HEADS["WorldDetect"],
    "yoloe": REFUSED_HEADS["YOLOEDetect"],
    "sam": "SAM models are promptable segmenters (point/box prompts, image encoder + mask decoder), not YOLO "
           "checkpoints: exportctl exports YOLO models",
}

# The head of a demo architecture, by a marker of its yaml's name: the plan refuses format options by head
# (`Option.refusals`) before any model is built.
HEAD_ARCH_MARKERS = {"rtdetr": "RTDETRDecoder"}

# The name fragments by which Ultralytics guesses a yaml's task (nn/tasks.py guess_model_task).
TASK_ARCH_MARKERS = ("-seg", "-cls", "-pose", "-obb")


class NotAYoloCheckpoint(ValueError):
    """The file is not a checkpoint Ultralytics' YOLO() loads as a model (SAM weights, a bare state dict, ...)."""


@dataclass(frozen=True)
class ModelFacts:
    task: str  # Ultralytics' task name
    head: str  # class name of the model's last layer ("" when unknown, e.g. demo architectures)
    refused: str | None = None  # why exportctl cannot build this model, when it cannot


class _Inert:
    """Stands in for any class a checkpoint names: keeps constructor arguments and pickled state, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.pickled_args = args
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _InertUnpickler(pickle.Unpickler):
    _classes: dict[tuple[str, str], type] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return dict
        key = (module, name)
        if key not in self._classes:
            self._classes[key] = type(name, (_Inert,), {"__module__": module})
        return self._classes[key]

    def persistent_load(self, pid: Any) -> None:  # tensor storages: never read
        return None


def _attributes(obj: Any) -> dict[str, Any]:
    state = getattr(obj, "state", None)
    if isinstance(state, tuple):  # (dict, slots)
        state = state[0]
    return state if isinstance(state, dict) else {}


def read_checkpoint(path: Path, default: str) -> ModelFacts:
    """The task and head of the Ultralytics checkpoint at `path` (`default`: Ultralytics' DEFAULT_CFG task, what it
    assumes when a checkpoint names none)."""
    try:
        with zipfile.ZipFile(path) as archive:
            pkl = next((n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
            if pkl is None:
                raise NotAYoloCheckpoint("no data.pkl inside: not a torch checkpoint")
            data = _InertUnpickler(io.BytesIO(archive.read(pkl))).load()
    except zipfile.BadZipFile as exc:
        raise NotAYoloCheckpoint("not a zip archive: not a torch (>= 1.6) checkpoint") from exc
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as exc:
        raise NotAYoloCheckpoint(f"its pickle cannot be read ({exc})") from exc
    if not isinstance(data, dict):
        raise NotAYoloCheckpoint("it pickles no checkpoint dict")
    model = data.get("ema") or data.get("model")
    if not isinstance(model, _Inert):
        keys = ", ".join(sorted(map(str, data))[:6])
        hint = " (SAM weights are a bare state dict)" if any("image_encoder" in str(k) for k in data) else ""
        raise NotAYoloCheckpoint(f"it has no Ultralytics model object (keys: {keys}){hint}")
    attrs = _attributes(model)
    train_args = data.get("train_args") if isinstance(data.get("train_args"), dict) else {}
    task = attrs.get("task") or (train_args or {}).get("task") or default
    head = _head_name(attrs)
    refused = REFUSED_TASKS.get(str(task)) or REFUSED_HEADS.get(head)
    return ModelFacts(str(task), head, refused)


def _head_name(attrs: dict[str, Any]) -> str:
    layers = _attributes(attrs.get("_modules", {}).get("model"))
    modules = layers.get("_modules", {}) if layers else {}
    if modules:
        return type(list(modules.values())[-1]).__name__
    yaml = attrs.get("yaml") or {}
    head = yaml.get("head") if isinstance(yaml, dict) else None
    return str(head[-1][2]) if head else ""


def demo_facts(arch: str, markers: dict[str, str], default: str) -> ModelFacts:
    """The task of a demo architecture yaml, by its name (`markers`: name fragment -> task, e.g. "-pose")."""
    stem = Path(arch).stem.lower()
    for marker, reason in REFUSED_ARCH_MARKERS.items():
        if marker in stem:
            return ModelFacts(marker.strip("-"), "", reason)
    head = next((h for marker, h in HEAD_ARCH_MARKERS.items() if marker in stem), "")
    task = next((t for marker, t in markers.items() if marker and marker in stem), None)
    if task is not None:
        return ModelFacts(task, head)
    other = next((m for m in TASK_ARCH_MARKERS if m in stem), None)
    if other is not None:  # a task exportctl has no spec for
        return ModelFacts(other.strip("-"), "", f"'{other}' in an architecture's name marks a task other than "
                                                f"{default}, and exportctl has no validation for it")
    return ModelFacts(default, head)
