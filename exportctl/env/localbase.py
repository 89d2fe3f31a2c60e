"""A local Python base image for sites without a container registry: debootstrap + `docker import`, offline.

The toolchain images build FROM the pinned `python:3.11-slim-bookworm`. Where no registry is reachable, a base
with the same Python can be made from the Debian archive alone: a debootstrapped bookworm (minbase, python3,
python3-venv; bookworm's python3 is 3.11, as the locks require), kept as a tarball in the user cache and
imported into the daemon with the digest of its recipe as a label. `EXPORTCTL_BASE_IMAGE_PYTHON` points
builds at it (`exportctl base-image` prints the line to set it).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from exportctl import errors, proc
from exportctl.canonical import digest_value, short
from exportctl.env.uvenv import cache_root, file_lock

BASE_REPOSITORY, BASE_TAG = "exportctl-base", "bookworm-python3.11"
BASE_IMAGE = f"{BASE_REPOSITORY}:{BASE_TAG}"
# Changing this recipe makes a new tarball (its digest names the cache entry and labels the image).
BASE_RECIPE: dict[str, Any] = {"suite": "bookworm", "variant": "minbase", "include": ["python3", "python3-venv"],
                               "version": 1}
BASE_LABEL = "dev.exportctl.base-recipe"
OVERRIDE_VARIABLE = "EXPORTCTL_BASE_IMAGE_PYTHON"  # the Docker backend's override for the `python` pin


def recipe_digest() -> str:
    return digest_value(BASE_RECIPE)


def _check(argv: list[str], what: str) -> None:
    done = proc.run(argv, env=proc.clean_env(), timeout=1800)
    if done.returncode != 0:
        raise errors.EnvironmentFailed(f"{what} failed (exit {done.returncode}):\n{done.tail(20)}",
                                       hint="the output above is debootstrap's/tar's, on this host")


def apt_mirror(suite: str) -> str:
    """The archive URI apt on this machine uses for `suite` (read at run time: never written in the repo)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.MULTILINE))
                if "deb" in fields.get("Types", "").split() and suite in fields.get("Suites", "").split():
                    return str(fields["URIs"].split()[0])
        elif path.suffix in (".list", ""):
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line).split()
                if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                    return words[1]
    raise errors.EnvironmentFailed(f"apt has no source for Debian {suite}; debootstrap needs one",
                                   hint=f"add a `deb <mirror> {suite} main` line to /etc/apt/sources.list.d/")


def tarball_path() -> Path:
    return cache_root() / "docker-base" / f"{BASE_RECIPE['suite']}-{short(recipe_digest(), 16)}.tar"


def base_tarball() -> tuple[Path, bool]:
    """The debootstrapped root filesystem as a tar, made once per BASE_RECIPE; (path, whether made now)."""
    tarball = tarball_path()
    if tarball.is_file():
        return tarball, False
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        raise errors.EnvironmentFailed(
            "making the local base needs debootstrap, run as root",
            hint="as root: apt-get install debootstrap, then run `exportctl base-image` again")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(tarball.parent / ".lock"):
        if tarball.is_file():
            return tarball, False
        with tempfile.TemporaryDirectory(prefix="debootstrap-", dir=tarball.parent) as scratch:
            root = Path(scratch) / "root"
            _check(["debootstrap", f"--variant={BASE_RECIPE['variant']}",
                    f"--include={','.join(BASE_RECIPE['include'])}", BASE_RECIPE["suite"], str(root),
                    apt_mirror(str(BASE_RECIPE["suite"]))], "debootstrap")
            for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for item in (root / leftover).glob("*"):
                    if item.is_file():
                        item.unlink()
            partial = Path(scratch) / "root.tar"
            _check(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."], "tar")
            os.replace(partial, tarball)
    return tarball, True


def ensure_base_image(client: Any) -> dict[str, Any]:
    """`exportctl-base:bookworm-python3.11` in the daemon, imported from the cached tarball if needed."""
    import docker

    key = recipe_digest()
    facts: dict[str, Any] = {"image": BASE_IMAGE, "recipe": BASE_RECIPE, "recipe_digest": key,
                             "variable": OVERRIDE_VARIABLE}
    try:
        image = client.images.get(BASE_IMAGE)
        if image.labels.get(BASE_LABEL) == key:
            return {**facts, "image_id": image.id, "imported": False, "debootstrapped": False,
                    "tarball": str(tarball_path())}
    except docker.errors.ImageNotFound:
        pass
    tarball, made = base_tarball()
    client.api.import_image(src=str(tarball), repository=BASE_REPOSITORY, tag=BASE_TAG,
                            changes=[f"LABEL {BASE_LABEL}={key}", 'CMD ["/bin/sh"]'])
    return {**facts, "image_id": client.images.get(BASE_IMAGE).id, "imported": True, "debootstrapped": made,
            "tarball": str(tarball)}
