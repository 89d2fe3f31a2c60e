"""Push and pull against a real registry (Debian docker-registry): round trip, skopeo both ways, signatures by
reference, TLS + htpasswd, and a registry that lies (changed bytes, sizes, paths, a huge manifest)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests

from exportctl import errors, proc
from exportctl.canonical import canonical_json
from exportctl.registry.client import Registry
from exportctl.registry.reference import parse
from exportctl.store import mediatypes as mt
from tests import services
from tests.conftest import exportctl

from . import service
from .conftest import docker_config
from .proxy import tampering

pytestmark = pytest.mark.registry


def _bundles(store: Path) -> list[str]:
    if not (store / "index.json").exists():
        return []
    return [m["digest"] for m in json.loads((store / "index.json").read_text())["manifests"]]


def test_push_pull_verify_and_second_push_uploads_nothing(plain_registry, signed_bundle, tmp_path):
    store, digest = signed_bundle["store"], signed_bundle["digest"]
    ref = f"{plain_registry.host}/exports/quickstart:v1"
    pushed = json.loads(exportctl("push", digest, ref, "--json", store=store).stdout)
    assert pushed["reference"] == f"{plain_registry.host}/exports/quickstart@{digest}"
    assert pushed["uploaded_blobs"] > 0 and len(pushed["referrers"]) == 3  # provenance, signature, ML-BOM
    again = json.loads(exportctl("push", digest, ref, "--json", store=store).stdout)
    assert again["uploaded_blobs"] == 0 and again["uploaded_bytes"] == 0

    empty = tmp_path / "empty-store"
    pulled = json.loads(exportctl("pull", ref, "--json", store=empty).stdout)
    assert pulled["bundle"] == digest
    # The signature is found by reference (tag-schema fallback: distribution 2.8 has no referrers API) ...
    assert sorted(pulled["referrers"]) == sorted(pushed["referrers"])
    # ... and it verifies against the signer's key, in the new store and straight from the registry.
    exportctl("verify", digest, "--key", signed_bundle["public"], store=empty)
    by_ref = exportctl("verify", f"{plain_registry.host}/exports/quickstart@{digest}", "--key",
                       signed_bundle["public"], "--json", store=tmp_path / "untouched")
    assert json.loads(by_ref.stdout)["signatures"][0]["status"] == "valid (key given)"
    assert not (tmp_path / "untouched").exists()  # verify REF does not write the user's store
    audit = json.loads(exportctl("audit", ref, "--json", store=empty).stdout)
    assert audit["bundle"] == digest if "bundle" in audit else digest in json.dumps(audit)
    summary = exportctl("report", ref, "--format", "md", store=empty).stdout  # a REF resolves as audit's does
    assert f"`{digest}`" in summary and "ML-BOM: CycloneDX 1.6 referrer" in summary

    raw = proc.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"], env=proc.clean_env())
    assert raw.returncode == 0, raw.output
    from exportctl.canonical import digest_bytes
    assert digest_bytes(raw.output.encode()) == digest  # the manifest bytes went up exactly as stored


def test_pull_reads_what_skopeo_copied_from_an_export(plain_registry, signed_bundle, tmp_path):
    store, digest = signed_bundle["store"], signed_bundle["digest"]
    exportctl("export", digest, tmp_path / "layout", store=store)
    ref = f"{plain_registry.host}/copied/quickstart:skopeo"
    copied = proc.run(["skopeo", "copy", "--preserve-digests", "--dest-tls-verify=false",
                       f"oci:{tmp_path / 'layout'}", f"docker://{ref}"], env=proc.clean_env(), timeout=300)
    assert copied.returncode == 0, copied.output
    pulled = json.loads(exportctl("pull", ref, "--json", store=tmp_path / "store").stdout)
    assert pulled["bundle"] == digest
    exportctl("verify", digest, store=tmp_path / "store")


def test_tls_registry_with_htpasswd_needs_its_ca_and_credentials(tls_registry, signed_bundle, tmp_path):
    store, digest = signed_bundle["store"], signed_bundle["digest"]
    ref = f"{tls_registry.host}/secure/quickstart:v1"
    creds = docker_config(tmp_path / "docker", tls_registry.host, service.USER, service.PASSWORD)

    untrusted = exportctl("push", digest, ref, store=store, env=creds, check=False)
    assert untrusted.returncode == errors.REGISTRY_ERROR and "--ca-file" in untrusted.stderr

    anonymous = exportctl("push", digest, ref, "--ca-file", tls_registry.ca_file, store=store, check=False,
                          env={"DOCKER_CONFIG": str(tmp_path / "nobody")})
    assert anonymous.returncode == errors.REGISTRY_ERROR and "docker login" in anonymous.stderr

    pushed = exportctl("push", digest, ref, "--ca-file", tls_registry.ca_file, store=store, env=creds)
    assert pushed.stdout.strip() == f"{tls_registry.host}/secure/quickstart@{digest}"
    pulled = exportctl("pull", ref, "--ca-file", tls_registry.ca_file, store=tmp_path / "s", env=creds)
    assert pulled.stdout.strip() == digest
    for done in (untrusted, anonymous, pushed, pulled):
        assert service.PASSWORD not in done.stdout + done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("mode", ["flip", "shrink", "bloat"])
def test_a_lying_registry_is_refused_and_nothing_is_stored(plain_registry, signed_bundle, tmp_path, mode):
    store, digest = signed_bundle["store"], signed_bundle["digest"]
    exportctl("push", digest, f"{plain_registry.host}/lies/quickstart:v1", store=store)
    with tampering(plain_registry.host, mode) as proxy:
        done = exportctl("pull", f"{proxy}/lies/quickstart:v1", store=tmp_path / "s", check=False)
    assert done.returncode == errors.VERIFY_FAILED, done.stderr
    assert "nothing was stored" in done.stderr and "Traceback" not in done.stderr
    assert _bundles(tmp_path / "s") == [] and not any((tmp_path / "s" / "blobs" / "sha256").iterdir())


@pytest.mark.parametrize("lie", ["size", "path"])
def test_a_manifest_that_lies_is_refused(plain_registry, signed_bundle, tmp_path, lie):
    """Manifests a registry happily stores: a layer whose descriptor understates its size, a title with '..'."""
    store, digest = signed_bundle["store"], signed_bundle["digest"]
    ref = parse(f"{plain_registry.host}/crafted/quickstart:base")
    exportctl("push", digest, str(ref), store=store)
    manifest = json.loads((Path(store) / "blobs" / "sha256" / digest[7:]).read_bytes())
    if lie == "size":
        manifest["layers"][-3]["size"] -= 100
    else:
        manifest["layers"][0]["annotations"][mt.ANNOTATION_TITLE] = "../../etc/cron.d/evil"
    Registry(ref).put_manifest(canonical_json(manifest), mt.OCI_MANIFEST, lie)
    done = exportctl("pull", f"{plain_registry.host}/crafted/quickstart:{lie}", store=tmp_path / "s", check=False)
    assert done.returncode == errors.VERIFY_FAILED, done.stderr
    assert _bundles(tmp_path / "s") == []


def test_no_registry_answers(tmp_path, signed_bundle):
    port = services.free_port()
    done = exportctl("push", signed_bundle["digest"], f"127.0.0.1:{port}/x/y:z", store=signed_bundle["store"],
                     check=False, env={"HOME": os.environ.get("HOME", "/root")})
    assert done.returncode == errors.REGISTRY_ERROR and "Traceback" not in done.stderr


def test_bearer_tokens_from_a_token_service_with_docker_config_credentials(token_registry, signed_bundle, tmp_path):
    """distribution 2.8 with `auth: token`: push and pull get their tokens with the Docker config's credentials;
    no credentials, or a wrong password, exit 14 naming the registry; the password is never printed."""
    registry, issuer = token_registry
    store, digest = signed_bundle["store"], signed_bundle["digest"]
    ref = f"{registry.host}/tokens/quickstart:v1"
    # The registry itself wants a token (not only our client's choice): its challenge names the realm.
    challenge = requests.get(f"http://{registry.host}/v2/tokens/quickstart/manifests/v1", timeout=10)
    assert challenge.status_code == 401 and issuer.realm in challenge.headers["WWW-Authenticate"]

    anonymous = exportctl("push", digest, ref, store=store, check=False, env={"DOCKER_CONFIG": str(tmp_path)})
    assert anonymous.returncode == errors.REGISTRY_ERROR and registry.host in anonymous.stderr, anonymous.stderr

    creds = docker_config(tmp_path / "docker", registry.host, service.USER, service.PASSWORD)
    pushed_run = exportctl("push", digest, ref, "--json", store=store, env=creds)
    pushed = json.loads(pushed_run.stdout)
    # the signature, the provenance and the ML-BOM
    assert pushed["reference"] == f"{registry.host}/tokens/quickstart@{digest}" and len(pushed["referrers"]) == 3
    pulled_run = exportctl("pull", ref, "--json", store=tmp_path / "pulled", env=creds)
    pulled = json.loads(pulled_run.stdout)
    assert pulled["bundle"] == digest and sorted(pulled["referrers"]) == sorted(pushed["referrers"])
    exportctl("verify", digest, "--key", signed_bundle["public"], store=tmp_path / "pulled")
    granted = [scope for r in issuer.requests if r["granted"] for scope in r["scopes"]]  # type: ignore[attr-defined]
    assert any(s.startswith("repository:tokens/quickstart:") and "push" in s for s in granted), issuer.requests
    assert any(s == "repository:tokens/quickstart:pull" for s in granted), issuer.requests

    wrong = docker_config(tmp_path / "wrong", registry.host, service.USER, "not-the-password-42")
    refused = exportctl("pull", ref, store=tmp_path / "refused", env=wrong, check=False)
    assert refused.returncode == errors.REGISTRY_ERROR, refused.stderr
    assert registry.host in refused.stderr and "Traceback" not in refused.stderr
    assert _bundles(tmp_path / "refused") == []
    secrets = [service.PASSWORD, "not-the-password-42",
               *(json.loads((tmp_path / d / "config.json").read_text())["auths"][registry.host]["auth"]
                 for d in ("docker", "wrong"))]  # the base64 user:password of each Docker config too
    for done in (anonymous, pushed_run, pulled_run, refused):
        assert not [s for s in secrets if s in done.stdout + done.stderr]
