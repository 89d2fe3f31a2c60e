"""The in-cell entrypoint keeps the export guide's contract: arguments or env vars, exit codes 0/1/2/3."""

from __future__ import annotations

from pathlib import Path

import pytest

from exportctl import errors
from exportctl.runners import Job, get_runner

pytestmark = pytest.mark.slow


def _run(tmp_path: Path, args: tuple[str, ...], inputs: dict[str, Path] | None = None,
         env: dict[str, str] | None = None) -> tuple[int, str]:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    job = Job(toolchain="onnx", module="exportctl.cell", args=args, inputs=inputs or {}, output_dir=out,
              source_date_epoch=0, label="contract", extra_env=env or {})
    done = get_runner("local").run(job)
    return done.returncode, done.log


def test_missing_arguments_exit_3(tmp_path: Path) -> None:
    code, log = _run(tmp_path, ("--export_format", "onnx"))
    assert code == errors.CONFIG_ERROR and "--checkpoint_path" in log


def test_missing_checkpoint_file_exits_3(tmp_path: Path) -> None:
    code, log = _run(tmp_path, ("--checkpoint_path", "/in/nope.pt", "--export_format", "onnx", "--output_dir", "/out"))
    assert code == errors.CONFIG_ERROR and "/in/nope.pt" in log


def test_bad_json_config_from_environment_exits_3(tmp_path: Path) -> None:
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"x")
    code, log = _run(tmp_path, (), inputs={"model.pt": ckpt},
                     env={"CHECKPOINT_PATH": "/in/model.pt", "EXPORT_FORMAT": "onnx", "OUTPUT_DIR": "/out",
                          "EXPORT_CONFIG": "{opset: 17"})
    assert code == errors.CONFIG_ERROR and "not valid JSON" in log


def test_unsupported_format_exits_3_and_broken_checkpoint_exits_1(tmp_path: Path) -> None:
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"definitely not a torch zip archive")
    args = ("--checkpoint_path", "/in/model.pt", "--output_dir", "/out")
    code, log = _run(tmp_path, (*args, "--export_format", "pdf"), inputs={"model.pt": ckpt})
    assert code == errors.CONFIG_ERROR and "unsupported export_format 'pdf'" in log
    code, log = _run(tmp_path, (*args, "--export_format", "onnx"), inputs={"model.pt": ckpt})
    assert code == errors.EXPORT_FAILED and "Traceback" in log
