"""OCI content descriptors, and the blobs a manifest needs: the one reading of both, for the store and its readers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from exportctl.errors import StoreError
from exportctl.store.mediatypes import ANNOTATION_TITLE


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor. Field names are OCI's own so JSON maps onto them one to one."""

    mediaType: str
    digest: str
    size: int
    annotations: dict[str, str] | None = None
    artifactType: str | None = None

    def to_json(self) -> dict[str, Any]:
        # OCI says absent, not null, for unset optional fields.
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Descriptor:
        try:
            return cls(str(data["mediaType"]), str(data["digest"]), int(data["size"]),
                       data.get("annotations"), data.get("artifactType"))
        except (KeyError, TypeError, ValueError) as e:
            raise StoreError(f"malformed OCI descriptor {data!r}: {e!r}") from e


def blob_references(manifest: dict[str, Any]) -> list[tuple[str, Descriptor]]:
    """(role, descriptor) for every blob a manifest needs; the role is how errors name the blob."""
    if not isinstance(manifest, dict) or "config" not in manifest:
        raise StoreError("manifest has no config descriptor")
    refs = [("config", Descriptor.from_json(manifest["config"]))]
    for i, layer in enumerate(manifest.get("layers", [])):
        desc = Descriptor.from_json(layer)
        title = (desc.annotations or {}).get(ANNOTATION_TITLE)
        refs.append((f"layer {i} '{title}'" if title else f"layer {i}", desc))
    return refs
