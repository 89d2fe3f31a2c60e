"""The export guide's entrypoint contract, shared by every in-cell task.

Arguments `--checkpoint_path --export_format --output_dir --export_config`, or the environment variables
CHECKPOINT_PATH, EXPORT_FORMAT, OUTPUT_DIR, EXPORT_CONFIG (Kubernetes Jobs); exit codes 0 ok, 1 export
failed, 2 validation failed, 3 configuration error.
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

from exportctl.errors import CONFIG_ERROR, EXPORT_FAILED, OK


class CellConfigError(Exception):
    """Bad arguments or config: exit 3."""


@dataclass(frozen=True)
class Request:
    checkpoint: Path | None
    export_format: str
    output_dir: Path
    config: dict[str, Any]


def parse(argv: list[str] | None = None, *, needs_checkpoint: bool = True) -> Request:
    parser = argparse.ArgumentParser(prog="export.py", description=__doc__)
    parser.add_argument("--checkpoint_path", default=os.environ.get("CHECKPOINT_PATH"))
    parser.add_argument("--export_format", default=os.environ.get("EXPORT_FORMAT"))
    parser.add_argument("--output_dir", default=os.environ.get("OUTPUT_DIR"))
    parser.add_argument("--export_config", default=os.environ.get("EXPORT_CONFIG", "{}"))
    args = parser.parse_args(argv)
    missing = [n for n in ("export_format", "output_dir") if not getattr(args, n)]
    if needs_checkpoint and not args.checkpoint_path:
        missing.insert(0, "checkpoint_path")
    if missing:
        raise CellConfigError(f"missing {', '.join('--' + m for m in missing)} (or their environment variables)")
    try:
        config = json.loads(args.export_config)
    except json.JSONDecodeError as exc:
        raise CellConfigError(f"--export_config is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise CellConfigError("--export_config must be a JSON object")
    checkpoint = Path(args.checkpoint_path) if args.checkpoint_path else None
    if checkpoint is not None and not checkpoint.is_file():
        raise CellConfigError(f"checkpoint {checkpoint} does not exist")
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    return Request(checkpoint, args.export_format, out, config)


def main(task: Callable[[Request], int], argv: list[str] | None = None, *, needs_checkpoint: bool = True) -> None:
    """Run `task` under the contract: its return value is the exit code; failures map to 1 or 3."""
    try:
        request = parse(argv, needs_checkpoint=needs_checkpoint)
    except CellConfigError as exc:
        print(f"[exportctl cell] configuration error: {exc}", file=sys.stderr)
        sys.exit(CONFIG_ERROR)
    try:
        code = task(request)
    except CellConfigError as exc:
        print(f"[exportctl cell] configuration error: {exc}", file=sys.stderr)
        code = CONFIG_ERROR
    except Exception:  # noqa: BLE001 - any failure inside the export is the contract's "export failed"
        traceback.print_exc()
        code = EXPORT_FAILED
    sys.exit(code if code is not None else OK)
