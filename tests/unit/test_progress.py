"""Build progress and the build summary on an 80-column console: digests stay whole, one line per event."""

from __future__ import annotations

import io
import re

from rich.console import Console

from exportctl.build.events import QUEUED, RUNNING
from exportctl.views.progress import ConsoleProgress
from exportctl.views.summary import render_build
from tests.conftest import check_golden

DIGEST = "sha256:" + "a18a60944a6b59951473133d0ef65026adb30f66fd956a56d28405db6e83f4de"
BUNDLE = "sha256:" + "d9db8bf0febed8ab6669b7f57c054b721fc8d5e3441af28d33b04fc50b00f7df"
DIGESTS = re.compile(r"sha256:[0-9a-f]{64}")


def _console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=80, force_terminal=False, color_system=None), buffer


def _events(progress: ConsoleProgress) -> None:
    progress.notice("isolation degraded: network cut, filesystem not isolated, host paths visible to the cell",
                    warning=True)
    progress.task("openvino/int8", QUEUED)
    progress.task("checkpoint", RUNNING, step="env")
    progress.task("checkpoint", RUNNING, step="demo")
    progress.task("checkpoint", "done", detail="39.8s")
    progress.notice(f"demo checkpoint yolo11n.yaml seed 0: {DIGEST}")
    progress.task("openvino/int8", RUNNING, step="env")
    progress.log("openvino/int8", "[exportctl cell] phase export")
    progress.task("openvino/int8", RUNNING, step="export")
    progress.task("openvino/int8", "passed", detail="28.0s")


def _stable(text: str) -> str:
    return re.sub(r"\[ *\d+\.\ds\]", "[t]", text)


def test_plain_progress_is_one_line_per_event_with_whole_digests(update_golden: bool) -> None:
    console, buffer = _console()
    with ConsoleProgress(console, live=False) as progress:
        _events(progress)
    text = buffer.getvalue()
    assert f"demo checkpoint yolo11n.yaml seed 0: {DIGEST}" in text.splitlines(), "one event, one whole line"
    check_golden("progress-plain.txt", _stable(text), update_golden)


def test_quiet_keeps_warnings_and_verbose_streams_cell_output() -> None:
    console, buffer = _console()
    with ConsoleProgress(console, live=False, quiet=True) as progress:
        _events(progress)
    assert buffer.getvalue().splitlines() == [
        "isolation degraded: network cut, filesystem not isolated, host paths visible to the cell"]
    console, buffer = _console()
    with ConsoleProgress(console, live=False, verbose=True) as progress:
        _events(progress)
    assert "openvino/int8 | [exportctl cell] phase export" in buffer.getvalue().splitlines()


def test_live_progress_ends_with_one_row_per_task() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, force_terminal=True, color_system=None)
    with ConsoleProgress(console, live=True) as progress:
        _events(progress)
    final = buffer.getvalue().split("\x1b[2K")[-1]  # the last redraw of the live table
    assert re.search(r"checkpoint +done +\d+\.\ds", final) and re.search(r"openvino/int8 +passed +\d+\.\ds", final)
    assert all(len(d) == 71 for d in DIGESTS.findall(buffer.getvalue())), "no digest cut by the redraw"


def test_build_summary_at_80_columns_keeps_digests_whole(update_golden: bool) -> None:
    cell = {"cell": "onnx/fp32", "status": "passed", "cached": False, "artifact": DIGEST, "size": 10_600_000,
            "seconds": 28.05, "violations": [],
            "validation": {"tensor": {"output0": {"max_abs": 0.0344, "cosine": 1.0}},
                           "detection": {"matched": 25, "ref_boxes": 25, "mean_iou": 1.0,
                                         "max_score_delta": 0.0001, "class_agreement": 1.0}}}
    summary = {"bundle": BUNDLE, "recipe": "quickstart", "exit_code": 0,
               "isolation_degraded": "network cut, filesystem not isolated, host paths visible to the cell",
               "cells": [cell, {**cell, "cell": "torchscript/fp32", "cached": True}]}
    console, buffer = _console()
    render_build(console, summary)
    text = buffer.getvalue()
    assert f"bundle {BUNDLE}" in text.splitlines()
    assert "isolation degraded:" in text
    check_golden("build-summary-80.txt", text, update_golden)
