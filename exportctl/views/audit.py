"""`exportctl audit DIGEST`: what a bundle is, how it was made, who signed it, on one page.

Everything shown is read from the store (bundle, run records, referrers) and checked on the way: the
integrity line is `exportctl verify`'s verdict, so a page never vouches for a damaged or forged bundle.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from exportctl import errors
from exportctl.bundle.read import read_bundle, recipe_of, validation_of
from exportctl.canonical import short
from exportctl.store import referrers as ref
from exportctl.store.layout import Store
from exportctl.trust.provenance import envelope_of, open_envelope
from exportctl.trust.verify import verify_stored
from exportctl.views.summary import bom_line, latest_profiles


def _metrics(validation: dict[str, Any] | None) -> dict[str, Any]:
    if not validation:
        return {}
    out: dict[str, Any] = {"status": validation.get("status"), "violations": validation.get("violations", [])}
    for name, t in sorted((validation.get("tensor") or {}).items()):
        out[f"{name}.max_abs"], out[f"{name}.cosine"] = t.get("max_abs"), t.get("cosine")
    for key in ("matched", "ref_boxes", "mean_iou", "min_iou", "max_score_delta", "class_agreement", "recall",
                "precision"):
        if key in (validation.get("detection") or {}):
            out[f"detection.{key}"] = validation["detection"][key]
    for name, m in sorted(((validation.get("accuracy") or {}).get("metrics") or {}).items()):
        out[f"accuracy.{name}"], out[f"accuracy.{name}_drop"] = m.get("artifact"), m.get("drop")
    return out


def _latency(cell: dict[str, Any] | None) -> dict[str, Any] | None:
    """p50 of the whole pipeline (preprocess + inference + postprocess) per thread setting, or why not measured."""
    if cell is None:
        return None
    if "profile" not in cell:
        return {"skipped": cell["profile_skipped"]}
    return {label: {"threads": t["threads"], "p50_ms": t["total_ms"]["p50"]}
            for label, t in cell["profile"]["threads"].items()}


def _checkpoint(recipe: dict[str, Any], digest: str) -> dict[str, Any]:
    ck = recipe.get("checkpoint") or {}
    if ck.get("demo"):
        return {"digest": digest, "source": f"demo {ck['demo']['arch']} seed {ck['demo']['seed']}"}
    return {"digest": digest, "source": f"file {ck.get('path')}" + (" (pinned in the recipe)" if ck.get("sha256")
                                                                    else "")}


def _provenance(referrer: ref.Referrer | None) -> dict[str, Any] | None:
    if referrer is None:
        return None
    data: dict[str, Any] = {"referrer": referrer.digest, "created": referrer.annotations.get(ref.ANNOTATION_CREATED),
                            "signer": referrer.annotations.get(ref.ANNOTATION_SIGNER)}
    try:
        stmt, _, signatures = open_envelope(envelope_of(referrer)[0])
    except errors.ExportctlError as e:
        return {**data, "error": e.message}
    run = stmt["predicate"]["runDetails"]
    deps = stmt["predicate"]["buildDefinition"]["resolvedDependencies"]
    return {**data, "keyid": signatures[0]["keyid"][:ref.KEYID_CHARS], "builder": run["builder"],
            "started": run.get("metadata", {}).get("startedOn"), "finished": run.get("metadata", {}).get("finishedOn"),
            "subjects": [f"{s['name']} sha256:{s['digest']['sha256']}" for s in stmt["subject"]],
            "dependencies": [f"{d['name']} sha256:{d['digest']['sha256']}" for d in deps]}


def failure(data: dict[str, Any]) -> errors.ExportctlError | None:
    """The first failed check of an audit page, as the error `verify` would raise (its exit code is audit's)."""
    integrity = data["integrity"]
    if integrity["ok"]:
        return None
    error = next((cls for cls in _CHECK_ERRORS if cls.exit_code == integrity["exit_code"]), errors.VerifyFailed)
    return error(f"audit of {data['bundle']}: {integrity['error']}", hint="see `exportctl verify` for the check")


_CHECK_ERRORS: tuple[type[errors.ExportctlError], ...] = (
    errors.VerifyFailed, errors.ProvenanceInvalid, errors.SignatureInvalid, errors.NotFound, errors.StoreError,
    errors.ConfigError)


def audit(store: Store, ref_text: str) -> dict[str, Any]:
    digest = store.resolve(ref_text).digest
    info = read_bundle(store, digest)
    recipe = recipe_of(store, info)
    toolchains = info.toolchains
    runs = store.run_records(digest)
    profiles = latest_profiles(runs)
    cells = []
    for c in info.cells:
        toolchain = c.name.split("/", 1)[0]
        cells.append({"cell": c.name, "status": c.status, "artifact": c.artifact,
                      "size": c.size, "toolchain": {"name": toolchain, **toolchains.get(toolchain, {})},
                      "images": [e for e in (runs[0].get("environments", []) if runs else [])
                                 if e.get("toolchain") == toolchain and e.get("image")],
                      "validation": _metrics(validation_of(store, info, c.name)),
                      "latency": _latency(profiles.get(c.name))})
    referrers = ref.load(store, digest)
    attached = ref.pick(referrers)
    signatures = [{"keyid": r.annotations.get(ref.ANNOTATION_KEYID, "?")[:ref.KEYID_CHARS],
                   "signer": r.annotations.get(ref.ANNOTATION_SIGNER), "identity": r.annotations.get(
                       ref.ANNOTATION_IDENTITY), "signed": r.annotations.get(ref.ANNOTATION_CREATED),
                   "referrer": r.digest} for r in referrers if r.artifact_type == ref.SIGNATURE_TYPE]
    try:
        checked = verify_stored(store, digest)
        integrity: dict[str, Any] = {"ok": True, "blobs_checked": checked["blobs_checked"],
                                     "provenance": (checked["provenance"] or {}).get("status"),
                                     "bom": checked["bom"],
                                     "signatures": {s["keyid"]: s["status"] for s in checked["signatures"]}}
    except errors.ExportctlError as e:
        integrity = {"ok": False, "exit_code": e.exit_code, "error": e.message}
    for s in signatures:
        s["status"] = integrity.get("signatures", {}).get(s["keyid"], "not in the exported layout")
    return {"bundle": digest, "name": info.name, "recipe": recipe, "checkpoint": _checkpoint(recipe, info.checkpoint),
            "exporter_version": info.exporter_version, "cell_code": info.cell_code,
            "isolation_degraded": info.isolation_degraded, "calibration": info.calibration, "cells": cells,
            "runs": [{"started": r.get("started"), "finished": r.get("finished"), "backend": r.get("isolation", {})
                      .get("backend"), "sandbox": r.get("isolation", {}).get("sandbox"),
                      "host": r.get("host", {}).get("platform"), "cached": all(c.get("cached") for c in r.get(
                          "cells", []))} for r in runs],
            "signatures": signatures, "provenance": _provenance(attached.provenance),
            "bom": attached.bom.digest if attached.bom else None, "integrity": integrity}


def render(console: Console, data: dict[str, Any]) -> None:
    p = console.print
    p(f"[bold]{data['name']}[/] {data['bundle']}", highlight=False)
    integrity = data["integrity"]
    p(f"integrity   [green]ok[/], {integrity['blobs_checked']} blobs re-hashed" if integrity["ok"] else
      f"integrity   [bold red]FAILED[/] (exit {integrity['exit_code']}): {integrity['error']}", highlight=False)
    ck = data["checkpoint"]
    p(f"checkpoint  {ck['digest']} ({ck['source']})", highlight=False)
    r = data["recipe"]
    formats = ", ".join(f"{f}({'/'.join(s['precisions'])})" for f, s in r["formats"].items())
    p(f"recipe      imgsz {r['input']['imgsz']}, batch {r['input']['batch']}, {formats}, "
      f"source_date_epoch {r['source_date_epoch']}", highlight=False)
    p(f"exporter    v{data['exporter_version']}, in-cell code {data['cell_code']}", highlight=False)
    if data["isolation_degraded"]:
        p(f"[yellow]isolation degraded:[/] {data['isolation_degraded']}", highlight=False)
    table = Table(title="cells")
    for col in ("cell", "status", "artifact", "toolchain lock", "validation", "latency p50"):
        table.add_column(col)
    for c in data["cells"]:
        v = c["validation"]
        numbers = " ".join(f"{k.split('.')[-1]}={val:.4g}" for k, val in v.items()
                           if isinstance(val, float)) + ("; " + "; ".join(v["violations"]) if v.get("violations")
                                                         else "")
        lock = short(c["toolchain"].get("lock", "?")) + "".join(f" image {e['image']}" for e in c["images"])
        latency = c.get("latency") or {}
        timed = "not measured" if "skipped" in latency else ", ".join(  # the reason: `show`, and --json
            f"{t['p50_ms']:.2f} ms ({t['threads']} thr)" for t in latency.values())
        table.add_row(c["cell"], str(c["status"]), short(c["artifact"] or "?"), lock, numbers, timed or "-")
    console.print(table)
    if not data["signatures"]:
        p("signatures  none (`exportctl sign DIGEST --key KEY.pem`)")
    for s in data["signatures"]:
        who = f"Sigstore identity {s['identity']}" if s.get("identity") else f"key {s['keyid']}"
        p(f"signature   {who}, signed {s['signed']}: {s['status']}", highlight=False)
    prov = data["provenance"]
    if prov is None:
        p("provenance  none (made when the bundle is first signed)")
    elif "error" in prov:
        p(f"provenance  [red]{prov['error']}[/]", highlight=False)
    else:
        p(f"provenance  SLSA v1 by {prov['builder']['id']}, {prov['started']} → {prov['finished']}, "
          f"signed by key {prov['keyid']}: {integrity.get('provenance', 'not checked')}", highlight=False)
        for dep in prov["dependencies"]:
            p(f"            uses {dep}", highlight=False)
    p(bom_line(data["bom"], integrity.get("bom")), highlight=False)
    for run in data["runs"]:
        p(f"run         {run['started']} {run['backend']}/{run['sandbox']} on {run['host']}"
          f"{' (all cached)' if run['cached'] else ''}", highlight=False)
