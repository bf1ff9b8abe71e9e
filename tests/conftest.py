"""Test infrastructure: a real Redis for the session, real SQLite files, a virtual clock.

Unless ``LKPERSIST_TEST_REDIS_URL`` names a Redis to use, the suite starts its own ``redis-server`` (from
PATH) on a free loopback port and stops it afterwards. A missing redis-server is a test failure with an
install hint, never a silent skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore
from tests._redis_server import REDIS_URL_ENV, free_port, redis_server_binary, start_redis_server
from tests._servers import SERVER_FIXTURES, redis_cluster, redis_sentinel, server_store_url

__all__ = ["SERVER_FIXTURES", "free_port", "redis_cluster", "redis_sentinel", "redis_server_binary",
           "start_redis_server"]  # re-exported: fixtures for pytest, helpers for tests that import them

BACKENDS = ("memory", "sqlite", "redis", "redis-cluster", "redis-sentinel")
T0 = 1_800_000_000.0  # a fixed virtual "now" (2027-01-15) so expiry arithmetic is exact


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The Redis every Redis test uses: given by env, or started for this test session."""
    given = os.environ.get(REDIS_URL_ENV)
    if given:
        yield given
        return
    proc, port = start_redis_server()
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are removed afterwards (never a FLUSHDB)."""
    import redis

    prefix = f"lkptest-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.unlink(*keys[start:start + 1000])
    finally:
        client.close()


def store_url_for(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'sessions.db'}"
    if backend in SERVER_FIXTURES:  # started once per test session by tests/_servers.py
        return server_store_url(backend, request)
    redis_url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    separator = "&" if "?" in redis_url else "?"
    return f"{redis_url}{separator}prefix={prefix}"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    return store_url_for(backend, tmp_path, request)


@pytest.fixture(params=("sqlite", "redis"))
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store other processes can reach: a SQLite file, or the test Redis under this test's prefix."""
    return store_url_for(str(request.param), tmp_path, request)


@pytest.fixture
async def store(store_url: str, clock: VirtualClock) -> AsyncIterator[SessionStore]:
    """A fresh store of each backend on a virtual clock."""
    opened = open_store(store_url, clock=clock)
    try:
        yield opened
    finally:
        await opened.close()

