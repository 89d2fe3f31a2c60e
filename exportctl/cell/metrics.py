"""How far an exported (candidate) model's raw outputs are from the PyTorch reference's, and whether that is too
far, per group of rows that mean one thing; the task's own metrics (e.g. matched boxes) live in its spec
(`exportctl/tasks/`).

Runs inside toolchain environments, so it depends on numpy and the standard library only. Every value
returned is a plain Python bool/int/float/None: results are written as canonical JSON (`allow_nan=False`),
so undefined quantities are None rather than NaN.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import numpy as np

from exportctl.tasks.spec import Gate, TensorGroup

# Edges of the per-element error histogram: 10^k for k = -9 ... 3 in steps of 0.5. Fixed, so histograms of all cells
# and builds line up; computed in decimal (correctly rounded everywhere) rather than with the platform's pow().
ERROR_EDGES = tuple(float(Decimal(10) ** (Decimal(k) / 2)) for k in range(-18, 7))


def error_histogram(diff: np.ndarray) -> dict[str, list[Any]]:
    """How many elements' |candidate - reference| fall in each log-spaced bin; below the first edge (exact zeros
    too) counts in the first bin, above the last in the last."""
    counts, _ = np.histogram(np.clip(diff, ERROR_EDGES[0], ERROR_EDGES[-1]), bins=ERROR_EDGES)
    return {"edges": list(ERROR_EDGES), "counts": [int(c) for c in counts]}


def tensor_metrics(ref: np.ndarray, cand: np.ndarray, histogram: bool = False) -> dict[str, Any]:
    """Elementwise error and cosine similarity of two raw output tensors, computed in float64 (and, with
    `histogram`, how the errors spread: `error_histogram`).

    Differences in shape or non-finite values make the numeric keys meaningless, so they are None and the
    `shape_match` / `finite` flags say why.
    """
    ref64, cand64 = np.asarray(ref, dtype=np.float64), np.asarray(cand, dtype=np.float64)
    out: dict[str, Any] = {
        "shape_match": ref64.shape == cand64.shape,
        "finite": bool(np.isfinite(ref64).all() and np.isfinite(cand64).all()),
        "ref_shape": list(ref64.shape),
        "cand_shape": list(cand64.shape),
        "max_abs": None,
        "mean_abs": None,
        "cosine": None,
    }
    if not (out["shape_match"] and out["finite"]):
        return out
    a, b = ref64.ravel(), cand64.ravel()
    diff = np.abs(a - b)
    out["max_abs"] = float(diff.max()) if diff.size else 0.0
    out["mean_abs"] = float(diff.mean()) if diff.size else 0.0
    if histogram:
        out["histogram"] = error_histogram(diff)
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        out["cosine"] = 1.0 if na == nb else 0.0  # both silent: identical; one silent: unrelated
    else:
        out["cosine"] = float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))
    return out


def group_metrics(ref: np.ndarray, cand: np.ndarray, groups: list[TensorGroup]) -> dict[str, dict[str, Any]]:
    """`tensor_metrics` of each group of rows that mean one thing (box coordinates, class scores, ...)."""
    out = {}
    for g in groups:
        index = [slice(None)] * ref.ndim
        index[g.axis] = slice(g.start, g.stop)
        out[g.name] = tensor_metrics(ref[tuple(index)], cand[tuple(index)])
    return out


def tensor_checks(tensor: dict[str, dict[str, Any]], groups: Mapping[str, list[TensorGroup]],
                  tol: Mapping[str, float | None]) -> tuple[list[str], list[Gate]]:
    """(violations no tolerance can lift, the raw-tensor gates the cell owns).

    Shape mismatches and non-finite outputs always fail, since no tolerance can make them comparable. Every
    group of every output is gated on its own: max_abs by the group's key (box rows in pixels, scores in
    probability), cosine by the group's key (`cosine_min`, unless the task says otherwise), so a change in class
    scores alone cannot hide behind the boxes.
    """
    hard: list[str] = []
    gates: list[Gate] = []
    for name, m in tensor.items():
        if not m["shape_match"]:
            hard.append(f"{name} shape {m['cand_shape']} != reference {m['ref_shape']}")
            continue
        if not m.get("finite", True):
            hard.append(f"{name} has non-finite values (NaN or inf)")
            continue
        for g in groups.get(name, []):
            gm = m["groups"][g.name]
            max_abs = tol.get(g.max_abs_key)
            if max_abs is not None:
                gates.append(Gate(f"{name}.{g.name} max_abs", gm["max_abs"], max_abs, upper=True))
            cosine_min = tol.get(g.cosine_key)
            if cosine_min is not None:
                gates.append(Gate(f"{name}.{g.name} cosine", gm["cosine"], cosine_min, upper=False))
    return hard, gates
