"""Deterministic *demo checkpoint* built from an Ultralytics architecture yaml.

Runs inside the toolchain environment (stdlib, numpy, cv2, torch, ultralytics only). No weights can be downloaded, so
a recipe may ask for ``checkpoint: {demo: {arch: yolo11n.yaml, seed: 0}}``; this module turns that into a ``.pt`` file
that ``YOLO(path)`` loads and exports like a trained checkpoint.
"""

from __future__ import annotations

import io
import math
import os
import random
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from yolo_runtime import letterbox

from exportctl.cell import demo_rtdetr

CONF = 0.25  # confidence threshold that detection validation uses
CLASSES_PER_IMAGE = 12  # classes "owned" (detected) by each calibration image; the rest never fire
MAX_HITS = 4  # an owned class scores above CONF on 1..MAX_HITS anchors over the whole calibration set
BOX_GAIN = 4.0  # sharpens the random DFL box logits: box sizes then vary with the input instead of ~7.5 bins
MIN_DISTANCE = 0.25  # smallest box distance (strides) a head without DFL gives on the calibration images
MANTISSA_BITS = 12  # calibrated values (computed in float64) are rounded to this: absorbs kernel differences
CLASSIFIER_LOGIT_STD = 4.0  # a demo classifier's logit spread over classes: a clear top-1 per image


def to_tensor(imgs: list[np.ndarray], imgsz: int) -> torch.Tensor:
    """BGR images -> the letterboxed RGB NCHW float32 batch the Ultralytics predictor (and validation) feeds."""
    return torch.from_numpy(np.concatenate([letterbox(im, imgsz) for im in imgs]))


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
    """Round to MANTISSA_BITS of mantissa (exact: frexp/ldexp lose nothing, and the result fits float32)."""
    m, e = np.frexp(t.detach().numpy())
    return torch.from_numpy(np.asarray(np.ldexp(np.round(m * 2**MANTISSA_BITS) / 2**MANTISSA_BITS, e))).to(t.dtype)


def _init_weights(model: torch.nn.Module, seed: int) -> None:
    """Redraw conv/linear weights like PyTorch's default init (U(+-1/sqrt(fan_in))), but from numpy's PCG64.

    torch's vectorised ``uniform_`` gives different float32 values under different CPU capabilities (measured:
    ATEN_CPU_CAPABILITY=default vs avx512 differ by up to 1e-5 relative); integers from PCG64 scaled in float64
    and cast to float32 are the same everywhere.
    """
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and m.weight.requires_grad:  # not the fixed DFL conv
            bound = 1 / math.sqrt(m.weight[0].numel())
            for p in (m.weight, m.bias) if m.bias is not None else (m.weight,):
                p.copy_(torch.from_numpy(rng.uniform(-bound, bound, tuple(p.shape)).astype(np.float32)))
    head = model.model[-1]
    if hasattr(head, "bias_init"):
        head.bias_init()  # Detect's box/class bias priors, as after a normal build


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


def _positive_box_distances(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Shift the box distances of a head without DFL (reg_max 1, YOLO26) so they are positive on `x`.

    There the final box conv's outputs *are* the left/top/right/bottom distances (in strides): random weights
    make some negative, i.e. boxes whose corners are swapped, which no trained model emits and which no IoU can
    match (their area is negative). Each distance channel's bias is raised until its smallest value over `x`
    is MIN_DISTANCE; DFL heads (softmax expectations) are always positive and are left alone.
    """
    head = model.model[-1]
    convs = [seq[-1] for h in (head.cv2, getattr(head, "one2one_cv2", None)) if h is not None for seq in h]
    outs: dict[torch.nn.Module, torch.Tensor] = {}
    hooks = [c.register_forward_hook(lambda m, i, o: outs.__setitem__(m, o)) for c in convs]
    model(x)
    for hk in hooks:
        hk.remove()
    for conv in convs:
        smallest = outs[conv].amin(dim=(0, 2, 3))  # per distance channel
        conv.bias.copy_(_round(conv.bias + (MIN_DISTANCE - smallest).clamp_min(0)))


def _tune_class_head(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Turn a few classes into detectors of distinctive spots of each calibration image.

    A random head cannot do this with biases alone: one image's feature maps vary ~3x more than the other's, so
    whatever bias is chosen it gets all the boxes, and the flatter image's logits are bunched (~0.005 apart) so
    no threshold keeps a margin. Instead class c (owned by image c % n) becomes a matched filter on one level:
    its 1x1 weights point from the mean feature to the most distinctive not-yet-used anchor of its image
    (scaled to unit logit std over all content anchors), and its bias puts CONF in the widest gap among its
    MAX_HITS + 1 best logits over all images: the largest margin against runtime noise flipping a box.
    Its other levels, and classes owned by no image, are switched off (bias -50). Returns the smallest
    |logit - logit(CONF)| of any live class. Applied to ``cv3`` and, on end-to-end heads, ``one2one_cv3``.
    """
    head = model.model[-1]
    heads = [head.cv3] + ([head.one2one_cv3] if getattr(head, "one2one_cv3", None) is not None else [])
    convs = [seq[-1] for h in heads for seq in h]  # final nn.Conv2d(c3, nc, 1) per level
    feats: dict[torch.nn.Module, torch.Tensor] = {}
    hooks = [c.register_forward_hook(lambda m, i, o: feats.__setitem__(m, i[0])) for c in convs]
    model(x)
    for hk in hooks:
        hk.remove()
    content = ((x - 114 / 255).abs().amax(1, keepdim=True) > 1e-3).float()  # not letterbox padding
    n, nc, nl = x.shape[0], convs[0].out_channels, len(head.cv3)
    t, margin = math.log(CONF / (1 - CONF)), math.inf
    for conv in convs:
        conv.bias.fill_(-50.0)
    # (conv, image) -> anchors already taken, with their 5x5 neighbourhoods
    used: dict[tuple[torch.nn.Module, int], torch.Tensor] = {}
    for c in range(min(nc, CLASSES_PER_IMAGE * n)):
        img, level = c % n, (c // n) % nl
        for conv in convs[level::nl]:  # this level of the one-to-many (and one-to-one) head
            f, (gh, gw) = feats[conv].flatten(2), feats[conv].shape[2:]  # (n, C, anchors)
            keep = (torch.nn.functional.adaptive_avg_pool2d(content, (gh, gw)) > 0.5).flatten(1)  # (n, anchors)
            mu = (f * keep[:, None]).sum((0, 2)) / keep.sum()  # mean content feature over all images
            taken = used.setdefault((conv, img), torch.zeros(gh, gw, dtype=torch.bool))
            dist = (f[img] - mu[:, None]).norm(dim=0) * (keep[img] & ~taken.flatten())
            r, q = divmod(int(dist.argmax()), gw)  # the image's most distinctive free content anchor
            taken[max(r - 2, 0) : r + 3, max(q - 2, 0) : q + 3] = True
            u = f[img, :, r * gw + q] - mu  # matched filter, scaled to unit logit std over content anchors
            w = _round(u / torch.einsum("c,nca->na", u, f)[keep].std().clamp_min(1e-12))
            s = torch.einsum("c,nca->na", w, f).flatten()  # logits of class c without bias, all images
            top = s.topk(MAX_HITS + 1).values
            j = int((top[:-1] - top[1:]).argmax())  # widest gap among the top MAX_HITS + 1
            conv.weight[c, :, 0, 0] = w
            conv.bias[c] = _round(t - (top[j] + top[j + 1]) / 2)
            margin = min(margin, (s + conv.bias[c] - t).abs().min().item())
    return margin


def _tune_classifier(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Spread a classification head's random logits so each calibration image has a clear most probable class.

    Random weights give logits a tiny spread, i.e. near-uniform probabilities whose ranking any rounding reorders;
    the final linear layer is scaled (weights and bias) so the logits' standard deviation over classes, averaged over
    the images, is CLASSIFIER_LOGIT_STD. Returns the smallest gap between an image's two largest logits.
    """
    linear = model.model[-1].linear
    seen: dict[str, torch.Tensor] = {}
    hook = linear.register_forward_hook(lambda m, i, o: seen.__setitem__("logits", o))
    model(x)
    hook.remove()
    scale = CLASSIFIER_LOGIT_STD / seen["logits"].std(dim=1).mean().clamp_min(1e-12)
    linear.weight.copy_(_round(linear.weight * scale))
    linear.bias.copy_(_round(linear.bias * scale))
    model(x)
    top2 = seen["logits"].topk(2, dim=1).values if seen["logits"].shape[1] > 1 else None
    return math.inf if top2 is None else float((top2[:, 0] - top2[:, 1]).min())


def _tune_head(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Make the random head's outputs comparable (see the two tunings); returns its margin against runtime noise."""
    head = model.model[-1]
    if not hasattr(head, "cv3"):  # a classification head: probabilities, no boxes
        return _tune_classifier(model, x)
    for seq in list(head.cv2) + list(getattr(head, "one2one_cv2", None) or []):
        seq[-1].weight.mul_(BOX_GAIN)  # final box conv (4 * reg_max DFL logits); a power of 2: exact
    if head.reg_max == 1:
        _positive_box_distances(model, x)
    return _tune_class_head(model, x)


def _first_output(y: Any) -> torch.Tensor:
    """The main output of an eval-mode forward: boxes (+ task rows) or class probabilities."""
    while isinstance(y, (list, tuple)):
        y = y[0]
    return y


def _outputs_summary(model: torch.nn.Module, out: torch.Tensor) -> dict[str, Any]:
    """What the demo model finds on its calibration images: boxes per image, or the most probable class."""
    from ultralytics.utils.nms import non_max_suppression  # falls back to its own NMS without torchvision

    if not hasattr(model.model[-1], "cv3"):
        return {"top1": out.argmax(1).tolist(), "top1conf": [round(v, 4) for v in out.amax(1).tolist()]}
    # nc: the rows after the class scores (mask coefficients, keypoints, angle) are not scores
    boxes = [len(d) for d in non_max_suppression(out.clone(), CONF, 0.45, nc=len(model.names))]
    return {"boxes": boxes, "min_score_cosine": _min_cos(out[:, 4 : 4 + len(model.names)])}


def _min_cos(y: torch.Tensor) -> float:
    """Smallest cosine similarity between two images' outputs."""
    y = y.flatten(1)
    smallest: float = torch.nn.functional.cosine_similarity(y[:, None], y[None], dim=2).min().item()
    return round(smallest, 4)


@torch.no_grad()  # type: ignore[untyped-decorator]  # torch is untyped on the host (not installed)
def make_demo_checkpoint(
    arch: str, seed: int, out_path: Path, calibration_images: list[Path], imgsz: int, task: str
) -> dict[str, Any]:
    """Build ``arch`` with ``seed``, calibrate it on ``calibration_images`` and save a float32 checkpoint.

    The file bytes depend only on (arch, seed, imgsz, image names and bytes, torch/ultralytics/numpy/cv2
    versions): no dates, paths or ids are stored, and the zip is written from a buffer so its root folder is
    always ``archive/``. Meant for a handful of images: 8 views each go through the model in float64 as one
    batch (~90 MB of memory per view at 640).
    """
    from ultralytics import RTDETR, YOLO, __version__
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
        torch.manual_seed(seed)  # the build's own init; _init_weights() then redraws it ISA-independently
        yolo = RTDETR(arch) if "rtdetr" in name else YOLO(arch, verbose=False)  # RTDETR: an RTDETRDetectionModel
        if yolo.task != task:  # what the plan read from the name must be what Ultralytics builds
            raise ValueError(f"the plan expects a {task} model; {arch} is a {yolo.task} model")
        model, head = yolo.model, yolo.model.model[-1]  # e.g. DetectionModel, Detect
        _init_weights(model, seed)
        demo_rtdetr.redraw_attention(model, seed)  # RT-DETR only
        # Calibrate in float64 and round the results to 12 mantissa bits: float32 kernels differ in the last bits
        # between CPUs/ISAs, and rounded float32 results would still flip and cascade; float64 ones do not.
        model.double()
        _recalibrate_bn(model, to_tensor([v for im in imgs for v in _views(im)], imgsz).double())
        x = to_tensor(imgs, imgsz)
        rtdetr = demo_rtdetr.is_rtdetr(model)  # a transformer decoder: its own tuning and summary
        margin = demo_rtdetr.tune(model, x.double(), _round) if rtdetr else _tune_head(model, x.double())
        # (n, 4 + nc + extra, anchors) or (n, nc) as export gives; float64 keeps the summary stable
        out = _first_output(model(x.double())).float()
        model.float()  # exact: every value is float32 or has at most 12 mantissa bits
        # Detect caches these per input shape (and BaseModel._apply, i.e. .float(), re-adds them): use class attrs
        for k in ("anchors", "strides", "shape", "valid_mask", "shapes"):  # (RT-DETR: anchors, valid_mask, shapes)
            head.__dict__.pop(k, None)
        model.yaml["yaml_file"] = name  # yaml_model_load() stores the path exactly as given
        model.args = {**DEFAULT_CFG_DICT, "model": name, "task": yolo.task, "imgsz": imgsz, "seed": seed}
        for p in model.parameters():
            p.requires_grad_(False)
        ckpt = {  # the layout of Ultralytics' strip_optimizer(), minus date/git
            **dict.fromkeys(("date", "best_fitness", "ema", "updates", "optimizer")),
            "version": __version__,
            "license": "AGPL-3.0 License (https://ultralytics.com/license)",
            "docs": "https://docs.ultralytics.com",
            "epoch": -1,
            "model": model,  # float32 (trainers save half): the reference outputs must be exact
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

    return {
        "arch": name,
        "seed": seed,
        "imgsz": imgsz,
        "images": [p.name for p in paths],
        # boxes per image after conf 0.25 (+ NMS 0.45 but for RT-DETR), or the top-1 classes
        **(demo_rtdetr.summary(out) if rtdetr else _outputs_summary(model, out)),
        "min_cosine": _min_cos(out),  # full outputs; xywh sit on the anchor grid and dominate this
        # smallest |logit - logit(CONF)| of any owned class; classification: smallest top-1/top-2 logit gap
        "score_margin": round(margin, 3),
    }
