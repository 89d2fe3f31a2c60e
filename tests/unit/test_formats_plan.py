"""Formats x precisions at plan time: refusals with reasons, calibration in cell keys, and merge's rules.

Plans are real (lockfile digests, the committed test detector's digest, real image files); merge runs on
bundles composed into a real store by the same `bundle.compose` builds end with.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from exportctl import errors
from exportctl.bundle.assemble import CellPart, Parts, compose
from exportctl.bundle.merge import merge
from exportctl.bundle.read import read_bundle
from exportctl.plan.matrix import make_plan
from exportctl.recipe.load import parse_recipe
from exportctl.store import mediatypes as mt
from exportctl.store.layout import Store
from tests.fixtures.shapes import write_scenes

DETECTOR = Path(__file__).resolve().parents[1] / "fixtures" / "detector.pt"


def _recipe(tmp_path: Path, formats: str, calibration: str = "") -> str:
    return (f"name: t\ncheckpoint: {{path: {DETECTOR}}}\ninput: {{imgsz: 160}}\nformats:\n{formats}\n"
            + (f"calibration: {calibration}\n" if calibration else ""))


def _plan(tmp_path: Path, formats: str, calibration: str = ""):
    return make_plan(parse_recipe(_recipe(tmp_path, formats, calibration), base_dir=tmp_path))


def test_int8_without_calibration_is_refused_at_plan_time(tmp_path: Path) -> None:
    with pytest.raises(errors.RecipeError) as err:
        _plan(tmp_path, "  openvino: {precisions: [fp32, int8]}")
    assert "formats.openvino.precisions" in str(err.value) and "calibration" in str(err.value)
    assert "never downloads" in str(err.value)
    # weight-only schemes calibrate nothing: no calibration needed
    plan = _plan(tmp_path, "  litert: {precisions: [w8a32]}\n  coreml: {precisions: [int8]}")
    assert plan.calibration is None and not any(c.calibrates for c in plan.cells)


@pytest.mark.parametrize(("formats", "reason"), [
    ("  litert: {precisions: [fp16]}", "runs in fp16 at runtime"),
    ("  coreml: {precisions: [w8a16]}", "palettized"),
    ("  openvino: {precisions: [w8a32]}", "NNCF"),
    ("  onnx: {precisions: [int8]}", "openvino or litert int8"),
    ("  torchscript: {options: {optimize: true}}", "no longer runs optimize_for_mobile"),
])
def test_impossible_combinations_are_refused_with_the_reason(tmp_path: Path, formats: str, reason: str) -> None:
    with pytest.raises(errors.RecipeError, match=reason):
        _plan(tmp_path, formats)


def test_calibration_images_are_in_the_keys_of_calibrating_cells_only(tmp_path: Path) -> None:
    write_scenes(tmp_path / "a", 4, seed=1, size=32)
    write_scenes(tmp_path / "b", 4, seed=2, size=32)
    formats = "  openvino: {precisions: [fp32, int8]}\n  litert: {precisions: [w8a16]}"
    a, b = _plan(tmp_path, formats, "{images: a}"), _plan(tmp_path, formats, "{images: b}")
    keys = {p: {c.name: c.key for c in plan.cells} for p, plan in (("a", a), ("b", b))}
    assert keys["a"]["openvino/fp32"] == keys["b"]["openvino/fp32"]
    for cell in ("openvino/int8", "litert/w8a16"):
        assert keys["a"][cell] != keys["b"][cell]
    assert a.calibration is not None and len(a.calibration.files) == 4
    assert sorted(a.calibration.mounts()) == [f"calibration/{i:05d}.bmp" for i in range(4)]
    assert a.calibration.record() == {"source": "a", "count": 4, "digest": a.calibration.digest}
    assert a.warnings and "300" in a.warnings[0]  # Ultralytics' advice, as a warning, not a failure


def test_count_picks_the_first_images_in_path_order_and_may_not_exceed_them(tmp_path: Path) -> None:
    write_scenes(tmp_path / "imgs", 5, seed=1, size=32)
    plan = _plan(tmp_path, "  openvino: {precisions: [int8]}", "{images: imgs, count: 3}")
    assert plan.calibration is not None
    assert [p.name for p in plan.calibration.files] == ["0000.bmp", "0001.bmp", "0002.bmp"]
    with pytest.raises(errors.RecipeError, match="asks for 9 images"):
        _plan(tmp_path, "  openvino: {precisions: [int8]}", "{images: imgs, count: 9}")


def test_a_data_yaml_calibrates_on_its_val_split_and_never_downloads(tmp_path: Path) -> None:
    write_scenes(tmp_path / "ds" / "images" / "val", 3, seed=1, size=32)
    (tmp_path / "data.yaml").write_text("path: ds\nval: images/val\nnames: {0: a}\n")
    plan = _plan(tmp_path, "  openvino: {precisions: [int8]}", "{images: data.yaml}")
    assert plan.calibration is not None and len(plan.calibration.files) == 3
    (tmp_path / "gone.yaml").write_text("path: missing\nval: images/val\ndownload: https://example.invalid/x.zip\n")
    with pytest.raises(errors.RecipeError, match="never downloads"):
        _plan(tmp_path, "  openvino: {precisions: [int8]}", "{images: gone.yaml}")


# merge ----------------------------------------------------------------------------------------------------------

def _layer(store: Store, data: bytes, media_type: str, title: str, role: str, cell: str | None = None) -> dict:
    d = store.put_bytes(data, media_type)
    ann = {mt.ANNOTATION_TITLE: title, mt.ANNOTATION_FILEPATH: title, mt.ANNOTATION_ROLE: role}
    if cell:
        ann[mt.ANNOTATION_CELL] = cell
    return {"mediaType": media_type, "digest": d.digest, "size": d.size, "annotations": ann}


def _parts(store: Store, cells: list[str], platform: str = "linux-x86_64", recipe: bytes = b"{}") -> Parts:
    parts = Parts("t", "sha256:" + "0" * 64, "1", "sha256:" + "1" * 64, platform,
                  _layer(store, recipe, mt.RECIPE, "recipe.json", "recipe"))
    for tc in ("torchscript", *sorted({c.split("/")[0] for c in cells})):
        title = f"lockfiles/{tc}-{platform}.txt"
        parts.locks[title] = _layer(store, f"{tc} {platform}".encode(), mt.LOCKFILE, title, "lockfile")
        parts.toolchains[tc] = {"lock": parts.locks[title]["digest"], "platform": platform}
    parts.references["reference/output0.npy"] = _layer(store, platform.encode(), mt.REFERENCE,
                                                        "reference/output0.npy", "reference")
    for name in cells:
        slug = name.replace("/", "-")
        art = _layer(store, f"artifact {name} {platform}".encode(), mt.WEIGHT_RAW, f"{slug}/model", "artifact", name)
        entry = {"cell": name, "status": "passed", "artifact": art["digest"], "size": art["size"], "key": name,
                 "platform": platform}
        parts.cells[name] = CellPart(entry, (art,))
    return parts


def _stored(store: Store, parts: Parts) -> str:
    return store.add_manifest(compose(store, parts), {}).digest


def test_merging_partial_bundles_equals_the_full_bundle(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store", create=True)
    full = _stored(store, _parts(store, ["onnx/fp32", "litert/int8", "coreml/fp16"]))
    a = _stored(store, _parts(store, ["litert/int8"]))
    b = _stored(store, _parts(store, ["onnx/fp32", "coreml/fp16"]))
    merged, _ = merge(store, [b, a])
    assert merged == full
    again, _ = merge(store, [a[:20], b, a])  # prefixes resolve; a part given twice changes nothing
    assert again == full


def test_merge_refuses_other_recipes_and_cells_that_differ(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store", create=True)
    a = _stored(store, _parts(store, ["onnx/fp32"]))
    other = _stored(store, _parts(store, ["litert/int8"], recipe=b'{"name": "x"}'))
    with pytest.raises(errors.ConfigError, match="recipes differ"):
        merge(store, [a, other])
    changed = _parts(store, ["onnx/fp32"])
    changed.cells["onnx/fp32"].entry["artifact"] = "sha256:" + "2" * 64
    with pytest.raises(errors.ConfigError, match="not reproducible"):
        merge(store, [a, _stored(store, changed)])


def test_a_cell_from_another_platform_merges_in_and_records_where_it_ran(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store", create=True)
    linux = _stored(store, _parts(store, ["onnx/fp32"]))
    mac_parts = _parts(store, ["coreml/fp32"], platform="darwin-arm64")
    mac_parts.isolation_degraded = "no isolation at all (explicit --sandbox none)"  # no bubblewrap on macOS
    mac = _stored(store, mac_parts)
    merged, parts = merge(store, [linux, mac])
    info = read_bundle(store, merged)
    where = {c.name: c.platform for c in info.cells}
    assert where == {"coreml/fp32": "darwin-arm64", "onnx/fp32": "linux-x86_64"}
    degraded = {c.name: c.isolation_degraded for c in info.cells}
    assert degraded == {"coreml/fp32": mac_parts.isolation_degraded, "onnx/fp32": None}
    assert "isolation_degraded" not in info.config["exportctl"]
    titles = {la.title for la in info.layers}
    assert {"reference/output0.npy", "reference@darwin-arm64/output0.npy",
            "lockfiles/coreml-darwin-arm64.txt", "lockfiles/torchscript-darwin-arm64.txt"} <= titles
    assert set(info.toolchains) == {"onnx", "torchscript", "coreml@darwin-arm64",
                                                 "torchscript@darwin-arm64"}
    assert info.platform == "linux-x86_64"
