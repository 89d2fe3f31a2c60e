"""Image loading and letterboxing, matching Ultralytics' inference preprocessing bit for bit.

Validation compares an exported model against its PyTorch reference, so both must see identical input
tensors; any drift here would be misread as export error. Hence the exact Ultralytics rounding rules.
cv2 is imported inside the functions so that importing the package (e.g. just for decoding or NMS) works
where OpenCV is not installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PAD_VALUE = 114


def load_image(path: str | Path) -> np.ndarray:
    """Read an image as BGR uint8 `[H, W, 3]`.

    `cv2.imread` returns None instead of raising, which would otherwise surface later as a confusing
    attribute error far from the bad path.
    """
    import cv2

    img: np.ndarray | None = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"cannot read image: {path}")
    return img


def letterbox(img_bgr: np.ndarray, imgsz: int, stride: int = 32) -> np.ndarray:
    """Resize keeping aspect ratio, pad centred with gray 114, return float32 RGB NCHW `[1, 3, imgsz, imgsz]` in [0, 1].

    Same as Ultralytics `LetterBox(auto=False, center=True)`: exported models have a fixed square input, so
    no minimum-rectangle padding. `stride` is only checked, because an image size that is not a multiple of
    the model stride cannot have been the size the model was exported at.
    """
    import cv2

    if imgsz <= 0 or imgsz % stride:
        raise ValueError(f"imgsz {imgsz} must be a positive multiple of stride {stride}")
    h, w = img_bgr.shape[:2]
    r = min(imgsz / h, imgsz / w)
    new_w, new_h = int(round(w * r)), int(round(h * r))
    if (new_w, new_h) != (w, h):
        img_bgr = cv2.resize(img_bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    dw, dh = (imgsz - new_w) / 2, (imgsz - new_h) / 2
    # The +-0.1 puts the odd pixel on the bottom/right, exactly as Ultralytics does.
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    padded = cv2.copyMakeBorder(
        img_bgr, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE, PAD_VALUE, PAD_VALUE)
    )
    chw = np.ascontiguousarray(padded[..., ::-1].transpose(2, 0, 1))
    return (chw[None].astype(np.float32)) / np.float32(255.0)


def center_crop(img_bgr: np.ndarray, imgsz: int) -> np.ndarray:
    """The largest centred square, resized to `imgsz`: float32 RGB NCHW `[1, 3, imgsz, imgsz]` in [0, 1].

    Classification models see this instead of a letterbox: Ultralytics' `CenterCrop` (its OpenCV classify
    transform, bilinear resize) bit for bit. Its predictor's default torchvision pipeline (shortest side resized
    with PIL, then centre-cropped) takes the same square, resampled slightly differently.
    """
    import cv2

    h, w = img_bgr.shape[:2]
    m = min(h, w)
    top, left = (h - m) // 2, (w - m) // 2
    square = cv2.resize(img_bgr[top : top + m, left : left + m], (imgsz, imgsz), interpolation=cv2.INTER_LINEAR)
    chw = np.ascontiguousarray(square[..., ::-1].transpose(2, 0, 1))
    return (chw[None].astype(np.float32)) / np.float32(255.0)
