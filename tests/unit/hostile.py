"""Hypothesis strategies for hostile input: malformed recipes and hostile bundle layouts.

Every value drawn here is malformed by construction (an unknown key, a value outside its field's range, a
YAML bomb, bytes that are not UTF-8, a layout with a changed, missing, extra, linked or lying file), so the
tests can demand the one documented exit code for each, not merely "some failure".
"""

from __future__ import annotations

import io
import json
import re
import string
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from exportctl import formats
from exportctl.canonical import canonical_json, digest_bytes
from exportctl.recipe.model import DEMO_ARCHITECTURES, MAX_SOURCE_DATE_EPOCH
from exportctl.store import mediatypes as mt

BASE: dict[str, Any] = {"name": "q", "checkpoint": {"demo": {"arch": "yolo11n.yaml", "seed": 0}},
                        "input": {"imgsz": 320}, "formats": {"onnx": {"precisions": ["fp32"]}},
                        "validation": {"conf": 0.25}}
KNOWN = {(): {"name", "checkpoint", "input", "formats", "validation", "calibration", "source_date_epoch"},
         ("checkpoint",): {"path", "sha256", "demo"}, ("checkpoint", "demo"): {"arch", "seed"},
         ("input",): {"imgsz", "batch"}, ("formats", "onnx"): {"precisions", "options"},
         ("validation",): {"images", "conf", "iou", "match_iou", "tolerances"}}
SCALARS = st.one_of(st.integers(-10**30, 10**30), st.floats(), st.text(max_size=40), st.booleans(), st.none())
HOSTILE_TEXT = st.one_of(st.text(max_size=60), st.sampled_from(["[/x]", "[bold red]x[/]", "../../etc/passwd",
                                                               "\x00", "%s%n", "{{7*7}}", "\u202e", "a" * 300]))


def _at(doc: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for part in path:
        doc = doc[part]
    return doc


def _copy() -> dict[str, Any]:
    return json.loads(json.dumps(BASE))


def _dump(doc: Any) -> bytes:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False).encode()


@st.composite
def _unknown_key(draw: st.DrawFn) -> bytes:
    path = draw(st.sampled_from(sorted(KNOWN)))
    key = draw(st.text(string.ascii_letters + string.digits + "_-[]/", min_size=1, max_size=20)
               .filter(lambda k: k not in KNOWN[path] and k not in {"base_dir", "source", "positions"}))
    doc = _copy()
    _at(doc, path)[key] = draw(SCALARS)
    return _dump(doc)


def _outside(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.one_of(st.integers(max_value=lo - 1, min_value=lo - 10**12), st.integers(hi + 1, hi + 10**25))


_WRONG = {  # (path to the field, values that field must refuse)
    ("name",): st.one_of(HOSTILE_TEXT.filter(lambda t: not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,62}", t)),
                         st.integers(), st.lists(st.integers(), max_size=2)),
    ("input", "imgsz"): st.one_of(st.integers(-10**6, 10**6).filter(lambda v: not (32 <= v <= 4096 and v % 32 == 0)),
                                  HOSTILE_TEXT.filter(lambda t: not t.strip().lstrip("+-").isdigit())),
    ("input", "batch"): _outside(1, 64),
    ("source_date_epoch",): st.one_of(_outside(315532800, MAX_SOURCE_DATE_EPOCH), st.floats(1e11, 1e300),
                                      st.just(float("inf")), st.just(float("nan"))),
    ("checkpoint", "demo", "seed"): _outside(0, 2**32 - 1),
    ("checkpoint", "demo", "arch"): HOSTILE_TEXT.filter(lambda t: not re.fullmatch(DEMO_ARCHITECTURES, t)),
    ("formats",): st.one_of(st.just({}), st.dictionaries(
        st.text(string.ascii_lowercase, min_size=1, max_size=12).filter(lambda n: n not in formats.registry()),
        st.just({}), min_size=1, max_size=2)),
    ("formats", "onnx", "precisions"): st.one_of(st.just([]), st.lists(
        HOSTILE_TEXT.filter(lambda t: t not in ("fp32", "fp16")), min_size=1, max_size=3)),
    ("validation", "conf"): st.one_of(st.floats(1.0, 1e30), st.floats(-1e30, 0.0)),
}


@st.composite
def _wrong_value(draw: st.DrawFn) -> bytes:
    path = draw(st.sampled_from(sorted(_WRONG)))
    doc = _copy()
    _at(doc, path[:-1])[path[-1]] = draw(_WRONG[path])
    return _dump(doc)


@st.composite
def _missing(draw: st.DrawFn) -> bytes:
    doc = _copy()
    del doc[draw(st.sampled_from(["name", "checkpoint", "formats"]))]
    return _dump(doc)


@st.composite
def _duplicate(draw: st.DrawFn) -> bytes:
    key = draw(st.sampled_from(["name", "checkpoint", "formats", "input"]))
    text = _dump(_copy()).decode()
    return (text + f"{key}: {json.dumps(draw(SCALARS))}\n").encode()


@st.composite
def _alias_bomb(draw: st.DrawFn) -> bytes:
    width, depth = draw(st.integers(2, 12)), draw(st.integers(4, 12))
    lines = ["a0: &a0 [lol, lol]"]
    for level in range(1, depth + 1):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    text = _dump(_copy()).decode() + "\n".join(lines) + "\n"
    return text.encode() if width * depth > 32 else (text + "b: [" + ", ".join(["*a0"] * 33) + "]\n").encode()


@st.composite
def _deep(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(65, 3000))
    opener, closer = draw(st.sampled_from([("{a: ", "}"), ("[", "]")]))
    return _dump(_copy()) + f"validation: {opener * depth}1{closer * depth}\n".encode()


@st.composite
def _huge_int(draw: st.DrawFn) -> bytes:
    path = draw(st.sampled_from([("input", "imgsz"), ("source_date_epoch",), ("checkpoint", "demo", "seed")]))
    digits = draw(st.integers(41, 10_000))
    doc = _copy()
    _at(doc, path[:-1])[path[-1]] = 0
    return _dump(doc).replace(f"{path[-1]}: 0".encode(), f"{path[-1]}: {'9' * digits}".encode())


@st.composite
def _not_utf8(draw: st.DrawFn) -> bytes:
    text = _dump(_copy())
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xe2\x82", b"\xf0\x28\x8c\xbc", b"\x80"])) \
        + text[at:]


def _huge_string() -> st.SearchStrategy[bytes]:
    return st.integers((1 << 20) + 1, 3 << 20).map(lambda n: b"name: " + b"x" * n + b"\n")


def _random_text() -> st.SearchStrategy[bytes]:
    return st.text(max_size=200).map(str.encode)


MALFORMED_RECIPES = st.one_of(_unknown_key(), _wrong_value(), _missing(), _duplicate(), _alias_bomb(), _deep(),
                              _huge_int(), _not_utf8(), _huge_string(), _random_text())


# -- layouts -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LayoutAttack:
    kind: str
    args: tuple[Any, ...]

    def apply(self, root: Path) -> None:
        getattr(self, f"_{self.kind}")(root, *self.args)

    @staticmethod
    def _files(root: Path) -> list[Path]:
        return sorted(p for p in (root / "blobs" / "sha256").iterdir())

    def _flip(self, root: Path, which: int, at: int) -> None:
        path = self._files(root)[which % len(self._files(root))]
        data = bytearray(path.read_bytes())
        data[at % len(data)] ^= 0xFF
        path.write_bytes(bytes(data))

    def _truncate(self, root: Path, which: int, keep: int) -> None:
        path = self._files(root)[which % len(self._files(root))]
        data = path.read_bytes()
        path.write_bytes(data[:keep % len(data)])

    def _extend(self, root: Path, which: int, extra: bytes) -> None:
        path = self._files(root)[which % len(self._files(root))]
        path.write_bytes(path.read_bytes() + extra)

    def _delete(self, root: Path, which: int) -> None:
        files = [*self._files(root), root / "index.json", root / "oci-layout"]
        files[which % len(files)].unlink()

    def _extra_file(self, root: Path, where: str, name: str, data: bytes) -> None:
        (root / where / name).write_bytes(data)

    def _symlink(self, root: Path, where: str, name: str, target: str) -> None:
        if target == "<blob>":
            target = str(self._files(root)[0])
        (root / where / name).symlink_to(target)

    def _replace_blob_with_link(self, root: Path, which: int) -> None:
        path = self._files(root)[which % len(self._files(root))]
        copy = root.parent / f"{root.name}-outside"
        copy.write_bytes(path.read_bytes())
        path.unlink()
        path.symlink_to(copy)

    def _document(self, root: Path, name: str, text: bytes) -> None:
        (root / name).write_bytes(text)

    def _index_digest(self, root: Path, digest: str) -> None:
        index = json.loads((root / "index.json").read_bytes())
        index["manifests"][0]["digest"] = digest
        (root / "index.json").write_text(json.dumps(index))

    def _manifest(self, root: Path, change: str, value: Any) -> None:
        """Rewrite the bundle manifest (re-hashed, index updated, old blob removed) with one hostile change."""
        index = json.loads((root / "index.json").read_bytes())
        old = index["manifests"][0]["digest"]
        old_path = root / "blobs" / "sha256" / old[7:]
        manifest = json.loads(old_path.read_bytes())
        layer = manifest["layers"][value[0] % len(manifest["layers"])]
        if change == "title":
            layer["annotations"][mt.ANNOTATION_TITLE] = value[1]
        elif change == "size":
            layer["size"] = max(0, layer["size"] + value[1])
        elif change == "digest":
            layer["digest"] = value[1]
        elif change == "media_type":
            layer["mediaType"] = value[1]
        elif change == "tar_layer":
            data = hostile_tar(*value[1])
            (root / "blobs" / "sha256" / digest_bytes(data)[7:]).write_bytes(data)
            manifest["layers"].append({"mediaType": value[2], "digest": digest_bytes(data), "size": len(data),
                                       "annotations": {mt.ANNOTATION_TITLE: "extra.tar"}})
        raw = canonical_json(manifest)
        old_path.unlink()
        (root / "blobs" / "sha256" / digest_bytes(raw)[7:]).write_bytes(raw)
        index["manifests"][0]["digest"] = digest_bytes(raw)
        index["manifests"][0]["size"] = len(raw)
        (root / "index.json").write_text(json.dumps(index))


def hostile_tar(name: str, kind: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        elif kind == "device":
            info.type = tarfile.CHRTYPE
            tar.addfile(info)
        else:
            info.size = 2
            tar.addfile(info, io.BytesIO(b"hi"))
    return buf.getvalue()


_NAME = st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=30).filter(
    lambda n: n not in (".", "..", "index.json", "oci-layout", "blobs", "signatures", "sha256")
    and not re.fullmatch(r"[0-9a-f]{16}\.sig", n))
_WHERE = st.sampled_from([".", "blobs", "blobs/sha256", "signatures"])
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                  max_size=4), max_leaves=20)
_TRAVERSAL = st.sampled_from(["../x", "../../../../etc/passwd", "/etc/passwd", "a/../../b", "..", "a\\..\\b", "",
                              "x\x00y"])
_DOCUMENT = st.one_of(
    _JSON.map(lambda v: json.dumps(v).encode()),
    st.integers(101, 200_000).map(lambda d: b"[" * d + b"]" * d),
    st.integers(101, 200_000).map(lambda d: b'{"a":' * d + b"1" + b"}" * d),
    st.just(b'{"manifests": ' + b" " * (17 << 20) + b"[]}"),
    st.binary(max_size=64))

LAYOUT_ATTACKS = st.one_of(
    st.builds(LayoutAttack, st.just("flip"), st.tuples(st.integers(0, 99), st.integers(0, 10**6))),
    st.builds(LayoutAttack, st.just("truncate"), st.tuples(st.integers(0, 99), st.integers(0, 10**6))),
    st.builds(LayoutAttack, st.just("extend"), st.tuples(st.integers(0, 99), st.binary(min_size=1, max_size=64))),
    st.builds(LayoutAttack, st.just("delete"), st.tuples(st.integers(0, 99))),
    st.builds(LayoutAttack, st.just("extra_file"), st.tuples(_WHERE, _NAME, st.binary(max_size=64))),
    st.builds(LayoutAttack, st.just("symlink"), st.tuples(_WHERE, _NAME, st.sampled_from(
        ["/etc/passwd", "../../../etc/passwd", "<blob>", "/"]))),
    st.builds(LayoutAttack, st.just("replace_blob_with_link"), st.tuples(st.integers(0, 99))),
    st.builds(LayoutAttack, st.just("document"), st.tuples(st.sampled_from(["index.json", "oci-layout"]),
                                                           _DOCUMENT)),
    st.builds(LayoutAttack, st.just("index_digest"), st.tuples(st.one_of(
        _TRAVERSAL.map(lambda t: f"sha256:{t}"), st.text(string.hexdigits.lower(), min_size=64, max_size=64)
        .map(lambda h: f"sha256:{h}"), st.text(max_size=80)))),
    st.builds(LayoutAttack, st.just("manifest"), st.one_of(
        st.tuples(st.just("title"), st.tuples(st.integers(0, 9), _TRAVERSAL)),
        st.tuples(st.just("size"), st.tuples(st.integers(0, 9), st.integers(-10**6, 10**6).filter(bool))),
        st.tuples(st.just("digest"), st.tuples(st.integers(0, 9), _TRAVERSAL.map(lambda t: f"sha256:{t}"))),
        st.tuples(st.just("media_type"), st.tuples(st.integers(0, 9), st.text(max_size=40).filter(
            lambda t: t not in {mt.WEIGHT_RAW, mt.WEIGHT_TAR, mt.WEIGHT_CONFIG_RAW, mt.VALIDATION, mt.RECIPE,
                                mt.LOCKFILE, mt.REFERENCE}))),
        st.tuples(st.just("tar_layer"), st.tuples(st.integers(0, 9), st.tuples(
            st.one_of(_TRAVERSAL.filter(lambda t: t.startswith(("..", "/", "a/.."))), st.just("fine.txt")),
            st.sampled_from(["file", "symlink", "device"])), st.sampled_from(
                [mt.WEIGHT_TAR, "application/vnd.oci.image.layer.v1.tar"]))).filter(
            lambda v: not (v[1][1][0] == "fine.txt" and v[1][1][1] == "file" and v[1][2] == mt.WEIGHT_TAR)),
    )),
)
