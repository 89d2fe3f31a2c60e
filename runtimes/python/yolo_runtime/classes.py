"""Decoding of a classify head's output: class probabilities per image, ranked.

Pure numpy. Ties rank by class index (a stable sort), so the same probabilities always give the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Classification:
    """One image's class probabilities (the exported head's softmax), most probable classes first."""

    probs: np.ndarray  # float32 [nc]

    @property
    def ranked(self) -> np.ndarray:
        """Every class index, most probable first (int64 [nc])."""
        return np.argsort(-self.probs.astype(np.float64), kind="stable")

    @property
    def top1(self) -> int:
        return int(self.ranked[0])

    @property
    def top5(self) -> list[int]:
        return [int(c) for c in self.ranked[:5]]

    @property
    def top1conf(self) -> float:
        return float(self.probs[self.top1])


def decode_classes(output: np.ndarray) -> list[Classification]:
    """Turn a `[B, nc]` classify-head output (softmax probabilities, as every export emits) into one
    `Classification` per image."""
    out = np.asarray(output, dtype=np.float32)
    if out.ndim != 2 or out.shape[1] < 1:
        raise ValueError(f"expected classify output [B, nc], got shape {out.shape}")
    return [Classification(row.copy()) for row in out]
