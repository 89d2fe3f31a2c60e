"""A real OCI registry for the registry tier: Debian's docker-registry (CNCF distribution 2.8) on 127.0.0.1.

Installed with apt when missing (as root), started in its own session with its pid written to a file, stopped
by that pid (tests/services.py). The TLS variant gets a CA and a server certificate made here and an htpasswd
(bcrypt) user; the token variant sends clients to a token service (tests/registry/tokens.py) for Bearer tokens.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from tests import services

from . import tokens
from .tokens import TokenService

PACKAGES = {"docker-registry": "docker-registry", "skopeo": "skopeo"}
USER, PASSWORD = "ci-publisher", "s3cret-registry-pass"


@dataclass(frozen=True)
class Service:
    host: str  # 127.0.0.1:PORT
    root: Path
    ca_file: Path | None = None


def ensure_packages() -> str | None:
    """None when the programs are there (installed now if needed), else why they cannot be."""
    return services.ensure_packages("registry tier", PACKAGES)


def make_ca(directory: Path) -> tuple[Path, Path, Path]:
    """(ca.pem, server.pem, server.key): a self-signed CA and a server certificate for 127.0.0.1."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("exportctl test CA")).issuer_name(name("exportctl test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@contextlib.contextmanager
def registry(root: Path, tls: bool = False, token: TokenService | None = None) -> Iterator[Service]:
    """A docker-registry on 127.0.0.1 (with TLS + htpasswd when `tls`; Bearer tokens from `token`'s service when
    given), stopped by pid afterwards."""
    import bcrypt

    root.mkdir(parents=True, exist_ok=True)
    port = services.free_port()
    lines = ["version: 0.1", "log: {level: warn}", f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, "
             "delete: {enabled: true}}", "http:", f"  addr: 127.0.0.1:{port}"]
    ca_file = None
    if tls:
        ca_file, cert, key = make_ca(root)
        lines += ["  tls:", f"    certificate: {cert}", f"    key: {key}"]
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
        (root / "htpasswd").write_text(f"{USER}:{hashed}\n")
        lines += ["auth:", "  htpasswd:", "    realm: exportctl-test", f"    path: {root / 'htpasswd'}"]
    elif token is not None:
        lines += ["auth:", "  token:", f"    realm: {token.realm}", f"    service: {tokens.SERVICE}",
                  f"    issuer: {tokens.ISSUER}", f"    rootcertbundle: {token.rootcertbundle}"]
    (root / "config.yml").write_text("\n".join(lines) + "\n")
    pidfile, log = root / "registry.pid", root / "registry.log"
    services.spawn(["docker-registry", "serve", str(root / "config.yml")], pidfile, log)
    service = Service(f"127.0.0.1:{port}", root, ca_file)
    try:
        _wait(service, log)
        yield service
    finally:
        services.stop(pidfile)


def _wait(service: Service, log: Path) -> None:
    scheme = "https" if service.ca_file else "http"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            requests.get(f"{scheme}://{service.host}/v2/", verify=str(service.ca_file or True), timeout=2)
            return
        time.sleep(0.2)
    raise RuntimeError(f"docker-registry did not answer on {service.host}:\n{log.read_text()[-2000:]}")
