"""`exportctl doctor`: ask a real cell what it can reach, instead of trusting the sandbox's configuration."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from exportctl import errors
from exportctl.runners import Job, get_runner
from exportctl.runners.base import CELL_OUT
from exportctl.toolchains import REFERENCE_TOOLCHAIN


def probe(sandbox: str = "auto", toolchain: str = REFERENCE_TOOLCHAIN,
          connect: list[tuple[str, int]] | None = None) -> dict[str, Any]:
    """Run the probe cell; `connect` overrides the addresses it tries (tests point it at a live listener)."""
    runner = get_runner("local", sandbox=sandbox)
    runner.prepare(toolchain)
    with tempfile.TemporaryDirectory(prefix="exportctl-probe-") as scratch:
        job = Job(toolchain=toolchain, module="exportctl.cell.probe",
                  args=("--export_format", "probe", "--output_dir", CELL_OUT,
                        "--export_config", json.dumps({"connect": connect} if connect else {})), inputs={},
                  output_dir=Path(scratch), source_date_epoch=0, label="probe")
        done = runner.run(job)
        if done.returncode != 0:
            raise errors.SandboxUnavailable(f"the probe cell failed (exit {done.returncode}):\n{done.log[-2000:]}")
        report: dict[str, Any] = json.loads((Path(scratch) / "probe.json").read_text())
    report["isolation"] = runner.isolation()
    return report
