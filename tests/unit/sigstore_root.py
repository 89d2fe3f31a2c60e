"""A self-made Sigstore for offline tests: a private CA as Fulcio, a Rekor log key and a CT log key, the
`trusted_root.json` that names them, and Sigstore bundles they vouch for, in the exact formats sigstore-python's
Verifier checks (a v0.3 bundle with a dsse/0.0.1 log entry: inclusion proof, signed checkpoint, inclusion
promise; a leaf certificate carrying Fulcio's identity extensions and an embedded precertificate SCT).

Nothing of sigstore-python is replaced: the formats follow RFC 6962 (Merkle trees, SCTs), the C2SP signed-note
checkpoint and Rekor's dsse entry, so the library's own verification code decides.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import struct
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from exportctl.canonical import canonical_json

OIDC_ISSUER = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")  # Fulcio's v1 issuer extension: raw bytes
OIDC_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")  # the same as a DER UTF8String
SCT_LIST = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
LOG_ORIGIN = "rekor.exportctl.test - 2605"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _log_id(key: ec.EllipticCurvePrivateKey) -> bytes:
    """RFC 6962 §3.2: a log's ID is the SHA-256 of its public key (Rekor and CT logs alike)."""
    return hashlib.sha256(_spki(key)).digest()


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def _der_octets(data: bytes) -> bytes:
    length = len(data)
    encoded = bytes([length]) if length < 0x80 else bytes([0x80 | 2]) + struct.pack(">H", length)
    return b"\x04" + encoded + data


def _utf8_string(text: str) -> bytes:
    data = text.encode()
    assert len(data) < 0x80
    return b"\x0c" + bytes([len(data)]) + data


def _leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _tree_hash(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle Tree Hash of already hashed leaves."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _tree_hash(leaves[:k]) + _tree_hash(leaves[k:])).digest()


def _inclusion_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 audit path, lowest level first (the order Rekor serves)."""
    if len(leaves) == 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if index < k:
        return [*_inclusion_path(index, leaves[:k]), _tree_hash(leaves[k:])]
    return [*_inclusion_path(index - k, leaves[k:]), _tree_hash(leaves[:k])]


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "exportctl.test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def fulcio_ca(cn: str, now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed root shaped like Fulcio's (CA, keyCertSign, critical basic constraints)."""
    key = ec.generate_private_key(ec.SECP384R1())
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA384()))
    return key, cert


@dataclass
class Sigstore:
    """Fulcio (a CA), Rekor (a log key; each bundle is the last of five entries of a fresh tree) and a CT log,
    all in this process."""

    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC).replace(microsecond=0))
    ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] = field(init=False)
    rekor: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    ctlog: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    def __post_init__(self) -> None:
        self.ca = fulcio_ca("exportctl test fulcio", self.now)

    def trusted_root(self, ca: x509.Certificate | None = None) -> dict[str, Any]:
        """trusted_root.json naming this instance's logs and its CA (or `ca` in its place)."""
        start = (self.now - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

        def log(key: ec.EllipticCurvePrivateKey, url: str) -> dict[str, Any]:
            return {"baseUrl": url, "hashAlgorithm": "SHA2_256", "logId": {"keyId": _b64(_log_id(key))},
                    "publicKey": {"rawBytes": _b64(_spki(key)), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                                  "validFor": {"start": start}}}

        root = (ca or self.ca[1]).public_bytes(serialization.Encoding.DER)
        return {"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                "tlogs": [log(self.rekor, "https://rekor.exportctl.test")],
                "certificateAuthorities": [{"subject": {"organization": "exportctl.test", "commonName": "fulcio"},
                                            "uri": "https://fulcio.exportctl.test",
                                            "certChain": {"certificates": [{"rawBytes": _b64(root)}]},
                                            "validFor": {"start": start}}],
                "ctlogs": [log(self.ctlog, "https://ctfe.exportctl.test")], "timestampAuthorities": []}

    def _leaf(self, key: ec.EllipticCurvePrivateKey, identity: str, issuer: str) -> x509.Certificate:
        """A 10-minute certificate as Fulcio issues it, with an SCT over its precertificate embedded."""
        ca_key, ca_cert = self.ca
        serial = x509.random_serial_number()

        def build(sct_list: bytes) -> x509.Certificate:
            return (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(ca_cert.subject)
                    .public_key(key.public_key()).serial_number(serial)
                    .not_valid_before(self.now - dt.timedelta(minutes=1))
                    .not_valid_after(self.now + dt.timedelta(minutes=10))
                    .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                 key_encipherment=False, data_encipherment=False,
                                                 key_agreement=False, key_cert_sign=False, crl_sign=False,
                                                 encipher_only=False, decipher_only=False), critical=True)
                    .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
                    .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                    .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                   critical=False)
                    .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(identity)]), critical=True)
                    .add_extension(x509.UnrecognizedExtension(OIDC_ISSUER, issuer.encode()), critical=False)
                    .add_extension(x509.UnrecognizedExtension(OIDC_ISSUER_V2, _utf8_string(issuer)), critical=False)
                    .add_extension(x509.UnrecognizedExtension(SCT_LIST, _der_octets(sct_list)), critical=False)
                    .sign(ca_key, hashes.SHA384()))

        # The SCT signs the certificate without its SCT extension (RFC 6962 §3.2): build it once with a
        # placeholder to get those bytes, then again with the real SCT; everything else is identical.
        tbs = build(self._sct_list(b"\0" * 64)).tbs_precertificate_bytes
        timestamp = int(self.now.timestamp() * 1000)
        issuer_key_hash = _log_id(ca_key)  # SHA-256 of the issuer's public key, as a log ID is made
        signed = (struct.pack(">BBQH", 0, 0, timestamp, 1) + issuer_key_hash
                  + struct.pack(">I", len(tbs))[1:] + tbs + struct.pack(">H", 0))
        return build(self._sct_list(_sign(self.ctlog, signed), timestamp))

    def _sct_list(self, signature: bytes, timestamp: int = 0) -> bytes:
        sct = (struct.pack(">B", 0) + _log_id(self.ctlog) + struct.pack(">QH", timestamp, 0)
               + struct.pack(">BBH", 4, 3, len(signature)) + signature)  # sha256, ecdsa
        serialized = struct.pack(">H", len(sct)) + sct
        return struct.pack(">H", len(serialized)) + serialized

    def sign_dsse(self, payload: bytes, payload_type: str, identity: str, issuer: str) -> bytes:
        """A Sigstore bundle (v0.3 JSON) of a DSSE envelope over `payload`, signed by a fresh key certified
        for `identity` by `issuer`, logged as the last of five entries of this Rekor."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._leaf(key, identity, issuer)
        pae = f"DSSEv1 {len(payload_type)} {payload_type} {len(payload)} ".encode() + payload
        signature = _sign(key, pae)
        envelope = {"payload": _b64(payload), "payloadType": payload_type, "signatures": [{"sig": _b64(signature)}]}
        pem = cert.public_bytes(serialization.Encoding.PEM)
        body = canonical_json({"apiVersion": "0.0.1", "kind": "dsse", "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": hashlib.sha256(canonical_json(envelope)).hexdigest()},
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
            "signatures": [{"signature": _b64(signature), "verifier": _b64(pem)}]}})
        leaves = [_leaf_hash(f"earlier entry {i}".encode()) for i in range(4)] + [_leaf_hash(body)]
        index, root = len(leaves) - 1, _tree_hash(leaves)
        note = f"{LOG_ORIGIN}\n{len(leaves)}\n{_b64(root)}\n"
        log_id = _log_id(self.rekor)
        checkpoint = f"{note}\n\u2014 {LOG_ORIGIN.split()[0]} {_b64(log_id[:4] + _sign(self.rekor, note.encode()))}\n"
        integrated = int(self.now.timestamp())
        # RFC 8785 JSON, which for these ASCII strings and integers is exactly sorted, whitespace-free JSON.
        promise = canonical_json({"body": _b64(body), "integratedTime": integrated, "logID": log_id.hex(),
                                  "logIndex": index})
        entry = {"logIndex": str(index), "logId": {"keyId": _b64(log_id)},
                 "kindVersion": {"kind": "dsse", "version": "0.0.1"}, "integratedTime": str(integrated),
                 "inclusionPromise": {"signedEntryTimestamp": _b64(_sign(self.rekor, promise))},
                 "inclusionProof": {"logIndex": str(index), "rootHash": _b64(root), "treeSize": str(len(leaves)),
                                    "hashes": [_b64(h) for h in _inclusion_path(index, leaves)],
                                    "checkpoint": {"envelope": checkpoint}},
                 "canonicalizedBody": _b64(body)}
        bundle = {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                  "verificationMaterial": {"certificate": {"rawBytes": _b64(cert.public_bytes(
                      serialization.Encoding.DER))}, "tlogEntries": [entry]},
                  "dsseEnvelope": envelope}
        return canonical_json(bundle)
