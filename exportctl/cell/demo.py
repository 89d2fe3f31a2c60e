"""In-cell task: make the recipe's demo checkpoint (`checkpoint: {demo: {arch, seed}}`) as `model.pt`."""

from __future__ import annotations

import json
from pathlib import Path

from .contract import Request, main
from .hermetic import seal


def make(request: Request) -> int:
    seal(int(request.config.get("seed", 0)))
    from ultralytics.utils import ASSETS

    from .demo_checkpoint import make_demo_checkpoint

    cfg = request.config
    summary = make_demo_checkpoint(
        arch=cfg["arch"], seed=int(cfg["seed"]), out_path=request.output_dir / "model.pt",
        calibration_images=sorted(Path(ASSETS).glob("*.jpg")), imgsz=int(cfg["imgsz"]),
    )
    (request.output_dir / "demo.json").write_text(json.dumps(summary, sort_keys=True, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    main(make, needs_checkpoint=False)
