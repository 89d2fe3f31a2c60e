"""The README is a contract: its test command is what CI runs, its exit-code table is errors.py's."""

from __future__ import annotations

import re

from exportctl import errors
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def _commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", README, flags=re.S)


def test_ci_runs_the_readme_test_command() -> None:
    main_job, test_command = _commands()[:2]
    assert "exportctl build recipes/quickstart.yaml" in main_job
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_exit_code_table_matches_errors_module() -> None:
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", README, flags=re.M))
    assert {int(k): v for k, v in rows.items()} == errors.EXIT_CODES
