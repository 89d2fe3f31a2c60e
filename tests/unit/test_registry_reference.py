"""Registry references: what exportctl accepts, how it reads it, and what it refuses (exit 3)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from exportctl import errors
from exportctl.registry.reference import looks_like_reference, parse


def test_parse_tag_digest_and_loopback() -> None:
    ref = parse("127.0.0.1:5000/team/exports:v1")
    assert (ref.host, ref.repository, ref.tag, ref.digest) == ("127.0.0.1:5000", "team/exports", "v1", None)
    assert ref.loopback and ref.target == "v1"
    pinned = parse("ghcr.io/org/model@sha256:" + "a" * 64)
    assert not pinned.loopback and pinned.target == "sha256:" + "a" * 64 and pinned.tag is None
    assert parse("localhost/x").loopback and parse("[::1]:5000/x").loopback


@pytest.mark.parametrize("text", ["exports:v1", "ghcr.io/UPPER/x", "ghcr.io/x@sha256:zz", "ghcr.io/x:bad tag",
                                  "noport/x"])
def test_bad_references_name_the_part(text: str) -> None:
    with pytest.raises(errors.ConfigError) as caught:
        parse(text)
    assert text.split("@")[0].split("/")[0] in caught.value.message or "registry reference" in caught.value.message


def test_references_are_told_apart_from_digests_and_dirs(tmp_path) -> None:
    assert looks_like_reference("127.0.0.1:5000/x:y") and looks_like_reference("ghcr.io/a/b")
    assert not looks_like_reference("sha256:" + "a" * 64) and not looks_like_reference("b884d7")
    (tmp_path / "a.b").mkdir()
    assert not looks_like_reference(str(tmp_path / "a.b"))


def _remember(store_root: str, repository: str) -> None:
    from exportctl.registry.remotes import remember
    from exportctl.store.layout import Store

    remember(Store.open(Path(store_root)), "sha256:" + "a" * 64, parse(f"127.0.0.1:5000/{repository}:t"))


def test_concurrent_pulls_keep_every_known_location(tmp_path) -> None:
    """Each push/pull records where the bundle lives; 16 processes at once must not lose one another's entry."""
    from exportctl.registry.remotes import known
    from exportctl.store.layout import Store

    store = Store.open(tmp_path / "store")
    repositories = [f"team/model-{i}" for i in range(16)]
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        pool.starmap(_remember, [(str(store.root), r) for r in repositories])
    assert known(store, "sha256:" + "a" * 64) == sorted(f"127.0.0.1:5000/{r}" for r in repositories)
