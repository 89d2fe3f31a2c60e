"""Demo-checkpoint calibration of an RT-DETR model (head RTDETRDecoder); `demo_checkpoint` runs the rest.

A random RT-DETR scores every (query, class) pair near its prior (sigmoid(bias) ~ 0.01), so its reference would
hold no detection and validation nothing to match. As for YOLO heads (`demo_checkpoint._tune_class_head`), a few
classes become matched filters of distinctive queries of each calibration image, on the decoder's last score head
(the only one inference uses): its input are the final query embeddings, so the boxes, the query selection and the
decoder are unchanged and only which (query, class) pairs score above CONF is set.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

CONF = 0.25  # the confidence threshold detection validation uses (demo_checkpoint.CONF)
CLASSES_PER_IMAGE = 12  # classes owned (detected) by each calibration image; the rest never fire
MAX_HITS = 4  # an owned class scores above CONF on 1..MAX_HITS queries over the whole calibration set
OFF = -50.0  # logit of a class that never fires


def is_rtdetr(model: torch.nn.Module) -> bool:
    return type(model.model[-1]).__name__ == "RTDETRDecoder"


def redraw_attention(model: torch.nn.Module, seed: int) -> None:
    """Redraw nn.MultiheadAttention's packed input projection (a Parameter, not a Linear, so `_init_weights` skips
    it) from numpy's PCG64 like the rest, with torch's own xavier bound and zero bias, so its values do not depend
    on the CPU's vector unit either; the decoder's constant priors are set as `RTDETRDecoder._reset_parameters`
    sets them (score biases at probability 0.01, last box layers zero: boxes start at their anchors)."""
    if not is_rtdetr(model):
        return
    rng = np.random.default_rng(seed + 1)  # not the stream `_init_weights` drew from
    for m in model.modules():
        if isinstance(m, torch.nn.MultiheadAttention) and m.in_proj_weight is not None:
            fan_out, fan_in = m.in_proj_weight.shape
            bound = math.sqrt(6 / (fan_in + fan_out))
            m.in_proj_weight.copy_(torch.from_numpy(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)))
            if m.in_proj_bias is not None:
                m.in_proj_bias.zero_()
    head = model.model[-1]
    prior = -math.log((1 - 0.01) / 0.01) / 80 * head.nc  # Ultralytics' bias_cls
    for linear in [head.enc_score_head, *head.dec_score_head]:
        linear.bias.fill_(prior)
    for mlp in [head.enc_bbox_head, *head.dec_bbox_head]:
        mlp.layers[-1].weight.zero_()
        mlp.layers[-1].bias.zero_()


def tune(model: torch.nn.Module, x: torch.Tensor, rounded: Any) -> float:
    """Make classes detectors of distinctive queries of each image; returns the smallest |logit - logit(CONF)| of
    any live class over the calibration images (the margin against runtime noise flipping a box).

    Class c, owned by image c % n, gets 1x1 weights pointing from the mean query embedding (over all images) to its
    image's most distinctive query not owned yet, scaled to unit logit std over all queries, and a bias that puts
    CONF in the widest gap among its MAX_HITS + 1 best logits over all images. `rounded`: demo_checkpoint's
    rounding to a few mantissa bits (runtime-independent values).
    """
    linear = model.model[-1].dec_score_head[-1]
    seen: dict[str, torch.Tensor] = {}
    hook = linear.register_forward_hook(lambda m, i, o: seen.__setitem__("f", i[0]))
    model(x)
    hook.remove()
    f = seen["f"].reshape(x.shape[0], -1, linear.in_features)  # (n, queries, hidden)
    n, nc = f.shape[0], linear.out_features
    mu = f.mean((0, 1))
    t, margin = math.log(CONF / (1 - CONF)), math.inf
    linear.bias.fill_(OFF)
    linear.weight.zero_()
    used = torch.zeros(f.shape[:2], dtype=torch.bool)
    for c in range(min(nc, CLASSES_PER_IMAGE * n)):
        img = c % n
        dist = (f[img] - mu).norm(dim=1).masked_fill(used[img], -1.0)
        q = int(dist.argmax())
        used[img, q] = True
        u = f[img, q] - mu
        w = rounded(u / (f @ u).std().clamp_min(1e-12))
        s = (f @ w).flatten()  # class c's logits without bias, every query of every image
        top = s.topk(MAX_HITS + 1).values
        j = int((top[:-1] - top[1:]).argmax())
        linear.weight[c] = w
        linear.bias[c] = rounded(torch.tensor(t - float(top[j] + top[j + 1]) / 2, dtype=s.dtype))
        margin = min(margin, float((s + linear.bias[c] - t).abs().min()))
    return margin


def summary(out: torch.Tensor) -> dict[str, Any]:
    """What the demo model finds on its calibration images: (query, class) rows above CONF per image (RT-DETR's
    output `[n, K, 6]`, rows cx, cy, w, h, score, class)."""
    return {"boxes": [int(v) for v in (out[..., 4] > CONF).sum(1)]}
