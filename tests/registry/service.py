"""A real OCI registry for the registry tier: Debian's docker-registry (CNCF distribution 2.8) on 127.0.0.1.

Installed with apt when missing (as root), started in its own session with its pid written to a file, stopped
by that pid. The TLS variant gets a CA and a server certificate made here and an htpasswd (bcrypt) user.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from exportctl import proc

PACKAGES = {"docker-registry": "docker-registry", "skopeo": "skopeo"}
USER, PASSWORD = "ci-publisher", "s3cret-registry-pass"


@dataclass(frozen=True)
class Service:
    host: str  # 127.0.0.1:PORT
    root: Path
    ca_file: Path | None = None


def ensure_packages() -> str | None:
    """None when the programs are there (installed now if needed), else why they cannot be."""
    missing = sorted({pkg for program, pkg in PACKAGES.items() if shutil.which(program) is None})
    if not missing:
        return None
    if os.geteuid() != 0:
        return f"registry tier: {', '.join(missing)} missing and only root can apt-get install them"
    env = proc.clean_env({"DEBIAN_FRONTEND": "noninteractive"})
    if proc.run(["apt-get", "install", "-y", "--no-install-recommends", *missing], env=env).returncode != 0:
        proc.run(["apt-get", "update"], env=env, timeout=600)
        done = proc.run(["apt-get", "install", "-y", "--no-install-recommends", *missing], env=env, timeout=1800)
        if done.returncode != 0:
            return f"registry tier: apt-get install {' '.join(missing)} failed:\n{done.tail(10)}"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
def registry(root: Path, tls: bool = False) -> Iterator[Service]:
    """A docker-registry on 127.0.0.1 (with TLS + htpasswd when `tls`), stopped by pid afterwards."""
    import bcrypt

    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    lines = ["version: 0.1", "log: {level: warn}", f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, "
             "delete: {enabled: true}}", "http:", f"  addr: 127.0.0.1:{port}"]
    ca_file = None
    if tls:
        ca_file, cert, key = make_ca(root)
        lines += ["  tls:", f"    certificate: {cert}", f"    key: {key}"]
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
        (root / "htpasswd").write_text(f"{USER}:{hashed}\n")
        lines += ["auth:", "  htpasswd:", "    realm: exportctl-test", f"    path: {root / 'htpasswd'}"]
    (root / "config.yml").write_text("\n".join(lines) + "\n")
    pidfile, log = root / "registry.pid", root / "registry.log"
    script = 'echo $$ >"$0"; log=$1; shift; exec "$@" >"$log" 2>&1'  # the pid is the registry's own (exec)
    started = proc.run(["setsid", "-f", "sh", "-c", script, str(pidfile), str(log),
                        "docker-registry", "serve", str(root / "config.yml")], env=proc.clean_env())
    assert started.returncode == 0, started.output
    service = Service(f"127.0.0.1:{port}", root, ca_file)
    try:
        _wait(service, log)
        yield service
    finally:
        _stop(pidfile)


def _wait(service: Service, log: Path) -> None:
    scheme = "https" if service.ca_file else "http"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            requests.get(f"{scheme}://{service.host}/v2/", verify=str(service.ca_file or True), timeout=2)
            return
        time.sleep(0.2)
    raise RuntimeError(f"docker-registry did not answer on {service.host}:\n{log.read_text()[-2000:]}")


def _stop(pidfile: Path) -> None:
    for _ in range(50):
        if pidfile.is_file() and pidfile.read_text().strip():
            break
        time.sleep(0.1)
    pid = int(pidfile.read_text().strip())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
