"""Referrers: signatures and attestations stored beside a bundle, and the exported layout that carries them.

In the store each one is an OCI 1.1 referrer: an image manifest with an empty config, its content as
layers, and `subject` = the bundle's manifest descriptor. It is listed in the store's index.json with a
`dev.exportctl.subject` annotation: referrer-aware OCI tools can find it, `Store.manifests()` skips it. The
bundle's manifest never changes, so neither does its digest.

An exported layout must stay readable by `skopeo inspect --raw oci:DIR` (index.json lists only the bundle)
and verifiable by `model_signing verify key` (a signature covers every file it does not itself ignore):

    DIR/oci-layout, DIR/index.json          the bundle; its index entry names the provenance and BOM referrers
    DIR/blobs/sha256/...                    the bundle's blobs + the provenance and BOM referrers and their blobs
    DIR/signatures/<keyid>.sig              model-signing signatures (Sigstore bundles); each signature
                                            records `signatures` as an ignored path, so it covers the rest
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exportctl.canonical import canonical_json, digest_bytes, is_digest, pretty_json
from exportctl.errors import ConfigError, VerifyFailed
from exportctl.store import mediatypes as mt
from exportctl.store.atomic import atomic_write, new_directory
from exportctl.store.descriptor import Descriptor
from exportctl.store.layout import Store

EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"  # OCI 1.1: the config of an artifact that has none
SIGNATURE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"  # what model-signing writes
DSSE_TYPE = "application/vnd.dsse.envelope.v1+json"
PUBLIC_KEY_TYPE = "application/vnd.exportctl.public-key.v1+pem"
BOM_TYPE = "application/vnd.cyclonedx+json"  # the ML-BOM (bundle/bom.py), CycloneDX's registered media type
ANNOTATION_CREATED = "org.opencontainers.image.created"
ANNOTATION_KEYID = "dev.exportctl.keyid"  # sha256 of the signer's public key (PEM), model-signing's key hint
ANNOTATION_SIGNER = "dev.exportctl.signer"  # "key" or "sigstore"
ANNOTATION_IDENTITY = "dev.exportctl.identity"  # Sigstore: the OIDC identity in the certificate
ANNOTATION_COVERS = "dev.exportctl.covers"  # on a signature: the provenance referrer its layout included
ANNOTATION_PREDICATE = "in-toto.io/predicate-type"
ANNOTATION_PROVENANCE = "dev.exportctl.provenance"  # on the exported index entry: the provenance referrer
ANNOTATION_BOM = "dev.exportctl.bom"  # on the exported index entry: the ML-BOM referrer
ANNOTATION_COVERS_BOM = "dev.exportctl.covers-bom"  # on a signature: the ML-BOM referrer its layout included
SIGNATURES_DIR = "signatures"
KEYID_CHARS = 16  # file names and listings use a prefix, like OpenPGP long key ids
_SIG_NAME = re.compile(rf"^[0-9a-f]{{{KEYID_CHARS}}}\.sig$")


@dataclass(frozen=True)
class Referrer:
    """A referrer manifest and its (small) blobs, in memory until `attach` stores them."""

    manifest: dict[str, Any]
    blobs: dict[str, bytes]  # digest -> content, config and layers

    @property
    def raw(self) -> bytes:
        return canonical_json(self.manifest)

    @property
    def digest(self) -> str:
        return digest_bytes(self.raw)

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.manifest.get("annotations") or {})

    @property
    def artifact_type(self) -> str:
        return str(self.manifest.get("artifactType", ""))

    @property
    def subject(self) -> str:
        return str((self.manifest.get("subject") or {}).get("digest", ""))

    def layer(self, media_type: str) -> bytes:
        for layer in self.manifest.get("layers", []):
            if layer.get("mediaType") == media_type and layer.get("digest") in self.blobs:
                return self.blobs[layer["digest"]]
        raise VerifyFailed(f"referrer {self.digest} has no {media_type} layer")

    @property
    def keyid(self) -> str:
        keyid = self.annotations.get(ANNOTATION_KEYID, "")
        # The keyid becomes a file name on export: refuse anything that could name a path.
        if not re.fullmatch(r"[0-9a-f]{64}", keyid):
            raise VerifyFailed(f"referrer {self.digest}: annotation {ANNOTATION_KEYID}={keyid!r} is not a key id")
        return keyid


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def make(subject: Descriptor, artifact_type: str, layers: list[tuple[bytes, str]],
         annotations: dict[str, str]) -> Referrer:
    blobs = {digest_bytes(b"{}"): b"{}"}
    descs = []
    for data, media_type in layers:
        blobs[digest_bytes(data)] = data
        descs.append({"mediaType": media_type, "digest": digest_bytes(data), "size": len(data)})
    manifest = {
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "artifactType": artifact_type,
        "config": {"mediaType": EMPTY_CONFIG, "digest": digest_bytes(b"{}"), "size": 2},
        "layers": descs,
        "subject": {"mediaType": subject.mediaType, "digest": subject.digest, "size": subject.size},
        "annotations": {ANNOTATION_CREATED: now(), **annotations},
    }
    return Referrer(manifest, blobs)


def attach(store: Store, referrer: Referrer) -> Descriptor:
    """Store a referrer and list it beside its bundle; the bundle itself is untouched."""
    for digest, data in referrer.blobs.items():
        media_type = next((la["mediaType"] for la in referrer.manifest["layers"] if la["digest"] == digest),
                          EMPTY_CONFIG)
        store.put_bytes(data, media_type)
    index_annotations = {mt.ANNOTATION_SUBJECT: referrer.subject, **referrer.annotations}
    return store.add_manifest(referrer.manifest, index_annotations)


def _read_checked(store: Store, digest: str, what: str) -> bytes:
    data = store.read_blob(digest)
    if digest_bytes(data) != digest:
        raise VerifyFailed(f"{what} ({digest}) is corrupt: its content hashes to {digest_bytes(data)}",
                           hint="delete the referrer's entry from index.json and sign the bundle again")
    return data


def load(store: Store, subject: str) -> list[Referrer]:
    """Every referrer the store lists for bundle `subject`, each blob re-hashed, oldest first."""
    found = []
    for entry in store.manifests(referrers=True):
        if (entry.annotations or {}).get(mt.ANNOTATION_SUBJECT) != subject:
            continue
        manifest = json.loads(_read_checked(store, entry.digest, "referrer manifest"))
        refs = [manifest.get("config", {}), *manifest.get("layers", [])]
        blobs = {d["digest"]: _read_checked(store, d["digest"], f"blob of referrer {entry.digest}") for d in refs}
        referrer = Referrer(manifest, blobs)
        if referrer.subject != subject:
            raise VerifyFailed(f"referrer {entry.digest} is listed for {subject} but its subject is "
                               f"{referrer.subject or 'missing'}")
        found.append(referrer)
    return sorted(found, key=lambda r: (r.annotations.get(ANNOTATION_CREATED, ""), r.digest))


@dataclass(frozen=True)
class Attachments:
    """What one exported layout carries beside the bundle: its provenance, its ML-BOM, the signatures over both."""

    provenance: Referrer | None
    bom: Referrer | None
    signatures: list[Referrer]


def pick(referrers: list[Referrer]) -> Attachments:
    """The provenance, ML-BOM and signatures one exported layout can carry.

    A signature covers every file outside signatures/, so all signatures in a layout must have been made
    over the same provenance (the first one made for the bundle: later signers reuse it, see signing.py) and
    the same BOM: the one named by the first signature (none for signatures made before bundles had BOMs).
    """
    provenance = next((r for r in referrers if r.artifact_type == DSSE_TYPE), None)
    covers = provenance.digest if provenance else ""
    signatures = [r for r in referrers if r.artifact_type == SIGNATURE_TYPE
                  and r.annotations.get(ANNOTATION_COVERS, "") == covers]
    boms = [r for r in referrers if r.artifact_type == BOM_TYPE]
    if not signatures:
        return Attachments(provenance, boms[0] if boms else None, [])
    bom = signatures[0].annotations.get(ANNOTATION_COVERS_BOM, "")
    return Attachments(provenance, next((b for b in boms if b.digest == bom), None),
                       [s for s in signatures if s.annotations.get(ANNOTATION_COVERS_BOM, "") == bom])


def write_layout(store: Store, digest: str, dest: Path, attached: Attachments, tags: tuple[str, ...] = (), *,
                 independent: bool = False) -> None:
    """Write the exported layout of bundle `digest` (see module doc); `dest` must be new or empty.
    Hard links into the store unless `independent` (what `export` hands to users: copies)."""
    with new_directory(Path(dest)) as tmp:
        store.export(digest, tmp, tags, independent=independent)  # the bundle alone, blobs re-hashed on the way
        named = {key: referrer for key, referrer in ((ANNOTATION_PROVENANCE, attached.provenance),
                                                     (ANNOTATION_BOM, attached.bom)) if referrer is not None}
        for referrer in named.values():
            for blob_digest, data in [(referrer.digest, referrer.raw), *referrer.blobs.items()]:
                atomic_write(tmp / "blobs" / "sha256" / blob_digest.split(":", 1)[1], data)
        if named:
            index = json.loads((tmp / "index.json").read_bytes())
            for entry in index["manifests"]:  # the bundle, once per name
                entry["annotations"] = {**entry.get("annotations", {}),
                                        **{key: referrer.digest for key, referrer in named.items()}}
            atomic_write(tmp / "index.json", pretty_json(index))
        for signature in attached.signatures:
            path = tmp / SIGNATURES_DIR / f"{signature.keyid[:KEYID_CHARS]}.sig"
            path.parent.mkdir(exist_ok=True)
            atomic_write(path, signature.layer(SIGNATURE_TYPE))


def export(store: Store, digest: str, dest: Path, tags: tuple[str, ...] = ()) -> Attachments:
    """`exportctl export`: the bundle with its provenance, its ML-BOM and the signatures over them.

    Signatures cover index.json as signing wrote it (the bundle under its default name): extra `tags` would
    change it, so a signed bundle is exported under its default name only.
    """
    attached = pick(load(store, digest))
    if tags and attached.signatures:
        raise ConfigError(
            f"--tag {tags[0]}: bundle {digest} is signed, and its signatures cover index.json as signed "
            "(the bundle under its default name only); another name would invalidate them",
            hint="export without --tag and name the copy afterwards (`skopeo copy oci:DIR:<name> oci:OTHER:<tag>`)")
    write_layout(store, digest, dest, attached, tags, independent=True)
    return attached


def is_signature_name(name: str) -> bool:
    return bool(_SIG_NAME.match(name))


def attached_digest(entry: dict[str, Any], key: str) -> str | None:
    """The referrer an exported index entry names under `key` (ANNOTATION_PROVENANCE, ANNOTATION_BOM)."""
    value = (entry.get("annotations") or {}).get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not is_digest(value):
        raise VerifyFailed(f"index.json annotation {key}={value!r} is not a sha256 digest",
                           hint="an index annotation must never name a path; re-export the bundle")
    return value
