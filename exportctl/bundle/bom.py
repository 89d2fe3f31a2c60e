"""The bundle's ML-BOM: a CycloneDX 1.6 document of what the bundle holds and what made it.

Components: every artifact (a `machine-learning-model`, its sha256 the artifact's digest), the checkpoint they
were exported from, and every package of the toolchain lockfiles (a `library` with its purl and the lock's
hashes). Each artifact's model card carries its validation numbers (gate values, labelled-set accuracy) with
format and precision as the metric's `slice`. The BOM is a pure function of the bundle: its serial number
comes from the bundle digest, its timestamp from the recipe's source_date_epoch, so every build of a bundle
attaches the same BOM (the same referrer: the store lists it once).

It is stored as a referrer of the bundle (artifactType application/vnd.cyclonedx+json), attached when a build or
a merge stores the bundle, exported, pushed and pulled with the bundle's other referrers.

cyclonedx-python-lib builds the document; it has no model-card classes yet (a TODO in its Component), so the
model cards are added to its JSON output, and the tests validate the result with the library's own validator.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import TYPE_CHECKING, Any

from exportctl import errors
from exportctl.bundle.diff import parse_pins
from exportctl.bundle.read import BundleInfo, CellRecord, read_bundle, read_text_layer, recipe_of, validation_of
from exportctl.canonical import canonical_json
from exportctl.store import mediatypes as mt
from exportctl.store import referrers as ref
from exportctl.store.layout import Store

if TYPE_CHECKING:
    from cyclonedx.model.component import Component

SPEC_VERSION = "1.6"
CHECKPOINT_REF = "checkpoint"
# uuid5 namespace of exportctl's BOM serial numbers: bundle digest -> urn:uuid (the same bundle, the same BOM).
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:exportctl:ml-bom")


def _ref(cell: str) -> str:
    return f"artifact:{cell}"


def toolchain_of(info: BundleInfo, cell: CellRecord) -> tuple[str, dict[str, Any]]:
    """(name, {lock, platform}) of the toolchain a cell ran in: a merged cell of another platform has its own."""
    fmt = cell.name.split("/", 1)[0]
    for name, facts in sorted(info.toolchains.items()):
        if name.split("@", 1)[0] == fmt and facts.get("platform") in (cell.platform, None):
            return name, facts
    return fmt, info.toolchains.get(fmt, {})


def lock_pins(store: Store, info: BundleInfo) -> dict[str, dict[str, dict[str, Any]]]:
    """lock digest -> package -> {version, hashes}, for every lockfile in the bundle."""
    return {la.digest: parse_pins(read_text_layer(store, la) or "") for la in info.by_role(mt.Role.LOCKFILE)}


def _metric(kind: str, value: Any, slice_: str) -> dict[str, str]:
    return {"type": kind, "value": repr(value) if isinstance(value, float) else str(value), "slice": slice_}


def performance_metrics(validation: dict[str, Any] | None, cell: str) -> list[dict[str, str]]:
    """A cell's gate values and labelled-set accuracy as CycloneDX performance metrics."""
    fmt, precision = cell.split("/", 1)
    where = f"format={fmt},precision={precision}"
    found = [_metric(g["gate"], g["value"], where) for g in (validation or {}).get("gates", [])
             if g.get("ran") and g.get("value") is not None]
    accuracy = (validation or {}).get("accuracy") or {}
    dataset = (accuracy.get("dataset") or {}).get("digest")
    on = f"{where},dataset={dataset}" if dataset else where
    for name, m in sorted((accuracy.get("metrics") or {}).items()):
        if m.get("artifact") is not None:
            found.append(_metric(name, m["artifact"], on))
        if m.get("drop") is not None:
            found.append(_metric(f"{name} drop", m["drop"], on))
    return found


def _reference_metrics(validations: dict[str, dict[str, Any] | None]) -> list[dict[str, str]]:
    """The PyTorch reference's accuracy (the same in every cell that measured it): the checkpoint's metrics."""
    for validation in validations.values():
        accuracy = (validation or {}).get("accuracy") or {}
        if accuracy.get("metrics"):
            dataset = (accuracy.get("dataset") or {}).get("digest")
            where = f"pytorch reference,dataset={dataset}" if dataset else "pytorch reference"
            return [_metric(name, m["reference"], where) for name, m in sorted(accuracy["metrics"].items())
                    if m.get("reference") is not None]
    return []


def _sha256(digest: str) -> Any:
    from cyclonedx.model import HashAlgorithm, HashType

    return HashType(alg=HashAlgorithm.SHA_256, content=digest.split(":", 1)[1])


def _components(store: Store, info: BundleInfo, recipe: dict[str, Any]) -> tuple[Component, Component,
                                                                                 list[Component], list[Component]]:
    """(the bundle, the checkpoint, the artifacts, the libraries), as cyclonedx-python-lib components."""
    from cyclonedx.model import Property
    from cyclonedx.model.component import Component, ComponentType
    from packageurl import PackageURL

    bundle = Component(name=info.name, type=ComponentType.FILE, bom_ref="bundle", hashes=[_sha256(info.digest)],
                       purl=PackageURL(type="oci", name=info.name, version=info.digest),
                       properties=[Property(name="exportctl:mediaType", value=mt.OCI_MANIFEST)])
    source = recipe.get("checkpoint") or {}
    demo = source.get("demo")
    name = f"{demo['arch']} (demo checkpoint, seed {demo['seed']})" if demo else str(source.get("path"))
    checkpoint = Component(name=name, type=ComponentType.MACHINE_LEARNING_MODEL, bom_ref=CHECKPOINT_REF,
                           hashes=[_sha256(info.checkpoint)])
    pins = lock_pins(store, info)
    libraries: dict[str, tuple[str, str, set[str], set[str]]] = {}  # purl -> (name, version, hashes, toolchains)
    for toolchain, facts in sorted(info.toolchains.items()):
        for package, pin in sorted(pins.get(str(facts.get("lock")), {}).items()):
            purl = PackageURL(type="pypi", name=package, version=pin["version"]).to_string()
            entry = libraries.setdefault(purl, (package, pin["version"], set(), set()))
            entry[2].update(pin["hashes"])
            entry[3].add(toolchain)
    libs = [Component(name=package, version=version, type=ComponentType.LIBRARY, bom_ref=purl,
                      purl=PackageURL.from_string(purl), hashes=[_sha256(h) for h in sorted(hashes)],
                      properties=[Property(name="exportctl:toolchain", value=t) for t in sorted(toolchains)])
            for purl, (package, version, hashes, toolchains) in sorted(libraries.items())]
    artifacts = []
    for cell in info.cells:
        layer = info.cell_layer(cell.name, mt.Role.ARTIFACT)
        if layer is None:
            raise errors.VerifyFailed(f"bundle {info.digest}: cell {cell.name} has no artifact layer")
        fmt, precision = cell.name.split("/", 1)
        facts = {"cell": cell.name, "format": fmt, "precision": precision, "status": str(cell.status),
                 "mediaType": layer.media_type, "size": str(layer.size), "toolchain": toolchain_of(info, cell)[0]}
        artifacts.append(Component(name=layer.title, type=ComponentType.MACHINE_LEARNING_MODEL,
                                   bom_ref=_ref(cell.name), hashes=[_sha256(layer.digest)],
                                   properties=[Property(name=f"exportctl:{k}", value=v) for k, v in facts.items()]))
    return bundle, checkpoint, artifacts, libs


def document(store: Store, info: BundleInfo) -> dict[str, Any]:
    """The ML-BOM of bundle `info`, as a JSON value (canonical_json gives its stored bytes)."""
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.output.json import JsonV1Dot6

    # here, not at the top: the recipe model (pydantic) is for making a BOM; `verify` only checks one
    from exportctl.recipe.model import DEFAULT_SOURCE_DATE_EPOCH

    recipe = recipe_of(store, info)
    bundle, checkpoint, artifacts, libraries = _components(store, info, recipe)
    # a recipe that leaves it out means the recipe model's default, as it did when the bundle was built
    when = dt.datetime.fromtimestamp(int(recipe.get("source_date_epoch", DEFAULT_SOURCE_DATE_EPOCH)), dt.UTC)
    bom = Bom(serial_number=uuid.uuid5(_NAMESPACE, info.digest), metadata=BomMetaData(timestamp=when,
                                                                                      component=bundle))
    for component in (checkpoint, *artifacts, *libraries):
        bom.components.add(component)
    for artifact, cell in zip(artifacts, info.cells, strict=True):  # made from the checkpoint by its toolchain
        toolchain = toolchain_of(info, cell)[0]
        bom.register_dependency(artifact, [checkpoint, *(lib for lib in libraries
                                                         if any(p.value == toolchain for p in lib.properties))])
    bom.register_dependency(bundle, [checkpoint, *artifacts])
    doc: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
    validations = {c.name: validation_of(store, info, c.name) for c in info.cells}
    tasks = {str(c.entry.get("task")) for c in info.cells if c.entry.get("task")}
    cards = {_ref(c): performance_metrics(v, c) for c, v in validations.items()}
    cards[CHECKPOINT_REF] = _reference_metrics(validations)
    for component in doc["components"]:
        metrics = cards.get(component["bom-ref"])
        if metrics is None:
            continue
        card: dict[str, Any] = {"bom-ref": f"model-card:{component['bom-ref']}"}
        if len(tasks) == 1:
            card["modelParameters"] = {"task": next(iter(tasks))}
        if metrics:
            card["quantitativeAnalysis"] = {"performanceMetrics": metrics}
        component["modelCard"] = card
    return doc


def encode(doc: dict[str, Any]) -> bytes:
    return canonical_json(doc)


def attached(store: Store, digest: str) -> ref.Referrer | None:
    """The bundle's BOM referrer (the first one attached), or None."""
    return next((r for r in ref.load(store, digest) if r.artifact_type == ref.BOM_TYPE), None)


def attach(store: Store, digest: str) -> ref.Referrer:
    """Make the bundle's BOM and store it as a referrer; the same bundle always gives the same referrer."""
    entry = store.resolve(digest)
    info = read_bundle(store, entry.digest)
    doc = document(store, info)
    created = doc["metadata"]["timestamp"].replace("+00:00", "Z")  # the BOM's own time: no clock in the digest
    referrer = ref.make(entry, ref.BOM_TYPE, [(encode(doc), ref.BOM_TYPE)],
                        {ref.ANNOTATION_CREATED: created, "org.cyclonedx.spec-version": SPEC_VERSION})
    ref.attach(store, referrer)
    return referrer


def check(data: bytes, info: BundleInfo) -> dict[str, Any]:
    """A BOM found beside `info` must be a CycloneDX document of exactly this bundle: its serial number, the
    bundle's digest and every artifact's digest (VerifyFailed naming what does not match)."""
    try:
        doc = json.loads(data)
        hashes = {f"sha256:{h['content']}" for c in [doc["metadata"]["component"], *doc.get("components", [])]
                  for h in c.get("hashes", []) if h.get("alg") == "SHA-256"}
        serial = doc["serialNumber"]
    except (ValueError, KeyError, TypeError) as e:
        raise errors.VerifyFailed(f"the ML-BOM beside {info.digest} is not a CycloneDX document ({e!r})") from None
    if serial != f"urn:uuid:{uuid.uuid5(_NAMESPACE, info.digest)}" or info.digest not in hashes:
        raise errors.VerifyFailed(f"the ML-BOM {serial} does not describe bundle {info.digest}")
    missing = [c.name for c in info.cells if c.artifact not in hashes]
    if missing:
        raise errors.VerifyFailed(f"the ML-BOM of {info.digest} lacks the artifacts of {', '.join(missing)}")
    return {"serial": serial, "components": len(doc.get("components", []))}
