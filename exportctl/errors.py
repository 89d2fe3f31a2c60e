"""Every failure exportctl reports, each with its exit code and a message that says what to do.

Exit codes 0-3 are the export guide's contract (users' scripts already branch on them); the rest are ours.
The table is also printed in the README; `tests/unit/test_readme.py` keeps the two in step.
"""

from __future__ import annotations

OK = 0
EXPORT_FAILED = 1
VALIDATION_FAILED = 2
CONFIG_ERROR = 3
SANDBOX_UNAVAILABLE = 4
ENVIRONMENT_FAILED = 5
STORE_ERROR = 6
VERIFY_FAILED = 7
NOT_FOUND = 8
BACKEND_UNAVAILABLE = 9
SIGNATURE_INVALID = 10
PROVENANCE_INVALID = 11
SIGNING_FAILED = 12
NOT_REPRODUCIBLE = 13
REGISTRY_ERROR = 14
INTERRUPTED = 130

EXIT_CODES: dict[int, str] = {
    OK: "success: every cell exported and passed validation",
    EXPORT_FAILED: "an export failed (model loading or conversion)",
    VALIDATION_FAILED: "exports succeeded but at least one cell is outside its tolerances (results are stored)",
    CONFIG_ERROR: "configuration error: bad recipe, checkpoint, option or format/precision combination",
    SANDBOX_UNAVAILABLE: "no sandbox (bubblewrap or unshare) is available to isolate cells",
    ENVIRONMENT_FAILED: "a toolchain environment could not be created from its lockfile",
    STORE_ERROR: "the store could not be read or written (nothing already stored was changed)",
    VERIFY_FAILED: "a bundle failed verification: a blob does not match its digest or is missing",
    NOT_FOUND: "no bundle or blob with that digest is in the store",
    BACKEND_UNAVAILABLE: "the requested runner backend cannot be used here",
    SIGNATURE_INVALID: ("a signature check failed: no signature by the given key, it does not match the bundle, "
                        "or the key cannot check one (not an EC public key)"),
    PROVENANCE_INVALID: "the provenance attestation is unsigned, badly signed, or does not name the bundle",
    SIGNING_FAILED: "the bundle could not be signed (unusable key, or Sigstore unreachable) and stays unsigned",
    NOT_REPRODUCIBLE: "`rebuild --check`: at least one cell's bytes differ from the bundle's",
    REGISTRY_ERROR: "a registry or scheduler could not be reached, refused the credentials or the request, or the "
                    "scheduler ended a task (timed out, cancelled)",
    INTERRUPTED: "interrupted (Ctrl-C); the store is left as it was before the interrupted write",
}


class ExportctlError(Exception):
    """Base class: `str(err)` is what the user sees, `err.exit_code` is what the process returns."""

    exit_code = EXPORT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  fix: {hint}")


class ExportFailed(ExportctlError):
    exit_code = EXPORT_FAILED


class ValidationFailed(ExportctlError):
    exit_code = VALIDATION_FAILED


class ConfigError(ExportctlError):
    exit_code = CONFIG_ERROR


class RecipeError(ConfigError):
    """A recipe field is wrong; `location` is `file:line` so editors can jump to it."""

    def __init__(self, field: str, problem: str, *, location: str | None = None, hint: str | None = None) -> None:
        where = f"{location}: " if location else ""
        self.field = field
        super().__init__(f"{where}recipe field '{field}': {problem}", hint=hint)


class SandboxUnavailable(ExportctlError):
    exit_code = SANDBOX_UNAVAILABLE


class EnvironmentFailed(ExportctlError):
    exit_code = ENVIRONMENT_FAILED


class StoreError(ExportctlError):
    exit_code = STORE_ERROR


class VerifyFailed(ExportctlError):
    exit_code = VERIFY_FAILED


class NotFound(ExportctlError):
    exit_code = NOT_FOUND


class BackendUnavailable(ExportctlError):
    exit_code = BACKEND_UNAVAILABLE


class SignatureInvalid(ExportctlError):
    exit_code = SIGNATURE_INVALID


class ProvenanceInvalid(ExportctlError):
    exit_code = PROVENANCE_INVALID


class SigningFailed(ExportctlError):
    exit_code = SIGNING_FAILED


class NotReproducible(ExportctlError):
    exit_code = NOT_REPRODUCIBLE


class RegistryError(ExportctlError):
    """A registry (or a cluster scheduler) is unreachable, untrusted, or refused a request."""

    exit_code = REGISTRY_ERROR


class Interrupted(ExportctlError):
    """Ctrl-C: raised by nothing, made by `cli` from KeyboardInterrupt so that it leaves the one way errors do."""

    exit_code = INTERRUPTED
