"""model-signing, imported without the Sigstore and X.509-certificate signers until one of them is used.

`import model_signing` runs its package __init__, which imports model_signing.signing and .verifying, which
import every signer model-signing has at module level: Sigstore's (sigstore with requests, TUF and rekor
types) and the certificate one (pyOpenSSL, x509). Measured with compiled bytecode, the whole import takes
0.46 s, the key signer's part of it 0.24 s. A key signature, the one `exportctl sign --key` makes and
`verify --key` checks, uses neither: its signer and verifier (model_signing._signing.sign_ec_key) need only
the Sigstore *bundle models* (sigstore_models) and model-signing's hashing.

So before model_signing is first imported, the two modules that hold those signers are entered in
sys.modules as stand-ins (a module's __getattr__, PEP 562): `from model_signing._signing import sign_sigstore`
in model-signing's own modules binds the stand-in, and the first name looked up on it
(`use_sigstore_signer` building `sign_sigstore.Signer`, say) imports the real module and answers from it.
Everything else is model-signing's own code, unchanged: its Config classes, hashing, DSSE and in-toto checks.
tests/unit/test_model_signing_import.py fails if a key signature's sign or verify imports sigstore again, and
checks that a Sigstore signature still verifies through the stand-in.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

# model-signing 1.x: the modules model_signing.signing/.verifying import for the signers a key signature
# does not use. Were they renamed, nothing would import the stand-ins and the import would only be slower.
DEFERRED = ("model_signing._signing.sign_sigstore", "model_signing._signing.sign_certificate")


class _Deferred(types.ModuleType):
    """Stands in for one of model-signing's modules; imports the real one when a name of it is first used."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            # Introspection (the import system's own checks, pytest, warnings) asks for dunders: loading
            # Sigstore for those would undo the point; the real module is loaded only for its own names.
            raise AttributeError(name)
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]  # so that the import below finds and runs the real module
        return getattr(importlib.import_module(self.__name__), name)


if "model_signing" not in sys.modules:  # imported already (by a Sigstore path, say): it is whole, use it
    for _name in DEFERRED:
        sys.modules.setdefault(_name, _Deferred(_name))

import model_signing  # noqa: E402  (after the stand-ins, which it must find)

__all__ = ["model_signing"]
