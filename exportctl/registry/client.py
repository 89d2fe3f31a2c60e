"""The distribution-spec calls exportctl makes, with the store's exact bytes in and checked bytes out.

Manifests go up as the bytes the store holds (never re-serialized, so the digest cannot move) and come down
bounded by MAX_MANIFEST and checked against the digest that names them. Blobs are HEADed before upload
(skipped when present), mounted from another repository of the same registry when we know one that has them,
uploaded monolithically from the file otherwise, and downloaded in a stream that is hashed and bounded by the
descriptor's size as it arrives.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin

from exportctl.canonical import digest_bytes
from exportctl.errors import RegistryError, VerifyFailed
from exportctl.registry.reference import Reference
from exportctl.registry.transport import Transport, TransportOptions, iter_limited
from exportctl.store import mediatypes as mt

# distribution's own default limit on a manifest body; anything larger is not a manifest we wrote.
MAX_MANIFEST = 4 << 20
MANIFEST_TYPES = (mt.OCI_MANIFEST, mt.OCI_INDEX)


@dataclass
class Traffic:
    """What one push or pull moved: the closing numbers `push`/`pull` print."""

    uploaded: int = 0  # blobs sent
    uploaded_bytes: int = 0
    skipped: int = 0  # already there (HEAD) or mounted
    mounted: int = 0
    downloaded_bytes: int = 0


class Registry:
    """One repository on one registry."""

    def __init__(self, ref: Reference, options: TransportOptions | None = None) -> None:
        self.ref = ref
        self.http = Transport(ref, options or TransportOptions())
        self.traffic = Traffic()

    def has_blob(self, digest: str) -> bool:
        return self.http.request("HEAD", f"blobs/{digest}", ok=(200, 404)).status_code == 200

    def _location(self, response: Any) -> str:
        location = response.headers.get("Location", "")
        if not location:
            raise RegistryError(f"{self.ref.host}: the upload was accepted without a Location to send it to")
        return urljoin(str(response.url), str(location))  # registries may answer with a path only

    def put_blob(self, digest: str, size: int, source: Path | bytes, mount_from: list[str]) -> None:
        """Make `digest` present in this repository: HEAD, then mount, then upload."""
        if self.has_blob(digest):
            self.traffic.skipped += 1
            return
        for repository in mount_from:
            if repository == self.ref.repository:
                continue
            started = self.http.request("POST", "blobs/uploads/?" + urlencode({"mount": digest, "from": repository}),
                                        ok=(201, 202))
            if started.status_code == 201:  # mounted: the registry linked the blob, nothing is sent
                self.traffic.skipped += 1
                self.traffic.mounted += 1
                return
            self._send(started, digest, size, source)  # 202: the registry opened a normal upload instead
            return
        started = self.http.request("POST", "blobs/uploads/", headers={"Content-Length": "0"}, ok=(202,))
        self._send(started, digest, size, source)

    def _send(self, started: Any, digest: str, size: int, source: Path | bytes) -> None:
        location = self._location(started)
        sep = "&" if "?" in location else "?"
        self.http.request("PUT", "", url=f"{location}{sep}{urlencode({'digest': digest})}", body=source,
                          headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                          ok=(201,))
        self.traffic.uploaded += 1
        self.traffic.uploaded_bytes += size

    def put_manifest(self, raw: bytes, media_type: str, target: str) -> dict[str, str]:
        """PUT the exact bytes at `target` (a tag or their digest); returns the response headers."""
        response = self.http.request("PUT", f"manifests/{target}", body=raw,
                                     headers={"Content-Type": media_type}, ok=(201,))
        echoed = response.headers.get("Docker-Content-Digest")
        if echoed and echoed != digest_bytes(raw):
            raise RegistryError(f"{self.ref.host} stored the manifest under {echoed}, not {digest_bytes(raw)}",
                                hint="the registry rewrote the manifest; use a registry that keeps bytes as sent")
        return dict(response.headers)

    def get_manifest(self, target: str, *, missing_ok: bool = False) -> tuple[bytes, str] | None:
        """(raw bytes, media type) of the manifest at `target`, bounded and, for a digest, checked."""
        response = self.http.request("GET", f"manifests/{target}", stream=True, ok=(200, 404),
                                     headers={"Accept": ", ".join(MANIFEST_TYPES)})
        if response.status_code == 404:
            if missing_ok:
                return None
            raise RegistryError(f"{self.ref.host}/{self.ref.repository}: no manifest '{target}'",
                                hint="check the repository and tag (or digest)")
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_MANIFEST:
            response.close()
            raise VerifyFailed(f"the manifest '{target}' is {declared} bytes, more than the {MAX_MANIFEST} a "
                               "manifest may have", hint="nothing was stored; check what the registry serves")
        raw = b"".join(iter_limited(response, MAX_MANIFEST, f"the manifest '{target}'"))
        if target.startswith("sha256:") and digest_bytes(raw) != target:
            raise VerifyFailed(f"the registry served other bytes for manifest {target}: they hash to "
                               f"{digest_bytes(raw)}", hint="nothing was stored; the registry or a proxy on the "
                               "way changed the content")
        media_type = str(response.headers.get("Content-Type", "")).split(";")[0].strip()
        return raw, media_type

    def blob_chunks(self, digest: str, size: int, what: str) -> Iterator[bytes]:
        """The blob, streamed; exit 7 as soon as it is longer than `size`, or at the end if short or wrong."""
        response = self.http.request("GET", f"blobs/{digest}", stream=True)
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) != size:
            response.close()
            raise VerifyFailed(f"{what} ({digest}): the registry sends {declared} bytes, the descriptor says {size}",
                               hint="the descriptor's size or the registry lies; nothing was stored")
        for chunk in checked(iter_limited(response, size, f"{what} ({digest})"), digest, size, what):
            self.traffic.downloaded_bytes += len(chunk)
            yield chunk

    def referrers_api(self, digest: str) -> list[dict[str, Any]] | None:
        """The OCI 1.1 referrers API's list for `digest`; None where the registry has no such API."""
        response = self.http.request("GET", f"referrers/{digest}", ok=(200, 404, 400, 405), stream=True,
                                     headers={"Accept": mt.OCI_INDEX})
        if response.status_code != 200 or not response.headers.get("Content-Type", "").startswith(mt.OCI_INDEX):
            response.close()
            return None
        raw = b"".join(iter_limited(response, MAX_MANIFEST, f"the referrers of {digest}"))
        return _manifests_of(raw, f"the referrers list of {digest}")


def checked(chunks: Iterator[bytes], digest: str, size: int, what: str) -> Iterator[bytes]:
    """`chunks` passed through, hashed and counted: exit 7 at the end if they are not `size` bytes of `digest`."""
    hasher, seen = hashlib.sha256(), 0
    for chunk in chunks:
        hasher.update(chunk)
        seen += len(chunk)
        yield chunk
    if seen != size:
        raise VerifyFailed(f"{what} ({digest}) is {seen} bytes, its descriptor says {size}",
                           hint="nothing was stored; the source served a truncated blob")
    if f"sha256:{hasher.hexdigest()}" != digest:
        raise VerifyFailed(f"{what} ({digest}) arrived with other bytes: they hash to sha256:{hasher.hexdigest()}",
                           hint="nothing was stored; the registry, the shared directory or a proxy on the way "
                                "changed the content")


def _manifests_of(raw: bytes, what: str) -> list[dict[str, Any]]:
    try:
        entries = json.loads(raw).get("manifests", [])
    except (ValueError, AttributeError):
        raise VerifyFailed(f"{what} is not an OCI image index") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise VerifyFailed(f"{what} is not an OCI image index")
    return entries


def index_manifests(raw: bytes, what: str) -> list[dict[str, Any]]:
    return _manifests_of(raw, what)
