"""The shared store contract once more, on Redis behind a FallbackStore whose primary is healthy.

The contract's own tests are collected here unchanged; only the ``store`` fixture differs (and
``backend`` is fixed to Redis, so the few tests that open a second handle from ``store_url`` use Redis).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.stores import open_store
from lkpersist.stores.fallback import FallbackStore
from tests.stores.test_compact_contract import *  # and compaction's
from tests.stores.test_contract import *  # the contract's tests, run with the fixtures below


@pytest.fixture
def backend() -> str:
    return "redis"


@pytest.fixture
async def store(store_url: str, clock: VirtualClock) -> AsyncIterator[FallbackStore]:
    opened = FallbackStore(open_store(store_url, clock=clock))
    try:
        yield opened
    finally:
        await opened.close()
