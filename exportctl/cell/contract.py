"""How a cell is invoked: exportctl's request file, or the export guide's contract, both read into one
`CellRequest`.

exportctl: `--request <in>/request.json --output_dir <out>`. The export guide: arguments `--checkpoint_path
--export_format --output_dir --export_config`, or the environment variables CHECKPOINT_PATH, EXPORT_FORMAT,
OUTPUT_DIR, EXPORT_CONFIG (Kubernetes Jobs), with the format's options at the top level of the config. Exit
codes either way: 0 ok, 1 export failed, 2 validation failed, 3 configuration error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exportctl import formats, tasks
from exportctl.cell.protocol import Calibration, CellRequest, Demo, Kind, Validation
from exportctl.errors import CONFIG_ERROR, EXPORT_FAILED, OK

# Keys of a guide config that are not the format's options.
CONTROL_KEYS = {"format", "task", "precision", "imgsz", "batch", "source_date_epoch", "validation",
                "include_validation", "calibration", "options"}


class CellConfigError(Exception):
    """Bad arguments or config: exit 3."""


@dataclass(frozen=True)
class Invocation:
    request: CellRequest
    input_dir: Path  # where the request's input names resolve
    output_dir: Path

    def input(self, name: str) -> Path:
        return self.input_dir / name


def parse(argv: list[str] | None, kind: Kind) -> Invocation:
    parser = argparse.ArgumentParser(prog="export.py", description=__doc__)
    parser.add_argument("--request")
    parser.add_argument("--checkpoint_path", default=os.environ.get("CHECKPOINT_PATH"))
    parser.add_argument("--export_format", default=os.environ.get("EXPORT_FORMAT"))
    parser.add_argument("--output_dir", default=os.environ.get("OUTPUT_DIR"))
    parser.add_argument("--export_config", default=os.environ.get("EXPORT_CONFIG", "{}"))
    args = parser.parse_args(argv)
    if args.request:
        if not args.output_dir:
            raise CellConfigError("missing --output_dir")
        request_file = Path(args.request)
        invocation = Invocation(CellRequest.read(request_file), request_file.parent, Path(args.output_dir))
    else:
        invocation = _from_guide(args, kind)
    checkpoint = invocation.request.checkpoint
    if checkpoint is not None and not invocation.input(checkpoint).is_file():
        raise CellConfigError(f"checkpoint {invocation.input(checkpoint)} does not exist")
    invocation.output_dir.mkdir(parents=True, exist_ok=True)
    return invocation


def _from_guide(args: argparse.Namespace, kind: Kind) -> Invocation:
    missing = [n for n in ("export_format", "output_dir") if not getattr(args, n)]
    if kind == Kind.export and not args.checkpoint_path:
        missing.insert(0, "checkpoint_path")
    if missing:
        raise CellConfigError(f"missing {', '.join('--' + m for m in missing)} (or their environment variables)")
    try:
        config = json.loads(args.export_config)
    except json.JSONDecodeError as exc:
        raise CellConfigError(f"--export_config is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise CellConfigError("--export_config must be a JSON object")
    request = guide_request(kind, args.export_format, args.checkpoint_path, config)
    return Invocation(request, Path.cwd(), Path(args.output_dir))


def guide_request(kind: Kind, export_format: str, checkpoint: str | None, cfg: dict[str, Any]) -> CellRequest:
    """The request an export-guide invocation stands for (paths as given: absolute, or relative to the cwd)."""
    named = cfg.get("task")  # the checkpoint's Ultralytics task; default: the default task
    task = tasks.default_task() if named is None else tasks.get(str(named))
    if task is None:
        raise CellConfigError(f"unknown task '{named}' (this cell supports: {', '.join(tasks.registry())})")
    imgsz, batch = int(cfg.get("imgsz", 640)), int(cfg.get("batch", 1))
    if kind == Kind.reference:
        return CellRequest(kind, task.name, imgsz=imgsz, checkpoint=checkpoint, images=tuple(cfg.get("images") or ()))
    if kind == Kind.demo:
        return CellRequest(kind, task.name, imgsz=imgsz, demo=Demo(str(cfg["arch"]), int(cfg["seed"])))
    if kind == Kind.probe:
        connect = cfg.get("connect")
        return CellRequest(kind, connect=tuple((str(h), int(p)) for h, p in connect) if connect else None)
    spec = formats.get(export_format)
    if spec is None:
        raise CellConfigError(f"unsupported export_format '{export_format}' "
                              f"(this cell supports: {', '.join(formats.registry())})")
    precision = str(cfg.get("precision", "fp32"))
    if precision not in spec.supported:
        raise CellConfigError(f"precision {precision} is not supported by the {export_format} cell "
                              f"(it builds: {', '.join(spec.supported)})")
    options = guide_options(cfg)
    v = cfg.get("validation") or {}
    if cfg.get("include_validation") and not v.get("reference"):
        raise CellConfigError("include_validation needs validation.reference (a reference outputs directory)")
    t = task.thresholds
    validation = Validation(str(v["reference"]), float(v.get("conf", t.conf)), float(v.get("iou", t.iou)),
                            float(v.get("match_iou", t.match_iou)),
                            dict(v.get("tolerance") or task.tolerance(precision))) if v.get("reference") else None
    cal = cfg.get("calibration")
    calibration = Calibration(int(cal.get("count", 0)), str(cal.get("digest", "")),
                              str(cal.get("dir", "calibration"))) if cal else None
    return CellRequest(kind, task.name, export_format, precision, dict(options), imgsz, batch, checkpoint=checkpoint,
                       validation=validation, calibration=calibration)


def guide_options(cfg: dict[str, Any]) -> dict[str, Any]:
    """The format's options in a config: exportctl's own requests carry {"options": {...}}; users following the
    guide put them at the top level, beside the control keys."""
    return dict(cfg.get("options", {k: v for k, v in cfg.items() if k not in CONTROL_KEYS}))


def main(task: Callable[[Invocation], int], kind: Kind, argv: list[str] | None = None) -> None:
    """Run `task` under the contract: its return value is the exit code; failures map to 1 or 3."""
    try:
        invocation = parse(argv, kind)
    except CellConfigError as exc:
        print(f"[exportctl cell] configuration error: {exc}", file=sys.stderr)
        sys.exit(CONFIG_ERROR)
    try:
        code = task(invocation)
    except CellConfigError as exc:
        print(f"[exportctl cell] configuration error: {exc}", file=sys.stderr)
        code = CONFIG_ERROR
    except Exception:  # noqa: BLE001 - any failure inside the export is the contract's "export failed"
        traceback.print_exc()
        code = EXPORT_FAILED
    sys.exit(code if code is not None else OK)
