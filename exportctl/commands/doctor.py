"""`exportctl doctor`: ask a real cell what it can reach, instead of trusting the sandbox's configuration."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import click

from exportctl import errors
from exportctl.commands.common import emit, json_option, out, sandbox_option


def probe(sandbox: str = "auto", toolchain: str | None = None,
          connect: list[tuple[str, int]] | None = None) -> dict[str, Any]:
    """Run the probe cell (in the reference format's toolchain by default) and return its report.

    `connect` overrides the addresses it tries (tests point it at a live listener).
    """
    from exportctl import formats
    from exportctl.cell.protocol import CellRequest, Kind
    from exportctl.runners import Job, get_runner

    toolchain = toolchain or formats.reference_format().toolchain
    runner = get_runner("local", sandbox=sandbox)
    runner.prepare(toolchain)
    request = CellRequest(Kind.probe, connect=tuple(connect) if connect else None)
    with tempfile.TemporaryDirectory(prefix="exportctl-probe-") as scratch:
        job = Job(toolchain=toolchain, request=request, inputs={}, output_dir=Path(scratch), source_date_epoch=0,
                  label="probe")
        done = runner.run(job)
        if done.returncode != 0:
            raise errors.SandboxUnavailable(f"the probe cell failed (exit {done.returncode}):\n{done.log[-2000:]}")
        report: dict[str, Any] = json.loads((Path(scratch) / "probe.json").read_text())
    report["isolation"] = runner.isolation()
    return report


@click.command()
@sandbox_option()
@json_option
def doctor(sandbox: str) -> None:
    """Run a probe cell and report what it can reach (network, writable paths, environment)."""
    report = probe(sandbox)
    emit(report, lambda: out().print_json(json.dumps(report)))
    reached = sorted(address for address, verdict in report["connect"].items() if verdict == "allowed")
    if reached:
        raise errors.SandboxUnavailable(f"the probe cell reached {', '.join(reached)}: cells are not isolated",
                                        hint="isolate cells: --sandbox auto (the default), bwrap or unshare")
