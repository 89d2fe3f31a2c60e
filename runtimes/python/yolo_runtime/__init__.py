"""Minimal runtime for exported YOLO detect models: numpy + OpenCV, plus the one framework a format needs.

Deliberately independent of exportctl and Ultralytics, so it runs in any toolchain environment and can be
shipped to users alongside the exported model.
"""

from .backends import Backend, RuntimeUnavailable, open_backend
from .inference import YOLOInference
from .postprocess import Detections, box_iou, decode_detections, decode_end2end, nms
from .preprocess import letterbox, load_image

__all__ = [
    "Backend",
    "Detections",
    "RuntimeUnavailable",
    "YOLOInference",
    "box_iou",
    "decode_detections",
    "decode_end2end",
    "letterbox",
    "load_image",
    "nms",
    "open_backend",
]
