"""Media types and annotation keys used in the store's OCI manifests.

Model content uses the CNCF ModelPack types so that ModelPack-aware tools (registries, `modctl`,
Kubernetes image volumes) recognise a bundle without knowing exportctl. Only content ModelPack has no
type for (validation reports, recipes, lockfiles, reference outputs) gets an exportctl type; those are
versioned so a future format change gets a new type instead of silently changing the meaning of an old one.
"""

from __future__ import annotations

from enum import StrEnum

# OCI image-spec types: the store is a plain OCI image layout, so generic tools can read it.
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

# CNCF ModelPack (github.com/modelpack/model-spec, specs-go/v1/mediatype.go).
MODEL_ARTIFACT_TYPE = "application/vnd.cncf.model.manifest.v1+json"
MODEL_CONFIG = "application/vnd.cncf.model.config.v1+json"
# A single-file export (e.g. model.onnx) is stored as-is so it can be mounted and read without unpacking.
WEIGHT_RAW = "application/vnd.cncf.model.weight.v1.raw"
# A directory export (e.g. a SavedModel) is stored as a canonical, uncompressed tar (see tarball.py);
# uncompressed because compression would make the digest depend on the compressor's version.
WEIGHT_TAR = "application/vnd.cncf.model.weight.v1.tar"
# metadata.json: ModelPack's "weight config" is the slot for small files that describe the weights.
WEIGHT_CONFIG_RAW = "application/vnd.cncf.model.weight.config.v1.raw"

# exportctl's own types.
VALIDATION = "application/vnd.exportctl.validation.v1+json"
RECIPE = "application/vnd.exportctl.recipe.v1+json"
LOCKFILE = "application/vnd.exportctl.lockfile.v1+text"
REFERENCE = "application/vnd.exportctl.reference.v1+npz"

# Annotation keys. `title` is what OCI tools (oras, skopeo) use as the file name on pull.
ANNOTATION_TITLE = "org.opencontainers.image.title"
# ModelPack's path of the file inside the model directory, kept distinct from title for nested paths.
ANNOTATION_FILEPATH = "org.cncf.model.filepath"
# The build-matrix cell a layer belongs to, as "<format>/<precision>", e.g. "onnx/fp32".
ANNOTATION_CELL = "dev.exportctl.cell"
# One of `Role`: lets `exportctl` find a layer's purpose without guessing from its media type.
ANNOTATION_ROLE = "dev.exportctl.role"
# On a store index.json entry: the bundle a referrer (signature, attestation) points at. Bundles never carry
# it, which is how `Store.manifests()` tells the two apart without reading a blob.
ANNOTATION_SUBJECT = "dev.exportctl.subject"
# On a store index.json entry: the recipe that built the bundle (names the exported layout's reference).
ANNOTATION_RECIPE = "dev.exportctl.recipe"
# On an exported layout's index.json entry: a name tools address the bundle by (`oci:DIR:NAME`, `umoci ls`).
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"


class Role(StrEnum):
    """What a layer is for; the value of the `dev.exportctl.role` annotation."""

    ARTIFACT = "artifact"
    METADATA = "metadata"
    VALIDATION = "validation"
    LOCKFILE = "lockfile"
    RECIPE = "recipe"
    REFERENCE = "reference"


def weight_media_type(is_directory: bool) -> str:
    """The ModelPack weight type for an export: directories are tarred, single files stored raw."""
    return WEIGHT_TAR if is_directory else WEIGHT_RAW
