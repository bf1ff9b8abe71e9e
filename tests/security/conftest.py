"""Fixtures shared by the encryption migration tests: a store of each at-rest backend, seeded in plaintext."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import store_url_for
from tests.security._sessions import write_plain


@pytest.fixture(params=["sqlite", "redis"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url_for(str(request.param), tmp_path, request)


@pytest.fixture
def plain_store(url: str) -> str:
    """A store holding the test sessions in plaintext, as written before encryption was switched on."""
    asyncio.run(write_plain(url))
    return url
