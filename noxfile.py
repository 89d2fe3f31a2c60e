"""Developer sessions. Only `lock` (and later `update_pins`) changes pinned data."""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.default_venv_backend = "uv|virtualenv"
ROOT = Path(__file__).parent
LOCK_PYTHON = "3.11"
LOCK_PLATFORM = ("linux-x86_64", "x86_64-manylinux_2_28")  # (our tag, uv's --python-platform)


@nox.session(python=False)
def tests(session: nox.Session) -> None:
    """The README's test command: every tier this machine can run (see tests/conftest.py for tiers)."""
    session.run("python", "-m", "pytest", *(session.posargs or ["-ra"]), external=True)


@nox.session(python=False)
def lint(session: nox.Session) -> None:
    session.run("ruff", "check", "exportctl", "runtimes", "tests", "noxfile.py", external=True)
    session.run("mypy", "exportctl", external=True)


@nox.session(python=False)
def schema(session: nox.Session) -> None:
    """Regenerate the recipe JSON Schema that editors use (recipes/recipe.schema.json)."""
    session.run("exportctl", "schema", "--out", "recipes/recipe.schema.json", external=True)


@nox.session(python=False)
def lock(session: nox.Session) -> None:
    """Re-resolve every toolchain lock with uv: hash-locked, torch pinned to the CPU build, torchvision dropped."""
    from exportctl.locks import find_links

    tag, uv_platform = LOCK_PLATFORM
    sources = [arg for link in find_links() for arg in ("--find-links", link)]
    if index := os.environ.get("EXPORTCTL_INDEX_URL"):
        sources += ["--index-url", index]
    for requirements in sorted((ROOT / "lockfiles").glob("*.in")):
        toolchain = requirements.stem
        out = ROOT / "lockfiles" / f"{toolchain}-{tag}.txt"
        session.run(
            "uv", "pip", "compile", "--no-config", "--quiet", str(requirements.relative_to(ROOT)),
            "--override", "lockfiles/overrides.txt", "--generate-hashes", "--no-annotate",
            "--python-version", LOCK_PYTHON, "--python-platform", uv_platform,
            "--custom-compile-command", f"nox -s lock  # uv pip compile lockfiles/{toolchain}.in "
            f"--override lockfiles/overrides.txt --generate-hashes --python-version {LOCK_PYTHON} "
            f"--python-platform {uv_platform}",
            *sources, "-o", str(out.relative_to(ROOT)), external=True,
            env={k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))},
        )
