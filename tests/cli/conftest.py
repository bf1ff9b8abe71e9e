"""CLI test helpers: real stores (SQLite files, the session's Redis) seeded at chosen ages.

The CLI reads with the real clock, so a session "last seen an hour ago" is written through a store on a
VirtualClock set an hour back. ``memory://`` cannot be used: each CLI invocation opens a fresh store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lkpersist.cli import app
from lkpersist.clock import VirtualClock
from lkpersist.model.session import Turn
from lkpersist.model.ttl import TTLPolicy
from lkpersist.stores import open_store
from tests.conftest import store_url_for

LONG_TTL = TTLPolicy(first=86400.0, returning=86400.0, frequent=86400.0)


@dataclass
class Seed:
    """One session to write: last seen ``age`` seconds ago, optionally disconnected, with a TTL policy."""

    identity: str
    age: float = 0.0
    disconnected: bool = False
    ttl_policy: TTLPolicy = field(default_factory=TTLPolicy)
    language: str | None = None
    metadata: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    turns: Sequence[tuple[str, str]] = ()


def seed(url: str, *seeds: Seed) -> None:
    """Write ``seeds`` into the store at ``url`` (oldest first, so ``age`` orders the listing)."""
    asyncio.run(_seed(url, sorted(seeds, key=lambda s: -s.age)))


async def _seed(url: str, seeds: Sequence[Seed]) -> None:
    now = time.time()
    for item in seeds:
        store = open_store(url, clock=VirtualClock(now - item.age), ttl_policy=item.ttl_policy)
        try:
            await store.connect(item.identity)
            if item.language or item.metadata or item.context:
                await store.update(item.identity, language=item.language, metadata=item.metadata,
                                   context=item.context)
            for index, (role, text) in enumerate(item.turns):
                await store.append_turn(item.identity, Turn(role, text, now - item.age, f"item-{index}"))
            if item.disconnected:
                await store.disconnect(item.identity)
        finally:
            await store.close()


def exists(url: str, identity: str) -> bool:
    """Whether a record (live or expired) is still stored, read with the store's own listing."""

    async def _exists() -> bool:
        store = open_store(url)
        try:
            return identity in [item.identity async for item in store.iter_sessions("all")]
        finally:
            await store.close()

    return asyncio.run(_exists())


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(params=("sqlite", "redis"))
def cli_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh shared store (a SQLite file, or the test Redis under a prefix of this test's own)."""
    return store_url_for(str(request.param), tmp_path, request)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sessions.db'}"


def invoke(runner: CliRunner, url: str, *args: str) -> Any:
    """Run ``lkpersist --store URL ARGS`` in-process."""
    return runner.invoke(app, ["--store", url, *args])
