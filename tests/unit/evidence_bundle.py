"""A small, fixed bundle with every kind of evidence the report and the ML-BOM show, composed with the build's own
`compose` (so it is shaped exactly like a built bundle) from hand-written validation.json files and run records.

Four cells cover what a report must render: onnx/fp32 passed with labelled-set accuracy and error histograms,
litert/int8 failed on its accuracy drop, coreml/fp32 not validated (structure checks only), torchscript/fp32
passed with gates only (no accuracy, no histogram: the agreed fields are optional). Two run records: the newer one
has latency profiles for three cells, the older one different numbers that must not be shown.
"""

from __future__ import annotations

from typing import Any

from exportctl.bundle.assemble import CellPart, Parts, compose
from exportctl.canonical import canonical_json, digest_bytes
from exportctl.store import mediatypes as mt
from exportctl.store.descriptor import Descriptor
from exportctl.store.layout import Store

SOURCE_DATE_EPOCH = 315532800
RECIPE = {"name": "evidence", "checkpoint": {"demo": None, "path": "models/detector.pt", "sha256": None},
          "formats": {"coreml": {"options": {}, "precisions": ["fp32"]}, "litert": {"options": {}, "precisions":
                      ["int8"]}, "onnx": {"options": {}, "precisions": ["fp32"]},
                      "torchscript": {"options": {}, "precisions": ["fp32"]}},
          "input": {"batch": 1, "imgsz": 160}, "source_date_epoch": SOURCE_DATE_EPOCH,
          "validation": {"conf": 0.25, "images": [], "iou": 0.45, "match_iou": 0.5, "tolerances": {}}}
LOCKS = {"coreml": [("coremltools", "8.3.0"), ("numpy", "2.2.6")], "litert": [("ai-edge-litert", "2.3.0"),
         ("numpy", "2.2.6")], "onnx": [("numpy", "2.2.6"), ("onnxruntime", "1.22.1")],
         "torchscript": [("numpy", "2.2.6"), ("torch", "2.13.0+cpu"), ("ultralytics", "8.3.240")]}
EDGES = [0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]


def _gate(name: str, value: float | None, limit: float, bound: str, why: str = "") -> dict[str, Any]:
    ok = value is not None and (value <= limit if bound == "max" else value >= limit)
    gate = {"gate": name, "value": value, "limit": limit, "bound": bound, "ran": value is not None, "ok": ok}
    return {**gate, "why": why} if why else gate


def _detect_gates(iou: float, delta: float, recall: float, precision: float, box_max: float | None,
                  cos: float) -> list[dict[str, Any]]:
    """Gates as tasks/detect.py and the tensor checks name them; box max_abs is gated for float cells only."""
    boxes = [_gate("output0.boxes max_abs", box_max, 0.25, "max")] if box_max is not None else []
    return [*boxes, _gate("output0.scores cosine", cos, 0.99, "min"), _gate("box mean_iou", iou, 0.8, "min"),
            _gate("max_score_delta", delta, 0.2, "max"), _gate("class_agreement", 1.0, 0.95, "min"),
            _gate("recall", recall, 0.9, "min"), _gate("precision", precision, 0.9, "min")]


def _accuracy(reference: float, artifact: float, max_drop: float) -> dict[str, Any]:
    def metric(ref: float, art: float) -> dict[str, Any]:
        drop = round(ref - art, 6)
        return {"reference": ref, "artifact": art, "drop": drop, "max_drop": max_drop, "ok": drop <= max_drop}

    return {"dataset": {"digest": digest_bytes(b"labelled scenes"), "images": 16},
            "metrics": {"map50": metric(0.93, round(0.93 - (reference - artifact) / 2, 6)),
                        "map50_95": metric(reference, artifact)}}


VALIDATIONS: dict[str, dict[str, Any]] = {
    "onnx/fp32": {"status": "passed", "runtime": "OnnxBackend", "images": 16, "violations": [],
                  "gates": _detect_gates(0.9999, 0.0004, 1.0, 1.0, 0.0005, 0.9999998),
                  "tensor": {"output0": {"max_abs": 0.0005, "cosine": 0.9999998,
                                         "histogram": {"edges": EDGES, "counts": [9000, 3000, 2000, 800, 0, 0, 0, 0]}}},
                  "accuracy": _accuracy(0.712, 0.7118, 0.002)},
    "litert/int8": {"status": "failed", "runtime": "LiteRTBackend", "images": 16,
                    "violations": ["map50_95 drop 0.081 > 0.05"],
                    "gates": _detect_gates(0.8958, 0.1218, 1.0, 0.96875, None, 0.99975),
                    "tensor": {"output0": {"max_abs": 57.26, "cosine": 0.99975,
                                           "histogram": {"edges": EDGES, "counts": [10, 40, 300, 1900, 5200, 4300,
                                                                                    2100, 950]}}},
                    "accuracy": _accuracy(0.712, 0.631, 0.05)},
    "coreml/fp32": {"status": "not-validated", "runtime": "coremltools (structure only)", "images": 0,
                    "violations": [], "gates": [], "tensor": {},
                    "reason": "numeric validation requires macOS: coremltools predicts only there",
                    "structure": [{"check": "input", "detail": "image (160, 160)", "ok": True},
                                  {"check": "outputs", "detail": "[[1, 7, 525]]", "ok": True}]},
    "torchscript/fp32": {"status": "passed", "runtime": "TorchScriptBackend", "images": 16, "violations": [],
                         "gates": _detect_gates(1.0, 6e-07, 1.0, 1.0, 0.0004, 1.0),
                         "tensor": {"output0": {"max_abs": 0.0004, "cosine": 1.0}}},
}
ARTIFACTS = {"coreml/fp32": "model.mlpackage", "litert/int8": "model.tflite", "onnx/fp32": "model.onnx",
             "torchscript/fp32": "model.torchscript"}


def _timing(p50: float) -> dict[str, float]:
    return {"p50": p50, "p90": round(p50 * 1.1, 3), "p99": round(p50 * 1.3, 3)}


def _threads(threads: int, inference: float) -> dict[str, Any]:
    total = round(inference + 1.5, 3)
    return {"threads": threads, "preprocess_ms": _timing(1.0), "inference_ms": _timing(inference),
            "postprocess_ms": _timing(0.5), "total_ms": _timing(total), "throughput_ips": round(1000 / total, 2)}


def _profile(ms: float) -> dict[str, Any]:
    return {"warmup": 3, "runs": 50, "threads": {"1": _threads(1, ms), "all": _threads(16, round(ms / 3, 3))}}


def _run(started: str, scale: float) -> dict[str, Any]:
    profiled = {"onnx/fp32": 4.2, "litert/int8": 2.9, "torchscript/fp32": 6.8}
    cells = [{"cell": name, "cached": False, "seconds": 10.0, "status": VALIDATIONS[name]["status"],
              **({"profile": _profile(round(profiled[name] * scale, 3))} if name in profiled else {})}
             for name in sorted(VALIDATIONS)]
    return {"exportctl_version": "0.1.0", "started": started, "finished": started.replace(":00:00", ":05:00"),
            "isolation": {"backend": "local", "sandbox": "bwrap"}, "cells": cells,
            "host": {"platform": "Linux-6.1-x86_64-with-glibc2.36", "machine": "x86_64", "python": "3.11.2",
                     "cpu": "Test CPU @ 2.0GHz", "cores": 16}}


def _put(store: Store, data: bytes, media_type: str, title: str, role: str, cell: str | None = None) -> dict[str, Any]:
    annotations = {mt.ANNOTATION_TITLE: title, mt.ANNOTATION_FILEPATH: title, mt.ANNOTATION_ROLE: role}
    if cell:
        annotations[mt.ANNOTATION_CELL] = cell
    desc = store.put_bytes(data, media_type)
    return Descriptor(media_type, desc.digest, desc.size, annotations).to_json()


def evidence_bundle(store: Store, validations: dict[str, dict[str, Any]] | None = None) -> str:
    """Store the evidence bundle and its two run records; returns its digest (the same in every store).
    `validations` replaces the cells' validation.json files (same cells)."""
    parts = Parts("evidence", digest_bytes(b"detector checkpoint"), "1", digest_bytes(b"cell code"), "linux-x86_64",
                  _put(store, canonical_json(RECIPE), mt.RECIPE, "recipe.json", "recipe"))
    for toolchain, pins in LOCKS.items():
        text = "".join(f"{name}=={version} \\\n    --hash=sha256:{digest_bytes(f'{name}{version}'.encode())[7:]}\n"
                       for name, version in pins)
        title = f"lockfiles/{toolchain}-linux-x86_64.txt"
        parts.locks[title] = _put(store, text.encode(), mt.LOCKFILE, title, "lockfile")
        parts.toolchains[toolchain] = {"lock": parts.locks[title]["digest"], "platform": "linux-x86_64"}
    for name, validation in (validations or VALIDATIONS).items():
        slug = name.replace("/", "-")
        weights = f"weights of {name}".encode() * 2000 * len(name)  # sizes differ by cell: the size plot shows it
        artifact = _put(store, weights, mt.WEIGHT_RAW, f"{slug}/{ARTIFACTS[name]}", "artifact", name)
        report = _put(store, canonical_json(validation), mt.VALIDATION, f"{slug}/validation.json", "validation", name)
        entry = {"cell": name, "task": "detect", "status": validation["status"], "artifact": artifact["digest"],
                 "size": artifact["size"], "key": digest_bytes(name.encode()), "platform": "linux-x86_64"}
        parts.cells[name] = CellPart(entry, (artifact, report))
    digest = store.add_manifest(compose(store, parts), {mt.ANNOTATION_RECIPE: "evidence"}).digest
    store.add_run_record(digest, {"bundle": digest, **_run("2026-03-01T10:00:00+00:00", 2.0)})
    store.add_run_record(digest, {"bundle": digest, **_run("2026-03-02T10:00:00+00:00", 1.0)})
    return digest
