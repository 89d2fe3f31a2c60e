"""yolo_runtime's decoders of every task beyond detection, and the task specs' metrics and gates, with hand-computed
expectations.

Runs on a bare host (numpy + pytest). Tests that need OpenCV, torch or Ultralytics skip themselves there;
tests/integration/test_runtime_in_toolchain.py runs this file again inside the ONNX toolchain environment, where
they all run (and must: it fails on any skip), against Ultralytics' own implementations.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "runtimes" / "python"))
sys.path.insert(0, str(REPO))

from yolo_runtime import Classification, center_crop, decode_classes  # noqa: E402

from exportctl import tasks  # noqa: E402
from exportctl.cell.metrics import group_metrics, tensor_checks, tensor_metrics  # noqa: E402
from exportctl.cell.validate import verdict  # noqa: E402

CLASSIFY = tasks.registry()["classify"]


def raw_gates(task: tasks.TaskSpec, ref: dict[str, np.ndarray], cand: dict[str, np.ndarray], precision: str,
              model: dict) -> list:
    """The raw-tensor gates validate.py computes, per output and group of rows."""
    tensor, groups = {}, {}
    for name, r in ref.items():
        tensor[name] = tensor_metrics(r, cand[name])
        groups[name] = task.tensor_groups(name, list(r.shape), model)
        tensor[name]["groups"] = group_metrics(r, cand[name], groups[name])
    return tensor_checks(tensor, groups, task.tolerance(precision))[1]


# --- classify ----------------------------------------------------------------------------------------------------


def test_classes_rank_by_probability_ties_by_index():
    (c,) = decode_classes(np.array([[0.1, 0.3, 0.3, 0.05, 0.05, 0.1, 0.1]], dtype=np.float32))
    assert c.ranked.tolist() == [1, 2, 0, 5, 6, 3, 4]
    assert c.top1 == 1 and c.top5 == [1, 2, 0, 5, 6] and c.top1conf == pytest.approx(0.3)
    assert len(decode_classes(np.zeros((3, 4), np.float32))) == 3
    with pytest.raises(ValueError, match=r"\[B, nc\]"):
        decode_classes(np.zeros((1, 4, 2), np.float32))


def test_classification_metrics_count_flips_overlap_and_probability_change():
    ref = [Classification(np.array(p, np.float32)) for p in
           ([0.5, 0.2, 0.1, 0.1, 0.05, 0.05], [0.1, 0.6, 0.1, 0.1, 0.05, 0.05])]
    same = CLASSIFY.metrics({"output0": np.stack([r.probs for r in ref])},
                            {"output0": np.stack([r.probs for r in ref])}, CLASSIFY.thresholds, {})
    assert same["top1_agreement"] == same["top5_overlap"] == 1.0 and same["max_prob_delta"] == 0.0
    assert same["min_ref_margin"] == pytest.approx(0.3)
    # image 0: top-1 flips to class 1 and class 5 enters the top 5 in place of class 4
    cand = np.array([[0.2, 0.5, 0.1, 0.1, 0.02, 0.08], [0.1, 0.6, 0.1, 0.1, 0.05, 0.05]], np.float32)
    m = CLASSIFY.metrics({"output0": np.stack([r.probs for r in ref])}, {"output0": cand}, CLASSIFY.thresholds, {})
    assert m["top1_agreement"] == 0.5 and m["max_prob_delta"] == pytest.approx(0.3)
    assert m["top5_overlap"] == pytest.approx((4 / 5 + 1) / 2) and m["min_top5_overlap"] == pytest.approx(0.8)
    gates = CLASSIFY.gates(m, CLASSIFY.tolerance("fp32"))
    failed = {g.name for g in gates if not g.ok}
    assert failed == {"top1_agreement", "top5_overlap", "max_prob_delta"}
    violations, status, _ = verdict([], gates)
    assert status.value == "failed" and any(v.startswith("top1_agreement 0.5 < 1") for v in violations)


def test_classify_gates_cannot_run_without_comparable_outputs():
    gates = CLASSIFY.gates(None, CLASSIFY.tolerance("int8"))
    assert gates and not any(g.ran for g in gates) and all("shapes differ" in g.why for g in gates)


def test_a_probability_only_perturbation_fails_the_classify_raw_gates():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 6))
    probs = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    swapped = probs[:, ::-1].copy()  # same values, other classes
    assert all(g.ok for g in raw_gates(CLASSIFY, {"output0": probs}, {"output0": probs}, "fp32", {}))
    failed = [g for g in raw_gates(CLASSIFY, {"output0": probs}, {"output0": swapped}, "fp32", {}) if not g.ok]
    assert {g.name for g in failed} == {"output0.scores max_abs", "output0.scores cosine"}


@pytest.mark.parametrize("shape", [(128, 128), (90, 200), (301, 77), (64, 64)])
def test_center_crop_matches_ultralytics_bit_for_bit(shape):  # needs cv2 and ultralytics
    pytest.importorskip("cv2")
    augment = pytest.importorskip("ultralytics.data.augment")
    img = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    ours = center_crop(img, 96)
    theirs = augment.CenterCrop(96)(img)  # BGR HWC uint8
    expected = np.ascontiguousarray(theirs[..., ::-1].transpose(2, 0, 1))[None].astype(np.float32) / np.float32(255)
    assert ours.shape == (1, 3, 96, 96) and ours.dtype == np.float32
    assert np.array_equal(ours, expected)
