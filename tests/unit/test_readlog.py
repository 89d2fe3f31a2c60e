"""What a plan reads is noted with its stamp, so a no-op rebuild (build/noop.py) can tell a changed input."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from exportctl import readlog
from exportctl.build import noop
from exportctl.env.locks import lock_digest
from exportctl.paths import cell_code_digest
from exportctl.plan.matrix import make_plan
from exportctl.recipe.load import load_recipe
from exportctl.store.layout import Store
from tests.conftest import ROOT
from tests.fixtures.shapes import write_dataset

DETECTOR = ROOT / "tests" / "fixtures" / "detector.pt"


def _recipe(tmp_path: Path) -> Path:
    write_dataset(tmp_path / "ds", count=4, size=32)
    (tmp_path / "calib").mkdir()
    for image in sorted((tmp_path / "ds" / "images" / "val").iterdir()):
        (tmp_path / "calib" / image.name).write_bytes(image.read_bytes())
    (tmp_path / "ds" / "labels" / "val" / "0003.txt").unlink()  # an image without objects: its label is absent
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: t\ncheckpoint: {{path: {DETECTOR}}}\ninput: {{imgsz: 160}}\n"
                      "formats:\n  onnx: {precisions: [fp32]}\n  openvino: {precisions: [int8]}\n"
                      "calibration: {images: calib, count: 2}\nvalidation:\n  dataset: ds/data.yaml\n")
    return recipe


def test_planning_notes_the_recipe_every_input_every_listed_directory_and_absent_labels(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    lock_digest.cache_clear()  # computed once per process: an earlier test's plan would have noted nothing
    cell_code_digest.cache_clear()
    with readlog.reading() as log:
        make_plan(load_recipe(recipe))
    noted = {Path(p): s for p, s in log.paths.items()}
    assert noted[recipe.resolve()] == readlog.stamp(recipe)
    assert noted[DETECTOR] is not None  # hashed: the checkpoint
    assert noted[tmp_path / "calib"] is not None  # listed: a new image there could change the selection
    assert noted[tmp_path / "calib" / "0000.bmp"] is not None and noted[tmp_path / "calib" / "0001.bmp"] is not None
    assert noted[tmp_path / "ds" / "data.yaml"] is not None and noted[tmp_path / "ds" / "images" / "val"] is not None
    assert noted[tmp_path / "ds" / "labels" / "val" / "0003.txt"] is None  # looked for, absent: must stay absent
    assert any(p.is_relative_to(ROOT / "lockfiles") for p in noted)  # lock digests are in every key
    assert noted[ROOT / "exportctl" / "cell" / "__main__.py"] is not None  # so is the in-cell code's
    assert noted[ROOT / "exportctl" / "cell"] is not None  # a module added there changes it


def test_each_change_a_plan_could_see_moves_a_noted_stamp(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    with readlog.reading() as log:
        make_plan(load_recipe(recipe))

    def changed() -> set[str]:
        return {p for p, s in log.paths.items() if readlog.stamp(p) != s}

    assert changed() == set()
    time.sleep(0.05)  # past the file system's timestamp tick (the journal refuses paths this fresh: RACY_NS)
    (tmp_path / "calib" / "9999.bmp").write_bytes(b"BM")  # an added image
    (tmp_path / "ds" / "labels" / "val" / "0003.txt").write_text("0 0.5 0.5 0.1 0.1\n")  # a label appears
    st = os.stat(recipe)
    recipe.write_text(recipe.read_text().replace("t\n", "u\n", 1))  # same size, same mtime, other bytes
    os.utime(recipe, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert changed() == {str(tmp_path / "calib"), str(tmp_path / "ds" / "labels" / "val" / "0003.txt"),
                         str(recipe.resolve())}


def test_a_build_whose_inputs_changed_near_its_start_is_not_journaled(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: t\n")
    with readlog.reading() as log:
        readlog.note(recipe)
    store = Store.open(tmp_path / "store")
    options = {"backend": "local", "sandbox": "auto", "only": [], "require_isolation": False}
    # written just now: a write within the same timestamp tick after the stamp would go unseen, so no entry
    assert noop.record(store, recipe, options, log, "sha256:" + "0" * 64, {}) is False
    assert not (store.root / "exportctl" / "noop").exists()
    assert noop.answer(store.root, recipe, options) is None


def test_a_journal_that_cannot_be_written_never_fails_the_build(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    digest = "sha256:" + "1" * 64
    store.add_run_record(digest, {"bundle": digest})
    options = {"backend": "local", "sandbox": "auto", "only": [], "require_isolation": False}
    log = readlog.ReadLog()
    log.started_ns = time.time_ns() + 10 * 10**9  # nothing it read is fresh: only the write can fail
    (store.root / "exportctl" / "noop").write_text("a file where the journal's folder goes")
    assert noop.record(store, tmp_path / "r.yaml", options, log, digest, {}) is False
    (store.root / "exportctl" / "noop").unlink()
    assert noop.record(store, tmp_path / "r.yaml", options, log, digest, {}) is True
    assert noop.answer(store.root, tmp_path / "r.yaml", options) is None  # journaled, but no such bundle
    entry = next((store.root / "exportctl" / "noop").iterdir())
    damaged = json.loads(entry.read_text())
    del damaged["reads"]
    entry.write_text(json.dumps(damaged))  # damaged by hand: a miss, not a traceback
    assert noop.answer(store.root, tmp_path / "r.yaml", options) is None
