"""How far an exported (candidate) model's raw outputs are from the PyTorch reference's, and whether that is too
far; the task's own metrics (e.g. matched boxes) live in its spec (`exportctl/tasks/`).

Runs inside toolchain environments, so it depends on numpy and the standard library only. Every value
returned is a plain Python bool/int/float/None: results are written as canonical JSON (`allow_nan=False`),
so undefined quantities are None rather than NaN.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def tensor_metrics(ref: np.ndarray, cand: np.ndarray) -> dict[str, Any]:
    """Elementwise error and cosine similarity of two raw output tensors, computed in float64.

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
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        out["cosine"] = 1.0 if na == nb else 0.0  # both silent: identical; one silent: unrelated
    else:
        out["cosine"] = float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))
    return out


def tensor_violations(tensor: dict[str, dict[str, Any]], tol: Mapping[str, float | None]) -> list[str]:
    """Human-readable raw-tensor tolerance violations; the task's gates follow them.

    A tolerance that is missing or None is not gated. Shape mismatches and non-finite outputs always fail,
    since no tolerance can make them comparable.
    """
    violations: list[str] = []
    for name, m in tensor.items():
        if not m["shape_match"]:
            violations.append(f"{name} shape {m['cand_shape']} != reference {m['ref_shape']}")
            continue
        if not m.get("finite", True):
            violations.append(f"{name} has non-finite values (NaN or inf)")
            continue
        max_abs, cosine_min = tol.get("max_abs"), tol.get("cosine_min")
        if max_abs is not None and m["max_abs"] > max_abs:
            violations.append(f"{name} max_abs {m['max_abs']:.4g} > {max_abs:g}")
        if cosine_min is not None and m["cosine"] < cosine_min:
            violations.append(f"{name} cosine {m['cosine']:.6g} < {cosine_min:g}")
    return violations
