"""The inputs artifact of remote builds, through a shared directory: files and prepared actions arrive intact
in a node's tree and store, a changed byte is refused (exit 7), and its digest is known before any upload."""

from __future__ import annotations

from pathlib import Path

import pytest

from exportctl import errors
from exportctl.build.actions import BLOB_MEDIA_TYPE, LOG_MEDIA_TYPE, ActionResult
from exportctl.canonical import digest_bytes
from exportctl.executors.inputs import action_layers, fetch_inputs, file_layers, manifest, push_inputs
from exportctl.executors.shared import SharedDir
from exportctl.executors.slurm import _indexes
from exportctl.recipe.load import load_recipe
from exportctl.store.layout import Store


def _recipe(tmp_path: Path) -> Path:
    (tmp_path / "images").mkdir(parents=True)
    (tmp_path / "images" / "a.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("name: r\ncheckpoint: {demo: {arch: yolo11n.yaml, seed: 0}}\ninput: {imgsz: 320}\n"
                      "formats: {onnx: {precisions: [fp32]}}\nvalidation: {images: [images/a.jpg]}\n")
    return recipe


def _reference(store: Store) -> ActionResult:
    log = store.put_bytes(b"reference log\n", LOG_MEDIA_TYPE)
    out = store.put_bytes(b"\x00" * 4096, BLOB_MEDIA_TYPE)
    return ActionResult(digest_bytes(b"a reference key"), 0, {"outputs.npz": out}, log.digest, 1.5, cached=False)


def test_files_and_prepared_actions_arrive_in_the_tree_and_the_store(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path / "submit")
    coordinator = Store.open(tmp_path / "coordinator")
    reference = _reference(coordinator)
    layers = file_layers(recipe, load_recipe(recipe)) + action_layers(coordinator, [reference])
    shared = SharedDir(tmp_path / "shared")
    digest = push_inputs(shared, layers)
    assert digest == digest_bytes(manifest(layers))  # what `ci k8s --no-push` names without uploading
    assert push_inputs(shared, layers) == digest  # a second ship writes nothing new and changes nothing

    node = Store.open(tmp_path / "node-store")
    found = fetch_inputs(shared, digest, tmp_path / "node" / "inputs", node)
    assert found == tmp_path / "node" / "inputs" / "recipe.yaml" and found.read_bytes() == recipe.read_bytes()
    assert (tmp_path / "node" / "inputs" / "images" / "a.jpg").read_bytes() == b"\xff\xd8 not really a jpeg"
    assert node.cache_get(reference.key) == reference.to_json()
    assert not (tmp_path / "node" / "inputs" / ".exportctl").exists()  # actions go to the store, not the tree


def test_a_changed_byte_in_the_shared_directory_is_refused(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path / "submit")
    layers = file_layers(recipe, load_recipe(recipe))
    shared = SharedDir(tmp_path / "shared")
    digest = push_inputs(shared, layers)
    image = next(layer for layer in layers if str(layer.source).endswith("a.jpg"))
    blob = tmp_path / "shared" / "blobs" / "sha256" / image.digest[7:]
    blob.chmod(0o644)
    blob.write_bytes(b"\xff\xd8 not really a jpeg" [::-1])  # same size, other bytes
    with pytest.raises(errors.VerifyFailed) as refused:
        fetch_inputs(shared, digest, tmp_path / "node")
    assert refused.value.exit_code == errors.VERIFY_FAILED and "other bytes" in refused.value.message
    assert not (tmp_path / "node" / "images" / "a.jpg").exists()
    with pytest.raises(errors.ConfigError, match="has no inputs"):
        fetch_inputs(shared, digest_bytes(b"nothing"), tmp_path / "node")


def test_slurm_array_task_ids() -> None:
    """scontrol's ArrayTaskId: one task, or the pending remainder a cancellation also ends."""
    assert _indexes("3") == [3]
    assert _indexes("0-3") == [0, 1, 2, 3]
    assert _indexes("1,4-5") == [1, 4, 5]
    assert _indexes("0-7%2") == list(range(8))
    assert _indexes("(null)") == [] and _indexes("") == []
