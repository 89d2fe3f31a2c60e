"""HTTP(S) to one registry, as Docker does it: scheme, TLS trust and the answers to auth challenges.

Scheme: a loopback registry is tried over HTTPS and, when it does not speak TLS at all, over plain HTTP
(Docker treats 127.0.0.0/8 as an insecure registry); every other host is HTTPS only, verified against the
system's trust store or `--ca-file`. `--insecure` is the one explicit way to skip verification or use HTTP
elsewhere.

Auth: a 401's `WWW-Authenticate` challenge says what to do. `Basic`: the Docker config's credentials for the
host. `Bearer`: oras-py's token exchange (the realm, service and scope of the challenge, the same credentials
when there are some, anonymously otherwise), one token per scope. Credentials and tokens live only in this
object's memory and in request headers: no message, log or exception text includes them.

oras-py's own request method is not used: its retry decorator sleeps for minutes on a refused connection, its
uploads read whole blobs into memory and its manifest upload re-serializes the JSON (the digest would move).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from exportctl.errors import RegistryError
from exportctl.registry.credentials import lookup
from exportctl.registry.reference import Reference

_TIMEOUT = (10, 300)  # connect, read (seconds): a large blob streams for a while, a dead host fails fast


@dataclass(frozen=True)
class TransportOptions:
    ca_file: Path | None = None
    insecure: bool = False


def _tls_mismatch(error: Exception) -> bool:
    """The peer answered a TLS hello with something that is not TLS (a plain-HTTP registry)."""
    text = str(error)
    return "CERTIFICATE_VERIFY_FAILED" not in text and any(
        s in text for s in ("WRONG_VERSION_NUMBER", "record layer failure", "wrong version number", "EOF occurred"))


@dataclass
class Transport:
    ref: Reference
    options: TransportOptions = field(default_factory=TransportOptions)
    session: requests.Session = field(default_factory=requests.Session)
    scheme: str = ""
    _authorization: str | None = field(default=None, repr=False)
    _tokens: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.session.trust_env = False  # no proxy or .netrc from the environment decides where bytes go
        if self.options.ca_file is not None and not self.options.ca_file.is_file():
            raise RegistryError(f"--ca-file {self.options.ca_file}: no such file")

    @property
    def verify(self) -> bool | str:
        if self.options.insecure:
            return False
        return str(self.options.ca_file) if self.options.ca_file else True

    def _choose_scheme(self) -> None:
        """Ping /v2/ over HTTPS; fall back to HTTP only for loopback or --insecure, and only when TLS is absent."""
        if self.scheme:
            return
        try:
            self.session.get(f"https://{self.ref.host}/v2/", verify=self.verify, timeout=_TIMEOUT)
            self.scheme = "https"
            return
        except requests.exceptions.SSLError as e:
            if not ((self.ref.loopback or self.options.insecure) and _tls_mismatch(e)):
                hint = "pass --ca-file with the registry's CA certificate (or --insecure to skip verification)"
                raise RegistryError(f"{self.ref.host}: the TLS connection failed ({_first_line(e)})",
                                    hint=hint) from None
        except requests.exceptions.ConnectionError as e:
            if not (self.ref.loopback or self.options.insecure):
                raise RegistryError(f"{self.ref.host}: cannot connect ({_first_line(e)})",
                                    hint="check the host and port, and that the registry is running") from None
        self.scheme = "http"

    def url(self, path: str) -> str:
        self._choose_scheme()
        return f"{self.scheme}://{self.ref.host}/v2/{self.ref.repository}/{path}"

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                body: bytes | Path | None = None, stream: bool = False, url: str | None = None,
                ok: tuple[int, ...] = (200,)) -> requests.Response:
        """One request, answering at most one auth challenge; a status outside `ok` raises RegistryError."""
        target = url or self.url(path)
        for attempt in (1, 2):
            sent = dict(headers or {})
            if self._authorization:
                sent["Authorization"] = self._authorization
            try:
                with _body(body) as data:
                    response = self.session.request(method, target, headers=sent, data=data, stream=stream,
                                                     verify=self.verify, timeout=_TIMEOUT, allow_redirects=True)
            except requests.exceptions.RequestException as e:
                raise RegistryError(f"{self.ref.host}: {method} {_path_of(target)} failed ({_first_line(e)})",
                                    hint="check that the registry is reachable") from None
            if response.status_code == 401 and attempt == 1:
                self._answer(response)
                continue
            break
        if response.status_code not in ok:
            raise RegistryError(f"{self.ref.host}: {method} {_path_of(target)} answered {response.status_code} "
                                f"{_registry_message(response)}", hint=_hint(response.status_code))
        return response

    def _answer(self, response: requests.Response) -> None:
        """Set the Authorization header that the 401's challenge asks for."""
        from oras.auth.utils import parse_auth_header

        challenge = response.headers.get("WWW-Authenticate", "")
        scheme = challenge.split(" ", 1)[0].lower()
        basic = lookup(self.ref.host)
        if scheme == "basic":
            if basic is None:
                raise RegistryError(f"{self.ref.host} asks for credentials and the Docker config has none for it",
                                    hint="run `docker login` (or write ~/.docker/config.json / $DOCKER_CONFIG)")
            self._authorization = f"Basic {basic}"
        elif scheme == "bearer":
            parsed = parse_auth_header(challenge)
            scope = str(parsed.scope or "")
            if scope not in self._tokens:
                self._tokens[scope] = self._token(parsed, basic)
            self._authorization = f"Bearer {self._tokens[scope]}"
        else:
            raise RegistryError(f"{self.ref.host} asks for an authentication scheme exportctl does not speak "
                                f"({scheme or 'no WWW-Authenticate header'})")

    def _token(self, challenge: Any, basic: str | None) -> str:
        """oras-py's token exchange with the challenge's realm/service/scope, using our session and trust."""
        from urllib.parse import urlsplit

        from oras.auth import get_auth_backend

        realm = str(challenge.realm or "")
        where = urlsplit(realm)
        if where.scheme != "https" and not self.options.insecure and not Reference(
                where.netloc or "?", "r").loopback:  # credentials never travel in the clear off this machine
            raise RegistryError(f"{self.ref.host} sends clients for tokens to {realm or 'no realm'}, which is not "
                                "HTTPS", hint="fix the registry's token realm, or pass --insecure to send anyway")
        backend = get_auth_backend("token", self.session, insecure=self.scheme == "http", tls_verify=self.verify)
        if basic is not None:
            backend._basic_auth = basic
        try:
            token = (backend.request_token(challenge) if basic is not None
                     else backend.request_anonymous_token(challenge))
        except (requests.exceptions.RequestException, ValueError) as e:  # unreachable, or an answer that is not JSON
            raise RegistryError(f"{self.ref.host}: its token service {realm} failed ({_first_line(e)})",
                                hint="check that the token service is reachable from here") from None
        if not token:
            scope = challenge.scope or "this registry"
            if basic is None:
                raise RegistryError(f"{self.ref.host}: its token service {realm} gives no anonymous token for {scope}",
                                    hint="run `docker login` (or write ~/.docker/config.json / $DOCKER_CONFIG)")
            raise RegistryError(f"{self.ref.host}: its token service {realm} refused the Docker config's "
                                f"credentials for {scope}",
                                hint="check the user and password `docker login` stored for this registry")
        return str(token)


class _body:
    """A request body that can be sent twice (the auth retry): a Path is reopened for each attempt."""

    def __init__(self, body: bytes | Path | None) -> None:
        self.body = body
        self.file: Any = None

    def __enter__(self) -> Any:
        if isinstance(self.body, Path):
            self.file = open(self.body, "rb")
            return self.file
        return self.body

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__


def _path_of(url: str) -> str:
    return "/" + url.split("/", 3)[-1].split("?", 1)[0]


def _registry_message(response: requests.Response) -> str:
    """The registry's own error codes (OCI error body), never headers (they may echo credentials)."""
    try:
        errors = response.json().get("errors", [])
        return "(" + "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict)) + ")"
    except (ValueError, AttributeError):
        return ""


def _hint(status: int) -> str:
    if status in (401, 403):
        return "the registry refused these credentials for this repository; check `docker login`"
    if status == 404:
        return "check the repository and tag (or digest)"
    return "see the registry's log"


def iter_limited(response: requests.Response, limit: int, what: str) -> Iterator[bytes]:
    """The body in chunks, refusing (exit 7) the moment it passes `limit` bytes."""
    from exportctl.errors import VerifyFailed

    seen = 0
    for chunk in response.iter_content(chunk_size=1 << 20):
        seen += len(chunk)
        if seen > limit:
            response.close()
            raise VerifyFailed(f"{what} is larger than {limit} bytes: the registry sent more than expected",
                               hint="the registry serves other content than the reference names; nothing was stored")
        yield chunk
