"""Build provenance: an in-toto Statement v1 with a SLSA provenance v1 predicate, in a DSSE envelope.

Subjects are the bundle digest and every artifact digest; externalParameters is the canonical recipe the
bundle carries; resolvedDependencies are the checkpoint, the lockfiles, base images (when a toolchain ran
in one) and exportctl itself; runDetails come from the build's run record (builder = the runner backend,
host platform, start and finish). The envelope is signed with the same key as the bundle (signing.py).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from exportctl import errors
from exportctl.bundle.read import BundleInfo, recipe_of
from exportctl.canonical import canonical_json
from exportctl.paths import package_source_digest
from exportctl.store import mediatypes as mt
from exportctl.store import referrers as ref
from exportctl.store.layout import Store

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
# No published page describes our build type yet, so it is named by URN rather than by a URL that lies.
BUILD_TYPE = "urn:exportctl:buildtype:recipe:v1"


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1]


def _descriptor(name: str, digest: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "digest": {"sha256": _hex(digest)}, **extra}


def subjects(info: BundleInfo) -> list[dict[str, Any]]:
    return [_descriptor(info.name, info.digest, mediaType=mt.OCI_MANIFEST),
            *(_descriptor(la.title, la.digest) for la in info.by_role(mt.Role.ARTIFACT))]


def base_images(run: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Images a container backend ran the toolchains in (run record), pinned by digest: base and built."""
    found = []
    for env in (run or {}).get("environments", []):
        toolchain = env.get("toolchain", "?")
        for arg, image in sorted((env.get("base") or {}).items()):
            if isinstance(image, str) and "@sha256:" in image:
                found.append(_descriptor(f"base-image:{toolchain}:{arg}", image.rsplit("@", 1)[1], uri=image))
        if str(env.get("image_id", "")).startswith("sha256:"):
            found.append(_descriptor(f"image:{toolchain}", env["image_id"], uri=str(env.get("image", ""))))
    return found


def statement(store: Store, info: BundleInfo, run: dict[str, Any] | None, version: str) -> dict[str, Any]:
    """The provenance of `info` as built by `run` (the run record of the build that first made it)."""
    recipe = recipe_of(store, info)
    demo = (recipe.get("checkpoint") or {}).get("demo")
    checkpoint_uri = (f"urn:exportctl:demo-checkpoint:{demo['arch']}?seed={demo['seed']}" if demo
                      else f"file:{recipe['checkpoint']['path']}")
    deps = [_descriptor("checkpoint", info.checkpoint, uri=checkpoint_uri)]
    deps += [_descriptor(la.title, la.digest, mediaType=la.media_type) for la in info.by_role(mt.Role.LOCKFILE)]
    calibration = info.calibration
    if isinstance(calibration, dict) and calibration.get("digest"):
        deps.append(_descriptor(f"calibration:{calibration.get('source')}", calibration["digest"],
                                annotations={"count": calibration.get("count")}))
    deps += base_images(run)
    built_by = (run or {}).get("exportctl_version", version)
    # exportctl's own package: the code that planned, ran and assembled the build.
    deps.append(_descriptor("exportctl", package_source_digest(), uri=f"pkg:pypi/exportctl@{built_by}",
                            annotations={"cellCode": info.cell_code, "exporterVersion": info.exporter_version}))
    run = run or {}
    isolation, host = run.get("isolation", {}), run.get("host", {})
    builder = {"id": f"urn:exportctl:builder:{isolation.get('backend', 'unknown')}",
               "version": {"exportctl": built_by, **{k: str(v) for k, v in isolation.items() if k != "backend"},
                           **{f"host.{k}": str(v) for k, v in host.items()}}}
    metadata = {k: v for k, v in {"invocationId": f"{info.digest}#run-{run['run']}" if "run" in run else None,
                                  "startedOn": run.get("started"), "finishedOn": run.get("finished")}.items()
                if v is not None}
    byproducts = [_descriptor(f"log:{c['cell']}", c["log"]) for c in run.get("cells", []) if c.get("log")]
    internal = {"isolationDegraded": info.isolation_degraded} if info.isolation_degraded else {}
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects(info),
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {"buildType": BUILD_TYPE, "externalParameters": {"recipe": recipe},
                                "internalParameters": internal, "resolvedDependencies": deps},
            "runDetails": {"builder": builder, "metadata": metadata, "byproducts": byproducts},
        },
    }


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature is computed over."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def envelope(statement_: dict[str, Any], keyid: str, sign: Callable[[bytes], bytes]) -> bytes:
    """A DSSE envelope of `statement_`; `sign(bytes) -> bytes` holds the key, so it never passes through here."""
    payload = canonical_json(statement_)
    signature = sign(pae(PAYLOAD_TYPE, payload))
    return canonical_json({"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode(),
                           "signatures": [{"keyid": keyid, "sig": base64.b64encode(signature).decode()}]})


def open_envelope(data: bytes) -> tuple[dict[str, Any], bytes, list[dict[str, str]]]:
    """(statement, signed payload bytes, signatures) of a DSSE envelope, or ProvenanceInvalid."""
    try:
        env = json.loads(data)
        payload = base64.b64decode(env["payload"], validate=True)
        if env.get("payloadType") != PAYLOAD_TYPE:
            raise ValueError(f"payloadType is {env.get('payloadType')!r}, not {PAYLOAD_TYPE}")
        stmt = json.loads(payload)
        signatures = [{"keyid": str(s.get("keyid", "")), "sig": str(s["sig"])} for s in env["signatures"]]
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise errors.ProvenanceInvalid(f"the provenance envelope is malformed: {e}") from e
    if stmt.get("_type") != STATEMENT_TYPE or stmt.get("predicateType") != PREDICATE_TYPE:
        raise errors.ProvenanceInvalid(f"the provenance is not an in-toto v1 statement with a SLSA v1 predicate "
                                       f"(type {stmt.get('_type')!r}, predicate {stmt.get('predicateType')!r})")
    if not signatures:
        raise errors.ProvenanceInvalid("the provenance envelope carries no signature")
    return stmt, payload, signatures


def envelope_of(referrer: ref.Referrer) -> tuple[bytes, bool]:
    """(DSSE envelope JSON, signed with a key we can check offline) of a provenance referrer: key-signed
    envelopes are stored as they are, Sigstore-signed ones inside the Sigstore bundle that carries them."""
    try:
        return referrer.layer(ref.DSSE_TYPE), True
    except errors.VerifyFailed:
        try:
            return canonical_json(json.loads(referrer.layer(ref.SIGNATURE_TYPE))["dsseEnvelope"]), False
        except (ValueError, KeyError, TypeError) as e:
            raise errors.ProvenanceInvalid(f"provenance {referrer.digest} holds no DSSE envelope ({e!r})") from e


def check_subjects(stmt: dict[str, Any], info: BundleInfo) -> None:
    """The statement must name exactly this bundle and its artifacts: no more, no fewer, same digests."""
    def digests(items: list[dict[str, Any]]) -> dict[str, str]:
        return {f"sha256:{(s.get('digest') or {}).get('sha256', '')}": str(s.get("name")) for s in items}

    claimed, actual = digests(stmt.get("subject") or []), digests(subjects(info))
    if info.digest not in claimed:
        raise errors.ProvenanceInvalid(f"the provenance does not name bundle {info.digest} as its subject "
                                       f"(it names {', '.join(sorted(claimed)) or 'nothing'})")
    missing = [f"{actual[d]} ({d})" for d in actual if d not in claimed]
    extra = [f"{claimed[d]} ({d})" for d in claimed if d not in actual]
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"not in the bundle: {', '.join(extra)}"]
                                                                           if extra else [])
        raise errors.ProvenanceInvalid(f"the provenance subject does not match bundle {info.digest}: "
                                       + "; ".join(parts))
