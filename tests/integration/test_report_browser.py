"""The full-matrix report in a real headless Chromium: it loads with no console error and no request beyond the
file itself, every cell has its row, the screenshot is kept as a test artifact, and the Markdown rendering's
tables hold exactly the numbers of the HTML tables; the build's ML-BOM validates and names every artifact."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from tests.browser import chromium, ensure_chromium
from tests.conftest import ROOT, MatrixBuild, exportctl

pytestmark = pytest.mark.slow

# Where screenshots and rendered pages are kept after the run (tests/artifacts/ is ignored by git).
ARTIFACTS = Path(os.environ.get("EXPORTCTL_TEST_ARTIFACTS", ROOT / "tests" / "artifacts"))
# Every row of the page's tables that the Markdown also has, as the reader sees it (innerText per cell).
TABLE_ROWS = """[...document.querySelectorAll(
    '#matrix-table tbody tr, #accuracy-table tbody tr, #latency-table tbody tr, table.gates tbody tr, '
    + 'table.structure tbody tr')].map(r => [...r.cells].map(c => c.innerText.trim().replace(/\\s+/g, ' ')))"""


def _markdown_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if not line.startswith("| ") or re.fullmatch(r"\|[-:| ]+\|", line):
            continue
        cells = re.split(r"(?<!\\)\|", line.strip()[1:-1])
        rows.append([re.sub(r"\s+", " ", html.unescape(c.strip().replace("\\|", "|"))) for c in cells])
    return rows


def test_the_full_matrix_report_opens_in_headless_chromium(full_matrix: MatrixBuild, tmp_path: Path) -> None:
    why = ensure_chromium()
    if why is not None:
        pytest.skip(f"headless Chromium cannot be used here: {why}")
    summary = full_matrix.result()
    digest, cells = summary["bundle"], [c["cell"] for c in summary["cells"]]
    store = tmp_path / "store"  # a signed copy: the page then has signatures and provenance to show
    shutil.copytree(full_matrix.store, store)
    exportctl("keygen", tmp_path / "release.pem")
    exportctl("sign", digest, "--key", tmp_path / "release.pem", store=store)
    page_file, markdown_file = tmp_path / "report.html", tmp_path / "report.md"
    exportctl("report", digest, "-o", page_file, store=store)
    exportctl("report", digest, "--format", "md", "-o", markdown_file, store=store)

    with chromium(tmp_path / "profile") as page:
        seen = page.load(page_file)
        rows = page.evaluate("[...document.querySelectorAll('#matrix-table tr[data-cell]')].map(r => r.dataset.cell)")
        statuses = page.evaluate("Object.fromEntries([...document.querySelectorAll('#matrix-table tr[data-cell]')]"
                                 ".map(r => [r.dataset.cell, r.cells[1].innerText]))")
        tables = page.evaluate(TABLE_ROWS)
        ends = page.evaluate("[...document.querySelectorAll('header .digest, footer .digest')].map(e => e.innerText)")
        shot = page.screenshot(tmp_path / "full-matrix-report.png")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for produced, name in ((shot, "full-matrix-report.png"), (page_file, "full-matrix-report.html"),
                           (markdown_file, "full-matrix-report.md")):
        shutil.copy(produced, ARTIFACTS / name)
    print(f"\nscreenshot of the full-matrix report: {ARTIFACTS / 'full-matrix-report.png'}")

    assert seen.errors() == [], seen.errors()
    assert [u for u in seen.requests if u != page_file.resolve().as_uri()] == [], "the page fetched something"
    assert sorted(rows) == sorted(cells) and len(rows) == len(cells)
    assert statuses == {c["cell"]: c["status"] for c in summary["cells"]}
    assert ends == [f"exportctl bundle {digest}"] * 2  # header and footer (printed pages: @page margin boxes)
    assert shot.stat().st_size > 50_000  # a rendered page, not a blank one

    markdown = markdown_file.read_text()
    md_rows = _markdown_rows(markdown)
    missing = [row for row in tables if row not in md_rows]
    assert tables and not missing, missing[:5]
    for cell in summary["cells"]:  # every gate of every cell, with its limit, in both
        for gate in cell["validation"].get("gates", []):
            assert any(r[0] == gate["gate"] for r in tables), gate

    bom = json.loads(exportctl("bom", digest, store=store).stdout)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(bom)) is None
    hashes = {h["content"] for c in bom["components"] for h in c.get("hashes", [])}
    assert {c["artifact"][7:] for c in summary["cells"]} <= hashes
    audit = exportctl("audit", digest, store=store, env={"COLUMNS": "250"}).stdout
    assert "ML-BOM      CycloneDX 1.6 referrer" in audit and "every artifact named" in audit
