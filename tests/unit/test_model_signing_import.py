"""model-signing without Sigstore for key signatures (trust/model_signing_import.py), in fresh interpreters.

Each check runs in its own `python` process: this one has imported model-signing whole already (other tests
sign and verify), and what is measured is what one `exportctl` command imports. A key signature is made and
checked by the real CLI with sigstore never imported; a model-signing *Sigstore* signature, made by the
offline Sigstore of tests/unit/sigstore_root.py, still verifies through the stand-in, which then loads it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from exportctl.store import referrers as ref
from exportctl.store.layout import Store
from exportctl.trust.keys import keygen
from exportctl.trust.signing import sign_bundle
from tests.unit.test_signing import fake_bundle

ROOT = Path(__file__).resolve().parents[2]

# Runs `exportctl ARGS...` for each argv in argv[1] (JSON) in this one process, as `python -m exportctl`
# would, then writes the exit codes and every module imported to the file argv[2].
_CLI_IN_ONE_PROCESS = """
import json, runpy, sys
runs, report, codes = json.loads(sys.argv[1]), sys.argv[2], []
for argv in runs:
    sys.argv = ["exportctl", *argv]
    try:
        runpy.run_module("exportctl", run_name="__main__")
        codes.append(0)
    except SystemExit as e:
        codes.append(e.code)
open(report, "w").write(json.dumps({"codes": codes, "modules": sorted(sys.modules)}))
"""


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                          check=False)


def _loaded(modules: list[str], package: str) -> list[str]:
    return [m for m in modules if m == package or m.startswith(f"{package}.")]


def test_key_sign_and_verify_never_import_sigstore(tmp_path: Path) -> None:
    for name in ("a", "b"):
        keygen(tmp_path / f"{name}.pem", tmp_path / f"{name}.pub.pem")
    store = Store.open(tmp_path / "store")
    digest = fake_bundle(store)
    sign_bundle(store, digest, key=tmp_path / "a.pem", sigstore=False)
    ref.export(store, digest, tmp_path / "layout")
    runs = [["--store", str(store.root), "sign", digest, "--key", str(tmp_path / "b.pem")],
            ["--store", str(store.root), "verify", digest, "--key", str(tmp_path / "b.pub.pem")],
            ["--store", str(store.root), "verify", digest],  # both signatures, by the keys the store recorded
            ["verify", str(tmp_path / "layout"), "--key", str(tmp_path / "a.pub.pem")],
            ["verify", str(tmp_path / "layout"), "--key", str(tmp_path / "b.pub.pem")]]  # not signed by b then
    report = tmp_path / "report.json"
    done = _python(_CLI_IN_ONE_PROCESS, json.dumps(runs), str(report))
    assert done.returncode == 0, done.stderr
    result = json.loads(report.read_text())
    assert result["codes"] == [0, 0, 0, 0, 10], done.stdout + done.stderr  # 10: no signature by key b there
    assert "signature" in done.stdout and "valid (key given)" in done.stdout
    modules = result["modules"]
    assert "model_signing._signing.sign_ec_key" in modules  # model-signing's own signer and verifier ran
    assert _loaded(modules, "sigstore") == [], "a key signature's sign/verify imported sigstore"
    assert _loaded(modules, "OpenSSL") == []  # nor the X.509-certificate signer's pyOpenSSL


_SIGSTORE_SIGNATURE = """
import json, sys
from pathlib import Path
from exportctl.trust.model_signing_import import model_signing
from google.protobuf import json_format
from model_signing._signing import signing
from tests.unit.sigstore_root import Sigstore
assert "sigstore" not in sys.modules, "the stand-in was not in place"
tmp, identity, issuer = Path(sys.argv[1]), "release@exportctl.test", "https://issuer.exportctl.test"
model = tmp / "model"
model.mkdir()
(model / "model.onnx").write_bytes(b"weights")
statement = signing.Payload(model_signing.hashing.Config().hash(model)).statement.pb
sigstore = Sigstore()
(tmp / "model.sig").write_bytes(sigstore.sign_dsse(json_format.MessageToJson(statement).encode(),
                                                   signing._IN_TOTO_JSON_PAYLOAD_TYPE, identity, issuer))
(tmp / "trust.json").write_text(json.dumps({
    "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json", "trustedRoot": sigstore.trusted_root(),
    "signingConfig": {"mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json"}}))

def verify(identity):
    try:
        model_signing.verifying.Config().use_sigstore_verifier(
            identity=identity, oidc_issuer=issuer, trust_config=tmp / "trust.json").verify(model, tmp / "model.sig")
        return "valid"
    except Exception as e:
        return f"{type(e).__name__}: {e}"

results = [verify(identity), verify("someone-else@exportctl.test")]
(model / "model.onnx").write_bytes(b"weightz")
results.append(verify(identity))
print(json.dumps({"results": results, "sigstore": "sigstore.verify" in sys.modules,
                  "real": hasattr(sys.modules["model_signing._signing.sign_sigstore"], "__file__")}))
"""


def test_a_sigstore_signature_still_verifies_through_the_stand_in(tmp_path: Path) -> None:
    done = _python(_SIGSTORE_SIGNATURE, str(tmp_path))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["sigstore"] and out["real"]  # the first use loaded sigstore and the real model-signing module
    valid, other_identity, tampered = out["results"]
    assert valid == "valid"
    assert "SANs do not match" in other_identity  # sigstore-python's identity policy ran
    assert "Signature mismatch" in tampered and "model.onnx" in tampered  # model-signing's manifest check ran
