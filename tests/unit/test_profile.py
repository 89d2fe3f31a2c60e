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
    assert profile.Settings(3, 100, 2.0) == profile.DEFAULT == profile.Settings.from_env(profile.DEFAULT.to_env())
    assert profile.Settings.from_env("2:50") == profile.Settings(2, 50, None)  # `--profile-runs 50`: exactly 50
    for bad in ("x:1", "1:0", "-1:5", "1:5:0", "1:5:1:1"):
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


def test_the_time_budget_stops_the_timed_runs_but_never_below_ten() -> None:
    budget = profile.Settings(3, 100, 2.0)
    assert not budget.enough(9, 60.0)  # slow model: still at least MIN_RUNS
    assert budget.enough(10, 2.0) and not budget.enough(10, 1.9) and not budget.enough(50, 1.9)
    assert budget.enough(100, 0.1)  # fast model: the count stops it
    exact = profile.Settings(3, 100, None)
    assert not exact.enough(99, 1e6) and exact.enough(100, 0.0)
