"""Deterministic *demo checkpoint* built from an Ultralytics architecture yaml.

Runs inside the toolchain environment (stdlib, numpy, cv2, torch, ultralytics only). No weights can be
downloaded, so a recipe may ask for ``checkpoint: {demo: {arch: yolo11n.yaml, seed: 0}}``; this module turns
that into a ``.pt`` file that ``YOLO(path)`` loads and exports like a trained checkpoint.

A purely random init gives outputs that barely depend on the input (BatchNorm running stats are 0/1, so
activations blow up or vanish), so the BN statistics are re-estimated on real images, and the class biases
are shifted so that a handful of boxes clear the usual 0.25 confidence threshold.
"""

from __future__ import annotations

import io
import math
import os
import random
from pathlib import Path

import cv2
import numpy as np
import torch

CONF = 0.25  # the confidence threshold detection validation uses
TARGET_CANDIDATES = 48  # anchors per image (median over calibration images) scoring above CONF, before NMS
BATCH = 8
MANTISSA_BITS = 12  # calibrated values are rounded to this precision (absorbs last-ulp kernel differences)


def letterbox(img: np.ndarray, imgsz: int) -> np.ndarray:
    """Ultralytics ``LetterBox(auto=False, center=True)``: keep aspect ratio, pad with 114 to imgsz x imgsz."""
    h, w = img.shape[:2]
    r = min(imgsz / h, imgsz / w)
    nw, nh = max(round(w * r), 1), max(round(h * r), 1)
    if (nw, nh) != (w, h):
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    dw, dh = (imgsz - nw) / 2, (imgsz - nh) / 2
    top, bottom, left, right = round(dh - 0.1), round(dh + 0.1), round(dw - 0.1), round(dw + 0.1)
    return cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))


def to_tensor(imgs: list[np.ndarray]) -> torch.Tensor:
    """BGR HWC uint8 images -> RGB NCHW float32 in [0, 1], as the Ultralytics predictor feeds the model."""
    x = np.stack([im[..., ::-1].transpose(2, 0, 1) for im in imgs])
    return torch.from_numpy(np.ascontiguousarray(x)).float() / 255.0


def _augmented(img: np.ndarray, imgsz: int) -> list[np.ndarray]:
    """Fixed (not random) views of one image: full, h-flip, centre zooms, corner crops -> 8 samples."""
    h, w = img.shape[:2]
    views = [img, img[:, ::-1]]
    for s in (0.8, 0.6):  # centre zooms
        ch, cw = int(h * s), int(w * s)
        views.append(img[(h - ch) // 2 : (h - ch) // 2 + ch, (w - cw) // 2 : (w - cw) // 2 + cw])
    ch, cw = h // 2, w // 2  # quadrants
    views += [img[:ch, :cw], img[:ch, w - cw :], img[h - ch :, :cw], img[h - ch :, w - cw :][:, ::-1]]
    return [letterbox(np.ascontiguousarray(v), imgsz) for v in views]


def _round(t: torch.Tensor) -> torch.Tensor:
    """Round float32 values to MANTISSA_BITS of mantissa (exact in float32, so the bytes stay stable)."""
    m, e = np.frexp(t.numpy())  # exact decomposition; ldexp of a short mantissa is exact too
    return torch.from_numpy(np.asarray(np.ldexp(np.round(m * 2**MANTISSA_BITS) / 2**MANTISSA_BITS, e), np.float32))


def _class_convs(head) -> list[torch.nn.Conv2d]:
    """Final 1x1 class convs of a Detect head: ``cv3[i][-1]``, plus ``one2one_cv3`` on end-to-end heads (yolo26)."""
    heads = [head.cv3] + ([head.one2one_cv3] if getattr(head, "one2one_cv3", None) is not None else [])
    return [seq[-1] for h in heads for seq in h]


@torch.no_grad()
def make_demo_checkpoint(arch: str, seed: int, out_path: Path, calibration_images: list[Path], imgsz: int = 640) -> dict:
    from ultralytics import YOLO, __version__
    from ultralytics.cfg import DEFAULT_CFG_DICT

    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)  # fixed reduction order in CPU kernels
    torch.use_deterministic_algorithms(True)
    try:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)  # the weight init comes from torch's CPU generator
        model = YOLO(arch, verbose=False).model  # -> DetectionModel, random init + Detect.bias_init()
        name = Path(arch).name

        # 1. BatchNorm re-estimation: train-mode forwards update running stats; momentum=None = plain average.
        imgs = [cv2.imread(str(p)) for p in sorted(calibration_images, key=lambda p: Path(p).name)]
        if any(im is None for im in imgs) or not imgs:
            raise ValueError(f"unreadable calibration images: {calibration_images}")
        samples = [v for im in imgs for v in _augmented(im, imgsz)]
        bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None
        model.train()
        model(to_tensor(samples))
        for bn in bns:
            bn.momentum = 0.03  # Ultralytics' initialize_weights() value
            bn.running_mean.copy_(_round(bn.running_mean))
            bn.running_var.copy_(_round(bn.running_var))
        model.eval()

        # 2. Class biases: drop the per-level prior from bias_init() and use one shared bias per level chosen so
        #    that, in the median calibration image, TARGET_CANDIDATES anchors score above CONF.
        head = model.model[-1]
        convs = _class_convs(head)
        for c in convs:
            c.bias.zero_()
        _, preds = model(to_tensor([letterbox(im, imgsz) for im in imgs]))
        preds = preds.get("one2many", preds)
        top = preds["scores"].amax(1).topk(TARGET_CANDIDATES, dim=1).values[:, -1]  # k-th best logit per image
        shift = round(math.log(CONF / (1 - CONF)) - top.median().item() + 1e-3, 3)  # short decimal: stable bytes
        for c in convs:
            c.bias.fill_(shift)

        # 3. Checkpoint: the dict shape Ultralytics' strip_optimizer() writes, minus volatile fields.
        out = model(to_tensor([letterbox(im, imgsz) for im in imgs]))[0]
        for k in ("anchors", "strides", "shape"):  # Detect caches these per input shape; keep class defaults
            head.__dict__.pop(k, None)
        model.yaml["yaml_file"] = name  # yaml_model_load() stores the path as given
        model.args = {**DEFAULT_CFG_DICT, "model": name, "task": "detect", "imgsz": imgsz, "seed": seed}
        for p in model.parameters():
            p.requires_grad_(False)
        ckpt = {
            "date": None,
            "version": __version__,
            "license": "AGPL-3.0 License (https://ultralytics.com/license)",
            "docs": "https://docs.ultralytics.com",
            "epoch": -1,
            "best_fitness": None,
            "model": model.float(),  # float32 on purpose: the reference outputs must be exact
            "ema": None,
            "updates": None,
            "optimizer": None,
            "train_args": dict(model.args),
            "train_metrics": None,
            "demo": {"arch": name, "seed": seed, "imgsz": imgsz},
        }
        # torch.save to a *path* names the zip root folder after the file stem; a buffer always uses "archive/".
        buf = io.BytesIO()
        torch.save(ckpt, buf)
        out_path = Path(out_path)
        tmp = out_path.with_name(out_path.name + ".tmp")
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, out_path)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)

    flat = out.flatten(1)
    return {
        "arch": name,
        "seed": seed,
        "imgsz": imgsz,
        "class_bias": round(shift, 4),
        "cosine": round(torch.nn.functional.cosine_similarity(flat[:1], flat[-1:]).item(), 6),
        "images": [Path(p).name for p in sorted(calibration_images, key=lambda p: Path(p).name)],
    }
