"""How the host asks cells for a latency profile (outside the request, so outside every key), and how the answer
travels back in the cell's report into the run record."""

from __future__ import annotations

import pytest

from exportctl.cell import profile
from exportctl.cell.protocol import CellReport, Kind, Verdict


def test_the_environment_says_whether_and_how_much_to_measure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(profile.PROFILE_ENV, raising=False)
    assert "not asked for" in str(profile.requested())
    monkeypatch.setenv(profile.PROFILE_ENV, profile.OFF)
    assert profile.requested() == "not measured: build --no-profile"
    monkeypatch.setenv(profile.PROFILE_ENV, profile.Settings(3, 7).to_env())
    assert profile.requested() == profile.Settings(3, 7)
    assert profile.Settings(10, 100) == profile.DEFAULT
    for bad in ("x:1", "1:0", "-1:5"):
        with pytest.raises(ValueError):
            profile.Settings.from_env(bad)
    assert profile.cores() >= 1


def test_the_report_carries_the_profile_or_why_not() -> None:
    timed = {"warmup": 1, "runs": 2, "threads": {"1": {"threads": 1, "throughput_ips": 5.0}}}
    for report in (CellReport(Kind.export, Verdict.passed, profile=timed),
                   CellReport(Kind.export, Verdict.not_validated, profile_skipped="not measured: macOS only"),
                   CellReport(Kind.reference)):
        assert CellReport.from_json(report.to_json()) == report
    assert "profile" not in CellReport(Kind.reference).to_json()  # reports of other kinds look as before
