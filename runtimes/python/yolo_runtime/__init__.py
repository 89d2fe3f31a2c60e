"""Minimal runtime for exported YOLO models of every task: numpy + OpenCV, plus the one framework a format needs.

Detections (`decode_detections`, `decode_end2end`, `decode_rtdetr`), classes (`decode_classes`), instance masks
(`decode_segments`), keypoints (`decode_poses`) and rotated boxes (`decode_rotated`). Deliberately independent
of exportctl and Ultralytics, so it runs in any toolchain environment and can be shipped to users alongside the
exported model.
"""

from .backends import Backend, RuntimeUnavailable, open_backend
from .classes import Classification, decode_classes
from .inference import YOLOInference
from .keypoints import Poses, decode_poses, oks, visible
from .masks import Segments, decode_segments, mask_iou, process_masks
from .postprocess import Detections, box_iou, decode_detections, decode_end2end, decode_rtdetr, nms
from .preprocess import center_crop, letterbox, load_image
from .rotated import RotatedDetections, angle_error, corners, decode_rotated, probiou

__all__ = [
    "Backend",
    "Classification",
    "Detections",
    "Poses",
    "RotatedDetections",
    "RuntimeUnavailable",
    "Segments",
    "YOLOInference",
    "angle_error",
    "box_iou",
    "center_crop",
    "corners",
    "decode_classes",
    "decode_detections",
    "decode_end2end",
    "decode_rtdetr",
    "decode_poses",
    "decode_rotated",
    "decode_segments",
    "letterbox",
    "load_image",
    "mask_iou",
    "nms",
    "oks",
    "open_backend",
    "probiou",
    "process_masks",
    "visible",
]
