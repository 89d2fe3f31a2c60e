"""A token service for the registry tier: what Docker Hub's or Harbor's auth service does, small enough to read.

The registry (Debian's docker-registry, configured with `auth: token`) is the thing under test; this is its
fixture. It answers `GET /token?service=…&scope=repository:NAME:ACTIONS` with a JWT the registry accepts, as
distribution 2.8 checks one (registry/auth/token): a JWS signed ES256 whose `x5c` header carries the signing
certificate, which chains to the registry's `rootcertbundle`; claims `iss` (the registry's `issuer`), `aud`
(its `service`), `exp`/`nbf`/`iat`, and `access` (type, name, actions) for the scopes asked. Only the user and
password it was made with get a token (HTTP Basic, as `docker login` credentials are sent); everyone else gets
401. It records who asked for what, so a test can see that the registry really sent its client here.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

SERVICE, ISSUER = "exportctl-test-registry", "exportctl-test-token-issuer"


@dataclass
class TokenService:
    realm: str  # http://127.0.0.1:PORT/token
    rootcertbundle: Path
    requests: list[dict[str, object]] = field(default_factory=list)  # user (or None), scopes, granted


def _signing_pair(directory: Path) -> tuple[object, bytes, Path]:
    """(EC private key, its self-signed certificate in DER, the certificate as the registry's rootcertbundle)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "exportctl test token signer")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    bundle = directory / "token-signer.pem"
    bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert.public_bytes(serialization.Encoding.DER), bundle


def _access(scopes: list[str]) -> list[dict[str, object]]:
    """`repository:team/name:pull,push` scopes (space-separated or repeated) as the token's access claims."""
    access = []
    for scope in (s for text in scopes for s in text.split()):
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        if kind == "repository" and name:
            access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]})
    return access


@contextlib.contextmanager
def token_service(directory: Path, user: str, password: str) -> Iterator[TokenService]:
    import jwt

    key, cert_der, bundle = _signing_pair(directory)
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    service = TokenService("", bundle)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet: pytest shows failures, not traffic
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            query = parse_qs(urlparse(self.path).query)
            authorized = secrets.compare_digest(self.headers.get("Authorization", ""), expected)
            access = _access(query.get("scope", []))
            service.requests.append({"user": user if authorized else None, "scopes": query.get("scope", []),
                                     "granted": authorized})
            if not authorized or query.get("service") != [SERVICE]:
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}')
                return
            now = int(time.time())
            claims = {"iss": ISSUER, "sub": user, "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
                      "jti": secrets.token_hex(8), "access": access}
            token = jwt.encode(claims, key, algorithm="ES256",  # type: ignore[arg-type]
                               headers={"x5c": [base64.b64encode(cert_der).decode()]})
            body = json.dumps({"token": token, "access_token": token, "expires_in": 300,
                               "issued_at": dt.datetime.fromtimestamp(now, dt.UTC).isoformat()}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    service.realm = f"http://127.0.0.1:{server.server_address[1]}/token"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
