"""The cluster tier: a real single-node Slurm (tests/cluster/slurm.py) plus the registry tier's registry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.registry.conftest import plain_registry, registry_tools  # noqa: F401  (the registry tier's fixtures)

from . import slurm


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    reason = slurm.ensure_packages()
    if reason:
        pytest.skip(reason)
    with slurm.cluster(tmp_path_factory.mktemp("slurm")) as env:
        yield env
