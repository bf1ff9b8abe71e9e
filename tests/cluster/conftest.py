"""Cluster and Sentinel tests: the servers come from ``tests/_servers.py`` (started once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import store_url_for


@pytest.fixture(params=("redis-cluster", "redis-sentinel"))
def ha_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL on the test Cluster or Sentinel deployment, under a key prefix of this test's own."""
    return store_url_for(str(request.param), tmp_path, request)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
