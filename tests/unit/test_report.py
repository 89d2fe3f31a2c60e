"""`exportctl report`: golden HTML and Markdown of a small fixed bundle, the same numbers in both, deterministic
bytes, a page that needs no network, and evidence that is absent said plainly instead of failing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from exportctl.bundle import bom
from exportctl.store.layout import Store
from exportctl.views.report import number
from tests.conftest import check_golden
from tests.unit.evidence_bundle import VALIDATIONS, evidence_bundle
from tests.unit.test_signing import exportctl, fake_bundle


@pytest.fixture
def evidence(tmp_path: Path) -> tuple[Store, str]:
    store = Store.open(tmp_path / "store")
    return store, evidence_bundle(store)


def _report(store: Store, digest: str, path: Path, fmt: str) -> str:
    done = exportctl("report", digest[7:19], "-o", path, "--format", fmt, "--json", store=store.root)
    assert json.loads(done.stdout)["output"] == str(path)
    return path.read_text()


def test_html_and_markdown_match_their_golden_files(evidence, tmp_path: Path, update_golden: bool) -> None:
    store, digest = evidence
    bom.attach(store, digest)  # deterministic, unlike a signature's time: the golden page names it
    html = _report(store, digest, tmp_path / "report.html", "html")
    markdown = _report(store, digest, tmp_path / "report.md", "md")
    check_golden("report-evidence.html", html, update_golden)
    check_golden("report-evidence.md", markdown, update_golden)
    # Rendered again (another process, another store): the same bytes, nothing from the clock.
    other = Store.open(tmp_path / "other")
    assert evidence_bundle(other) == digest
    bom.attach(other, digest)
    assert _report(other, digest, tmp_path / "again.html", "html") == html


def test_both_renderings_carry_the_same_numbers(evidence, tmp_path: Path) -> None:
    store, digest = evidence
    html = _report(store, digest, tmp_path / "r.html", "html")
    markdown = _report(store, digest, tmp_path / "r.md", "md")
    text = re.sub(r"<svg.*?</svg>", "", html, flags=re.S)  # the numbers of the tables, not of the plots' axes
    for cell, validation in VALIDATIONS.items():
        assert f'data-cell="{cell}"' in html and f"| {cell} |" in markdown
        expected = [number(g["value"]) for g in validation["gates"]] + [f"{number(g['limit'])}"
                                                                         for g in validation["gates"]]
        for m in (validation.get("accuracy") or {}).get("metrics", {}).values():
            expected += [number(m["reference"]), number(m["artifact"]), number(m["drop"]), number(m["max_drop"])]
        for value in expected:
            assert value in text and value in markdown, (cell, value)
    for reason in ("map50_95 drop 0.081 &gt; 0.05", "numeric validation requires macOS"):
        assert reason in text and reason in markdown  # both escape the bundle's text as HTML


def test_the_page_needs_no_network_and_names_the_bundle_on_every_page(evidence, tmp_path: Path) -> None:
    store, digest = evidence
    html = _report(store, digest, tmp_path / "r.html", "html")
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r"""(src|href)=["'](?!#)|url\((?!#)""", html), "every reference stays inside the page"
    assert html.count("<svg") == 2 + 3  # two error histograms, accuracy, latency and size bars
    assert f'@top-center {{ content: "exportctl bundle {digest}"' in html  # printed pages: every one
    header, footer = html.index("<header>"), html.index("<footer>")
    assert digest in html[header:header + 300] and digest in html[footer:footer + 300]


def test_the_newest_run_record_gives_latency_and_its_host_is_named(evidence, tmp_path: Path) -> None:
    store, digest = evidence
    markdown = _report(store, digest, tmp_path / "r.md", "md")
    assert "Measured on **Linux-6.1-x86_64-with-glibc2.36** (Test CPU @ 2.0GHz, 16 cores)" in markdown
    assert "2026-03-02T10:00:00" in markdown and "newest of 2 run records" in markdown
    assert "| onnx/fp32 | 1 | 3 / 50 | 1 | 4.2 / 4.62 / 5.46 |" in markdown  # not the older record's 8.4


def test_absent_evidence_is_said_not_failed(tmp_path: Path) -> None:
    """A bundle without accuracy, histograms or latency (made before they existed, or built --no-profile)."""
    store = Store.open(tmp_path / "store")
    digest = fake_bundle(store)
    html = _report(store, digest, tmp_path / "r.html", "html")
    markdown = _report(store, digest, tmp_path / "r.md", "md")
    for note in ("No cell measured accuracy on a labelled set", "No run record of this bundle holds latency"):
        assert note in html and note in markdown
    assert "No per-element error histogram recorded for this cell." in html
    assert 'data-cell="onnx/fp32"' in html


def test_text_from_the_bundle_is_escaped(tmp_path: Path) -> None:
    """A pulled bundle is someone else's text: it is shown, never run as markup or broken out of a table."""
    store = Store.open(tmp_path / "store")
    hostile = '<script>alert(1)</script> | <img src=x onerror="alert(2)">'
    cells = {**VALIDATIONS, "coreml/fp32": {**VALIDATIONS["coreml/fp32"], "reason": hostile}}
    digest = evidence_bundle(store, cells)
    html = _report(store, digest, tmp_path / "r.html", "html")
    markdown = _report(store, digest, tmp_path / "r.md", "md")
    assert "<script" not in html and "<img" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    row = next(line for line in markdown.splitlines() if line.startswith("| coreml/fp32 |"))
    assert row.count(" | ") == 7 and "\\| &lt;img" in row  # the pipe is escaped: the row keeps its 8 columns
    assert "<script" not in markdown and "&lt;script&gt;" in row  # GitHub would render raw HTML


def test_markdown_to_stdout_and_a_missing_bundle(evidence, tmp_path: Path) -> None:
    store, digest = evidence
    done = exportctl("report", digest, "--format", "md", store=store.root)
    assert done.stdout == _report(store, digest, tmp_path / "r.md", "md")
    assert done.stdout.startswith("## exportctl report: evidence\n") and done.stderr == ""
    missing = exportctl("report", "sha256:" + "0" * 64, "-o", tmp_path / "no.html", store=store.root, check=False)
    assert missing.returncode == 8 and "no bundle matching" in missing.stderr
    assert not (tmp_path / "no.html").exists()
