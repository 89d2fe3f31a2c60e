"""Golden files are written only on request: a missing one fails instead of being created and then passing."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT, check_golden


def test_a_missing_golden_file_fails_and_is_not_written() -> None:
    name = "no-such-golden-file.txt"
    with pytest.raises(pytest.fail.Exception, match="is missing; write it with --update-golden"):
        check_golden(name, "text", update=False)
    assert not (ROOT / "tests" / "golden" / name).exists()


def test_a_differing_golden_file_fails() -> None:
    golden = sorted((ROOT / "tests" / "golden").iterdir())[0]
    with pytest.raises(AssertionError, match="differs from its golden file"):
        check_golden(golden.name, golden.read_text() + "changed", update=False)
