"""Developer sessions. Only `lock` (and later `update_pins`) changes pinned data."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.default_venv_backend = "uv|virtualenv"
ROOT = Path(__file__).parent
# Our platform tag -> (uv's --python-platform, extra environment for uv). Linux: every toolchain. darwin-arm64:
# the toolchains a Mac runs (those with a darwin .in or lock already: CoreML validates only there); torch 2.13's
# macOS wheels need macOS 14, which MACOSX_DEPLOYMENT_TARGET tells uv.
LOCK_PLATFORMS = {
    "linux-x86_64": ("x86_64-manylinux_2_28", {}),
    "darwin-arm64": ("aarch64-apple-darwin", {"MACOSX_DEPLOYMENT_TARGET": "14.0"}),
}


@nox.session(python=False)
def tests(session: nox.Session) -> None:
    """The README's test command: every tier this machine can run (see tests/conftest.py for tiers)."""
    session.run("python", "-m", "pytest", *(session.posargs or ["-ra", "--durations=40"]), external=True)


@nox.session(python=False)
def lint(session: nox.Session) -> None:
    """ruff, mypy --strict on exportctl/ ([tool.mypy]) and the import contracts ([tool.importlinter])."""
    session.run("ruff", "check", "exportctl", "runtimes", "tests", "noxfile.py", external=True)
    session.run("mypy", "exportctl", external=True)
    session.run("lint-imports", external=True)


@nox.session(python=False)
def schema(session: nox.Session) -> None:
    """Regenerate the recipe JSON Schema that editors use (recipes/recipe.schema.json)."""
    session.run("exportctl", "schema", "--out", "recipes/recipe.schema.json", external=True)


@nox.session(python=False)
def lock(session: nox.Session) -> None:
    """Re-resolve every toolchain lock with uv: hash-locked, torch pinned to the CPU build, torchvision dropped.

    `nox -s lock -- darwin-arm64` re-resolves only the given platforms. Each lock's header names this command.
    """
    from exportctl.env.locks import wheel_sources
    from exportctl.env.uvenv import LOCK_PYTHON, cache_root, installer_environment, uv_binary

    python = ".".join(map(str, LOCK_PYTHON))  # the interpreter local environments are created with
    platforms = session.posargs or list(LOCK_PLATFORMS)
    for tag in platforms:
        if tag not in LOCK_PLATFORMS:
            session.error(f"unknown lock platform {tag!r}: one of {', '.join(LOCK_PLATFORMS)}")
        uv_platform, extra_env = LOCK_PLATFORMS[tag]
        for requirements in sorted((ROOT / "lockfiles").glob("*.in")):
            toolchain = requirements.stem
            out = ROOT / "lockfiles" / f"{toolchain}-{tag}.txt"
            if tag != "linux-x86_64" and not out.is_file():
                continue  # a toolchain gets a lock for another platform once someone runs it there
            settings = " ".join(f"{k}={v}" for k, v in extra_env.items())
            # Same uv, sources, cache and environment as the environments the locks are installed into.
            session.run(
                uv_binary(), "pip", "compile", "--no-config", "--cache-dir", str(cache_root() / "uv"), "--quiet",
                str(requirements.relative_to(ROOT)),
                "--override", "lockfiles/overrides.txt", "--generate-hashes", "--no-annotate",
                "--python-version", python, "--python-platform", uv_platform,
                "--custom-compile-command", f"nox -s lock{'' if tag == 'linux-x86_64' else ' -- ' + tag}  "
                f"# {settings + ' ' if settings else ''}uv pip "
                f"compile lockfiles/{toolchain}.in --override lockfiles/overrides.txt --generate-hashes "
                f"--python-version {python} --python-platform {uv_platform}",
                *wheel_sources(), "-o", str(out.relative_to(ROOT)), external=True,
                env={**installer_environment(), **extra_env}, include_outer_env=False,
            )


@nox.session(python=False)
def update_pins(session: nox.Session) -> None:
    """Re-resolve every base image's digest (images/base-images.toml) from its registry, where one is reachable."""
    import hashlib
    import shutil

    from exportctl import proc
    from exportctl.env.pins import PINS_FILE, load, with_digest

    def resolve(ref: str) -> str | None:
        if shutil.which("docker"):
            done = proc.run(["docker", "buildx", "imagetools", "inspect", ref, "--format", "{{json .Manifest}}"],
                            env=proc.clean_env(dict(os.environ)), timeout=120)
            if done.returncode == 0:
                return str(json.loads(done.output)["digest"])
            session.log(f"{ref}: docker buildx imagetools: {done.tail(2)}")
        if shutil.which("skopeo"):
            done = proc.run(["skopeo", "inspect", "--raw", f"docker://{ref}"], env=proc.clean_env(dict(os.environ)),
                            timeout=120)
            if done.returncode == 0:  # the digest of the manifest (index) bytes exactly as the registry serves them
                return "sha256:" + hashlib.sha256(done.output.encode()).hexdigest()
            session.log(f"{ref}: skopeo: {done.tail(2)}")
        return None

    text = PINS_FILE.read_text()
    unresolved = []
    for pin in load().values():
        digest = resolve(f"{pin.image}:{pin.tag}")
        if digest is None:
            unresolved.append(f"{pin.image}:{pin.tag}")
            continue
        if digest != pin.digest:
            session.log(f"{pin.image}:{pin.tag}: {pin.digest} -> {digest}")
        text = with_digest(text, pin.name, digest)
    PINS_FILE.write_text(text)
    if unresolved:
        session.warn(f"no registry answered for {', '.join(unresolved)}: their digests are unchanged and stay "
                     "unverified (run this session where the registries are reachable)")
