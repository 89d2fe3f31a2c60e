"""In-cell task: make the recipe's demo checkpoint (`checkpoint: {demo: {arch, seed}}`) as `model.pt`."""

from __future__ import annotations

import json
from pathlib import Path

from exportctl.cell.contract import CellConfigError, Invocation, main
from exportctl.cell.hermetic import seal
from exportctl.cell.protocol import Kind


def make(invocation: Invocation) -> int:
    demo = invocation.request.demo
    if demo is None:
        raise CellConfigError("a demo request names the architecture and seed (demo: {arch, seed})")
    seal(demo.seed)
    from ultralytics.utils import ASSETS

    from exportctl.cell.demo_checkpoint import make_demo_checkpoint

    summary = make_demo_checkpoint(
        arch=demo.arch, seed=demo.seed, out_path=invocation.output_dir / "model.pt",
        calibration_images=sorted(Path(ASSETS).glob("*.jpg")), imgsz=invocation.request.imgsz,
        task=invocation.request.task,
    )
    (invocation.output_dir / "demo.json").write_text(json.dumps(summary, sort_keys=True, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    main(make, Kind.demo)
