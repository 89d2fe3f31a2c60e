"""The registry tier's machine: Debian's docker-registry on 127.0.0.1 with TLS + htpasswd, and a signed
quickstart bundle to publish (the plain registry, which tests/integration needs too, is in tests/conftest.py).
Skipped, with the reason, only where the packages cannot be installed."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import exportctl

from . import service, tokens


@pytest.fixture(scope="session")
def tls_registry(registry_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[service.Service]:
    with service.registry(tmp_path_factory.mktemp("registry-tls"), tls=True) as running:
        yield running


@pytest.fixture(scope="session")
def token_registry(registry_tools: None, tmp_path_factory: pytest.TempPathFactory,
                   ) -> Iterator[tuple[service.Service, tokens.TokenService]]:
    """A registry that wants Bearer tokens, and the token service that issues them (to USER/PASSWORD only)."""
    root = tmp_path_factory.mktemp("registry-token")
    with tokens.token_service(root, service.USER, service.PASSWORD) as issuer, \
            service.registry(root, token=issuer) as running:
        yield running, issuer


@pytest.fixture(scope="session")
def signed_bundle(quickstart_builds: dict[str, object], tmp_path_factory: pytest.TempPathFactory,
                  ) -> dict[str, object]:
    """A copy of the quickstart store whose bundle is signed by a fresh key (the shared store stays unsigned)."""
    base = tmp_path_factory.mktemp("signed")
    store = base / "store"
    shutil.copytree(Path(str(quickstart_builds["store"])), store)
    digest = str(dict(quickstart_builds["a"])["bundle"])  # type: ignore[call-overload]
    key = base / "key.pem"
    exportctl("keygen", key)
    exportctl("sign", digest, "--key", key, store=store)
    return {"store": store, "digest": digest, "public": base / "key.pub.pem"}


def docker_config(directory: Path, host: str, user: str, password: str) -> dict[str, str]:
    """A DOCKER_CONFIG with inline credentials for `host`, as `docker login` writes it."""
    import base64

    directory.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (directory / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return {"DOCKER_CONFIG": str(directory)}
