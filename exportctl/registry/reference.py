"""Registry references: `HOST[:PORT]/REPO[:TAG][@sha256:…]`, parsed as Docker and ORAS parse them.

A reference always names its registry host: exportctl has no default registry (Docker Hub would be a surprising
place to publish a model by accident). Loopback hosts speak plain HTTP, as Docker treats them.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from pathlib import Path

from exportctl.canonical import is_digest
from exportctl.errors import ConfigError

# distribution/reference's grammar, trimmed to what a reference with an explicit host needs.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_HOST = re.compile(r"^(?:\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?$")
_FORMAT = "HOST[:PORT]/REPO[:TAG] or HOST[:PORT]/REPO@sha256:…"


@dataclass(frozen=True)
class Reference:
    host: str  # "127.0.0.1:5000", "ghcr.io"
    repository: str  # "team/yolo-exports"
    tag: str | None = None
    digest: str | None = None

    @property
    def target(self) -> str:
        """What the manifest endpoint is addressed by: the digest if there is one, else the tag."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> Reference:
        return replace(self, digest=digest)

    def __str__(self) -> str:
        text = f"{self.host}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        return f"{text}@{self.digest}" if self.digest else text

    @property
    def pinned(self) -> str:
        """`HOST/REPO@sha256:…`: what `push` prints (the tag stays out, it can move)."""
        return f"{self.host}/{self.repository}@{self.digest}"

    @property
    def loopback(self) -> bool:
        name = self.host.rsplit(":", 1)[0] if not self.host.endswith("]") else self.host
        name = name.strip("[]")
        if name == "localhost":
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False


def looks_like_reference(text: str) -> bool:
    """True for `HOST/…` text that is not an existing path: how verify/audit/rebuild tell a registry apart."""
    if "/" not in text or Path(text).exists():
        return False
    host = text.split("/", 1)[0]
    return host == "localhost" or "." in host or ":" in host


def parse(text: str) -> Reference:
    """Parse a reference or say exactly which part is wrong (exit 3)."""
    def bad(problem: str) -> ConfigError:
        return ConfigError(f"registry reference '{text}': {problem}", hint=f"write it as {_FORMAT}")

    rest, _, digest = text.strip().partition("@")
    if digest and not is_digest(digest):
        raise bad(f"'{digest}' is not a sha256 digest")
    if "/" not in rest:
        raise bad("it names no registry host (exportctl has no default registry)")
    host, path = rest.split("/", 1)
    if not _HOST.match(host) or not ("." in host or ":" in host or host == "localhost"):
        raise bad(f"'{host}' is not a registry host (a name with a dot or a port, or localhost)")
    tag = None
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, tag = path.rsplit(":", 1)
        if not _TAG.match(tag):
            raise bad(f"'{tag}' is not a valid tag")
    if not _REPOSITORY.match(path):
        raise bad(f"'{path}' is not a valid repository name (lowercase letters, digits, separators)")
    return Reference(host, path, tag, digest or None)
