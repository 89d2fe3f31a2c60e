"""Deterministic *demo checkpoint* built from an Ultralytics architecture yaml.

Runs inside the toolchain environment (stdlib, numpy, cv2, torch, ultralytics only). No weights can be
downloaded, so a recipe may ask for ``checkpoint: {demo: {arch: yolo11n.yaml, seed: 0}}``; this module turns
that into a ``.pt`` file that ``YOLO(path)`` loads and exports like a trained checkpoint.
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

CONF = 0.25  # confidence threshold that detection validation uses
CLASSES_PER_IMAGE = 6  # classes "owned" by each calibration image; the remaining classes never fire
HITS_PER_CLASS = 3  # an owned class scores above CONF on H..2H anchors over the whole calibration set
PULL = 1.0  # how far an owned class's weights are pulled towards its image's mean feature (x |w|)
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


def _views(img: np.ndarray) -> list[np.ndarray]:
    """Fixed (not random) augmentations of one image: full, h-flip, two centre zooms, four quadrants."""
    h, w = img.shape[:2]
    out = [img, img[:, ::-1]]
    for s in (0.8, 0.6):
        ch, cw = int(h * s), int(w * s)
        out.append(img[(h - ch) // 2 : (h - ch) // 2 + ch, (w - cw) // 2 : (w - cw) // 2 + cw])
    ch, cw = h // 2, w // 2
    out += [img[:ch, :cw], img[:ch, w - cw :], img[h - ch :, :cw], img[h - ch :, w - cw :][:, ::-1]]
    return [np.ascontiguousarray(v) for v in out]


def _round(t: torch.Tensor) -> torch.Tensor:
    """Round float32 values to MANTISSA_BITS of mantissa; frexp/ldexp are exact, so the result is stable."""
    m, e = np.frexp(t.detach().numpy())
    return torch.from_numpy(np.asarray(np.ldexp(np.round(m * 2**MANTISSA_BITS) / 2**MANTISSA_BITS, e), np.float32))


def _recalibrate_bn(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Set every BatchNorm's running stats to the statistics of its input over the calibration batch.

    One train-mode forward of the *whole* set as one batch: batch stats then equal the running stats eval mode
    will use, so every layer is calibrated on exactly what it sees at inference. (Mini-batches that each hold one
    image's views skew the pooled stats towards the highest-contrast image and starve the others of boxes.)
    """
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average; with a single batch simply that batch's statistics
    model.train()
    model(x)
    model.eval()
    for bn in bns:
        bn.momentum = 0.03  # Ultralytics' initialize_weights() value, as a fresh model has
        bn.running_mean.copy_(_round(bn.running_mean))
        bn.running_var.copy_(_round(bn.running_var))


def _tune_class_head(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Make the class logits fire a few times per calibration image; returns the smallest |logit - threshold|.

    A random head fires only on the highest-contrast image whatever one shared bias is chosen (its feature maps
    vary ~3x more), so each image i gets CLASSES_PER_IMAGE classes whose 1x1 conv weights are pulled towards
    image i's mean feature, and each class gets its own bias: the threshold sits in the widest gap between its
    H-th .. 2H-th best logits over all images (H = HITS_PER_CLASS), i.e. with the largest margin against runtime
    noise flipping a box. Classes owned by no image are switched off.
    Applied to ``cv3`` and, on end-to-end heads (yolo26), ``one2one_cv3``.
    """
    head = model.model[-1]
    heads = [head.cv3] + ([head.one2one_cv3] if getattr(head, "one2one_cv3", None) is not None else [])
    convs = [seq[-1] for h in heads for seq in h]  # final nn.Conv2d(c3, nc, 1) per level
    feats = {}
    hooks = [c.register_forward_hook(lambda m, i, o: feats.__setitem__(m, i[0])) for c in convs]
    model(x)
    for hk in hooks:
        hk.remove()
    n, nc = x.shape[0], convs[0].out_channels
    owner = torch.arange(nc) % n  # class c belongs to image c % n ...
    on = torch.arange(nc) < CLASSES_PER_IMAGE * n  # ... if it is among the first CLASSES_PER_IMAGE * n
    t, margin = math.log(CONF / (1 - CONF)), math.inf
    for head_convs in (convs[i : i + len(head.cv3)] for i in range(0, len(convs), len(head.cv3))):
        logits = []
        for conv in head_convs:
            f = feats[conv]
            d = f.mean((2, 3)) - f.mean((0, 2, 3))  # (n, C): each image's mean feature offset
            d = d[owner] / d[owner].norm(dim=1, keepdim=True).clamp_min(1e-12)
            w = conv.weight[:, :, 0, 0]
            w += PULL * w.norm(dim=1, keepdim=True) * d * on[:, None]
            conv.weight.copy_(_round(conv.weight))
            conv.bias.zero_()
            logits.append(conv(f).flatten(2))
        s = torch.cat(logits, 2).transpose(0, 1).flatten(1)  # (nc, n * anchors)
        top = s.topk(2 * HITS_PER_CLASS + 1, dim=1).values  # (nc, 2H + 1), descending
        gap = top[:, HITS_PER_CLASS - 1 : -1] - top[:, HITS_PER_CLASS:]  # cut after the j-th best, j = H .. 2H
        j = gap.argmax(1, keepdim=True) + HITS_PER_CLASS - 1  # widest gap: the largest margin to either side
        mid = (top.gather(1, j) + top.gather(1, j + 1)).squeeze(1) / 2
        bias = _round(t - mid).where(on, torch.tensor(-50.0))
        for conv in head_convs:
            conv.bias.copy_(bias)
        margin = min(margin, (s + bias[:, None] - t).abs()[on].min().item())
    return margin


@torch.no_grad()
def make_demo_checkpoint(arch: str, seed: int, out_path: Path, calibration_images: list[Path], imgsz: int = 640) -> dict:
    """Build ``arch`` with ``seed``, calibrate it on ``calibration_images`` and save a float32 checkpoint.

    The file bytes depend only on (arch, seed, imgsz, image bytes, torch/ultralytics versions): no dates, paths or
    ids are stored, and the zip is written from a buffer so its root folder is always ``archive/``.
    """
    from ultralytics import YOLO, __version__
    from ultralytics.cfg import DEFAULT_CFG_DICT

    paths = sorted((Path(p) for p in calibration_images), key=lambda p: (p.name, str(p)))
    imgs = [cv2.imread(str(p)) for p in paths]
    if not imgs or any(im is None for im in imgs):
        raise ValueError(f"unreadable or no calibration images: {[str(p) for p in paths]}")
    name = Path(arch).name
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)  # one thread: a fixed reduction order in the CPU kernels
    torch.use_deterministic_algorithms(True)
    try:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)  # the weight init draws from torch's CPU generator only
        model = YOLO(arch, verbose=False).model  # DetectionModel: random init, Detect.bias_init(), eval mode
        _recalibrate_bn(model, to_tensor([letterbox(v, imgsz) for im in imgs for v in _views(im)]))
        x = to_tensor([letterbox(im, imgsz) for im in imgs])
        head = model.model[-1]
        for seq in list(head.cv2) + list(getattr(head, "one2one_cv2", None) or []):
            seq[-1].weight.mul_(float(os.environ.get("BOX_GAIN", "1")))
        margin = _tune_class_head(model, x)
        out = model(x)[0]  # (n, 4 + nc, anchors), what export produces

        head = model.model[-1]
        for k in ("anchors", "strides", "shape"):  # cached per input shape by Detect; keep the class defaults
            head.__dict__.pop(k, None)
        model.yaml["yaml_file"] = name  # yaml_model_load() stores the path exactly as given
        model.args = {**DEFAULT_CFG_DICT, "model": name, "task": "detect", "imgsz": imgsz, "seed": seed}
        for p in model.parameters():
            p.requires_grad_(False)
        ckpt = {  # the layout of Ultralytics' strip_optimizer(), minus date/git
            "date": None,
            "version": __version__,
            "license": "AGPL-3.0 License (https://ultralytics.com/license)",
            "docs": "https://docs.ultralytics.com",
            "epoch": -1,
            "best_fitness": None,
            "model": model.float(),  # float32 (trainers save half): the reference outputs must be exact
            "ema": None,
            "updates": None,
            "optimizer": None,
            "train_args": dict(model.args),
            "train_metrics": {},
            "demo": {"arch": name, "seed": seed, "imgsz": imgsz, "images": [p.name for p in paths]},
        }
        buf = io.BytesIO()  # torch.save(path) would name the zip root after the file stem
        torch.save(ckpt, buf)
        out_path = Path(out_path)
        tmp = out_path.with_name(out_path.name + ".partial")
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, out_path)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)

    flat = out.flatten(1)
    cos = torch.nn.functional.cosine_similarity(flat[:, None], flat[None], dim=2)
    return {
        "arch": name,
        "seed": seed,
        "imgsz": imgsz,
        "images": [p.name for p in paths],
        "candidates": (out[:, 4:].amax(1) > CONF).sum(1).tolist(),  # per image, before NMS
        "min_cosine": round(cos.min().item(), 6),  # between images' full outputs (boxes dominate it)
        "score_margin": round(margin, 4),  # smallest |logit - logit(CONF)| of any owned class
    }
