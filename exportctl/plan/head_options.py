"""Format options a model's head cannot be built with, refused at plan time with the precise reason.

Ultralytics either fails such an export deep inside the cell (an assertion, i.e. a traceback in the cell's log)
or, worse, silently builds something else than the recipe asked for; both are configuration errors, so the plan
names the option before any model is built. The head is read from the checkpoint (or a demo yaml's name).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# RT-DETR's deformable attention samples with GridSample, which ONNX has from opset 16 (Ultralytics asserts it).
_GRID_SAMPLE = ("RT-DETR's deformable attention exports as GridSample, which ONNX defines from opset 16 on "
                "(Ultralytics refuses a lower opset)")


@dataclass(frozen=True)
class OptionRefusal:
    format: str
    option: str
    refuses: Callable[[Any], bool]  # the option's value -> whether the head cannot be built with it
    reason: str
    hint: str


REFUSALS: dict[str, tuple[OptionRefusal, ...]] = {
    "RTDETRDecoder": (
        OptionRefusal("coreml", "nms", bool,
                      "RT-DETR's decoder has no boxes-and-scores head for Apple's NMS stage (its queries are "
                      "one-to-one: nothing to suppress); Ultralytics would silently drop nms and build the model "
                      "without it", "remove the option: RT-DETR's output needs no NMS"),
        OptionRefusal("onnx", "opset", lambda v: int(v) < 16, _GRID_SAMPLE, "set opset to 16 or more (default 17)"),
        OptionRefusal("tensorrt", "opset", lambda v: int(v) < 16, _GRID_SAMPLE,
                      "set opset to 16 or more (default 17)"),
    ),
}


def refused_option(head: str, fmt: str, options: Mapping[str, Any]) -> OptionRefusal | None:
    """The first of `fmt`'s resolved `options` that a model with head class `head` cannot be built with."""
    return next((r for r in REFUSALS.get(head, ()) if r.format == fmt and r.option in options
                 and r.refuses(options[r.option])), None)
