"""The cluster tier: a real single-node Slurm (tests/cluster/slurm.py); the registry comes from tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import slurm


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    reason = slurm.ensure_packages()
    if reason:
        pytest.skip(reason)
    with slurm.cluster(tmp_path_factory.mktemp("slurm")) as env:
        yield env
