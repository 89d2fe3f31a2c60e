"""`exportctl diff A B`: what changed between two bundles, field by field and package by package.

Compared: the canonical recipe (every field), the checkpoint and exporter code, each toolchain's lock (the
pins inside it, one package at a time), the images the builds ran in (from their first run records), each
cell's artifact, metadata and validation digests, and the validation metrics.
"""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console

from exportctl.bundle.read import CELL_ROLES, BundleInfo, read_bundle, read_text_layer, recipe_of, validation_of
from exportctl.canonical import short
from exportctl.store import mediatypes as mt
from exportctl.store.layout import Store

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")
_HASH = re.compile(r"--hash=(sha256:[0-9a-f]{64})")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"a.b.c": leaf} for nested dicts; lists stay whole (a reordered list is a changed value)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(flatten(sub, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _changes(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"field": k, "a": a.get(k), "b": b.get(k)} for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def parse_pins(text: str) -> dict[str, dict[str, Any]]:
    """package -> {version, hashes} of a uv/pip lockfile (`name==version \\` then `--hash=` lines)."""
    pins: dict[str, dict[str, Any]] = {}
    current: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if match := _PIN.match(stripped):
            current = match.group(1).lower().replace("_", "-")
            pins[current] = {"version": match.group(3), "hashes": []}
        elif current is not None and (found := _HASH.search(stripped)):
            pins[current]["hashes"].append(found.group(1))
        elif not stripped.startswith("--hash") and not stripped.startswith("#") and stripped:
            current = None
    return pins


def _locks(store: Store, a: BundleInfo, b: BundleInfo) -> list[dict[str, Any]]:
    ta = {la.title: la for la in a.by_role(mt.Role.LOCKFILE)}
    tb = {la.title: la for la in b.by_role(mt.Role.LOCKFILE)}
    out = []
    for title in sorted(set(ta) | set(tb)):
        la, lb = ta.get(title), tb.get(title)
        if la is not None and lb is not None and la.digest == lb.digest:
            continue
        pa, pb = (parse_pins(read_text_layer(store, layer) or "") for layer in (la, lb))
        packages = []
        for name in sorted(set(pa) | set(pb)):
            va, vb = pa.get(name), pb.get(name)
            if va == vb:
                continue
            change = ("added" if va is None else "removed" if vb is None
                      else "version" if va["version"] != vb["version"] else "hashes")
            packages.append({"package": name, "change": change, "a": (va or {}).get("version"),
                             "b": (vb or {}).get("version")})
        out.append({"lockfile": title, "a": la.digest if la else None, "b": lb.digest if lb else None,
                    "packages": packages})
    return out


def _images(store: Store, digest: str) -> dict[str, Any]:
    runs = store.run_records(digest)
    found = {}
    for env in runs[0].get("environments", []) if runs else []:
        for arg, image in (env.get("base") or {}).items():
            found[f"{env.get('toolchain')}.base.{arg}"] = image
        if env.get("image_id"):
            found[f"{env.get('toolchain')}.image"] = env["image_id"]
    return found


def _cells(store: Store, a: BundleInfo, b: BundleInfo) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    names = list(dict.fromkeys([c.name for c in a.cells] + [c.name for c in b.cells]))
    layers, metrics = [], []
    for cell in names:
        for role in CELL_ROLES:
            la, lb = a.cell_layer(cell, role), b.cell_layer(cell, role)
            either = la or lb
            if (la and la.digest) != (lb and lb.digest):
                layers.append({"cell": cell, "role": str(role), "title": either.title if either else None,
                               "a": la.digest if la else None, "b": lb.digest if lb else None})
        va = flatten(validation_of(store, a, cell) or {})
        vb = flatten(validation_of(store, b, cell) or {})
        metrics += [{"cell": cell, **c} for c in _changes(va, vb)]
    return layers, metrics


def _general(info: BundleInfo) -> dict[str, Any]:
    return {"checkpoint": info.checkpoint, "exporter_version": info.exporter_version, "cell_code": info.cell_code,
            "isolation_degraded": info.isolation_degraded, "calibration": info.calibration}


def diff(store: Store, ref_a: str, ref_b: str) -> dict[str, Any]:
    a, b = (read_bundle(store, store.resolve(r).digest) for r in (ref_a, ref_b))
    general = _changes(_general(a), _general(b))
    layers, metrics = _cells(store, a, b)
    return {"a": a.digest, "b": b.digest, "identical": a.digest == b.digest,
            "recipe": _changes(flatten(recipe_of(store, a)), flatten(recipe_of(store, b))),
            "bundle": general,
            "toolchains": _changes(flatten(a.toolchains), flatten(b.toolchains)),
            "locks": _locks(store, a, b), "images": _changes(_images(store, a.digest), _images(store, b.digest)),
            "layers": layers, "validation": metrics}


def _value(v: Any) -> str:
    text = str(v)
    return short(text, 16) if text.startswith("sha256:") else text


def render(console: Console, data: dict[str, Any]) -> None:
    p = console.print
    p(f"a {data['a']}\nb {data['b']}", highlight=False)
    if data["identical"]:
        p("[green]identical[/]: same bundle digest")
        return
    sections = (("recipe", "field"), ("bundle", "field"), ("toolchains", "field"), ("images", "field"))
    for name, key in sections:
        for c in data[name]:
            p(f"{name:10} {c[key]}: {_value(c['a'])} → {_value(c['b'])}", highlight=False)
    for lock in data["locks"]:
        p(f"lock       {lock['lockfile']}: {_value(lock['a'])} → {_value(lock['b'])}", highlight=False)
        for pkg in lock["packages"]:
            p(f"             {pkg['package']} {pkg['a'] or '-'} → {pkg['b'] or '-'}"
              + (" (same version, other hashes)" if pkg["change"] == "hashes" else ""), highlight=False)
    for layer in data["layers"]:
        p(f"{layer['role']:10} {layer['title']}: {_value(layer['a'])} → {_value(layer['b'])}", highlight=False)
    for m in data["validation"]:
        p(f"metric     {m['cell']} {m['field']}: {m['a']} → {m['b']}", highlight=False)
