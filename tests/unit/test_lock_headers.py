"""No lock is hand-made: every lock's header names `nox -s lock`, the session that re-resolves it."""

from __future__ import annotations

import re

from tests.conftest import ROOT

NOXFILE = (ROOT / "noxfile.py").read_text()


def test_every_lock_header_names_the_command_that_made_it() -> None:
    locks = sorted((ROOT / "lockfiles").glob("*-*.txt"))
    assert {p.name for p in locks} >= {"onnx-linux-x86_64.txt", "coreml-darwin-arm64.txt"}
    for lock in locks:
        header = lock.read_text().splitlines()[1]
        toolchain, platform = re.fullmatch(r"(\w+)-(\w+-\w+)\.txt", lock.name).groups()  # type: ignore[union-attr]
        assert header.startswith("#    nox -s lock"), f"{lock.name} was not made by `nox -s lock`: {header}"
        assert f"lockfiles/{toolchain}.in" in header, lock.name
        assert f'"{platform}"' in NOXFILE, f"`nox -s lock` does not re-resolve {platform} locks ({lock.name})"
        if platform != "linux-x86_64":
            assert f"nox -s lock -- {platform}" in header, lock.name
