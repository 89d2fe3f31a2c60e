"""Registry credentials from the standard Docker config, as `docker login` leaves them.

`$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`): `credHelpers[host]`, then `credsStore`, then the
inline `auths[host].auth`. Helpers run as `docker-credential-<name> get` through exportctl.proc with only the
host on stdin. The result is the base64 `user:secret` a Basic header or a token request carries; it is never
printed or logged.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from exportctl import proc


def config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return (Path(base) if base else Path.home() / ".docker") / "config.json"


def _config() -> dict[str, Any]:
    try:
        data = json.loads(config_path().read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _helper(name: str, host: str) -> str | None:
    done = proc.run([f"docker-credential-{name}", "get"], env=proc.clean_env({"HOME": str(Path.home())}),
                    stdin=host.encode(), timeout=60)
    if done.returncode != 0:
        return None  # "credentials not found": the registry may still allow anonymous access
    try:
        found = json.loads(done.output)
        return base64.b64encode(f"{found['Username']}:{found['Secret']}".encode()).decode()
    except (ValueError, KeyError, TypeError):
        return None


def lookup(host: str) -> str | None:
    """base64(user:secret) for `host`, or None (anonymous)."""
    config = _config()
    names = [host, f"https://{host}", f"http://{host}"]
    helpers = config.get("credHelpers") or {}
    for name in names:
        if name in helpers:
            return _helper(str(helpers[name]), host)
    auths = config.get("auths") or {}
    for name in names:
        entry = auths.get(name)
        if isinstance(entry, dict) and entry.get("auth"):
            return str(entry["auth"])
        if isinstance(entry, dict) and entry.get("username") and entry.get("password"):
            return base64.b64encode(f"{entry['username']}:{entry['password']}".encode()).decode()
    if config.get("credsStore"):
        return _helper(str(config["credsStore"]), host)
    return None
