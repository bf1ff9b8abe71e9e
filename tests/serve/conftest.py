"""A real ``lkpersist serve`` application on a loopback port, and a real HTTP client talking to it.

HTTP tests run the application in the test's own event loop (``AppRunner`` on ``127.0.0.1:0``) so they
can inject a virtual clock and read the store directly; the subprocess and browser tests start the real
command (``lkpersist serve``, see ``_process.py``). No LiveKit server exists here: LIVEKIT_URL points at a
closed loopback port, which is all the token endpoint needs (it never talks to LiveKit).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from livekit import api

from lkpersist.clock import VirtualClock
from lkpersist.serve.app import build_app
from lkpersist.serve.config import ServeConfig
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore
from tests.conftest import T0
from tests.serve._process import API_KEY, API_SECRET, closed_port

__all__ = ["API_KEY", "API_SECRET"]


def make_config(**options: Any) -> ServeConfig:
    options.setdefault("livekit_url", f"ws://127.0.0.1:{closed_port()}")
    options.setdefault("rate_limit", None)
    return ServeConfig(api_key=API_KEY, api_secret=API_SECRET, **options)


@dataclass
class Server:
    """A running application: its base URL, its store, its clock, and an HTTP client for it."""

    url: str
    store: SessionStore
    clock: VirtualClock
    config: ServeConfig
    http: aiohttp.ClientSession

    async def token(self, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        """POST /api/token with ``body`` as JSON (``{}`` when None); (status, parsed JSON)."""
        kwargs.setdefault("json", {} if body is None else body)
        async with self.http.post(f"{self.url}/api/token", **kwargs) as response:
            return response.status, await response.json()

    async def history(self, credential: str | None, query: str = "") -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {credential}"} if credential is not None else {}
        async with self.http.get(f"{self.url}/api/history{query}", headers=headers) as response:
            return response.status, await response.json()


StartServer = Callable[..., Awaitable[Server]]


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[StartServer]:
    """Start applications with chosen options (each on its own port, SQLite store in tmp_path)."""
    runners: list[web.AppRunner] = []
    sessions: list[aiohttp.ClientSession] = []
    stores: list[SessionStore] = []

    async def start(*, store_url: str | None = None, create: bool = True, **options: Any) -> Server:
        clock = VirtualClock(T0)
        config = make_config(**options)
        url = store_url or f"sqlite:///{tmp_path / f'serve-{len(runners)}.db'}"
        store = open_store(url, clock=clock, create=create)
        stores.append(store)
        runner = web.AppRunner(build_app(config, store=store, clock=clock))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        http = aiohttp.ClientSession()
        sessions.append(http)
        return Server(f"http://{host}:{port}", store, clock, config, http)

    yield start
    for http in sessions:
        await http.close()
    for runner in runners:
        await runner.cleanup()
    for store in stores:  # a store handed to build_app stays ours to close
        await store.close()


@pytest.fixture
async def server(start_server: StartServer) -> Server:
    """The default application: per-identity rooms, no named agent, no rate limit."""
    return await start_server()


def verify(token: str, *, secret: str = API_SECRET) -> api.access_token.Claims:
    """The claims of a participant token, checked by livekit-api's own verifier."""
    return api.TokenVerifier(API_KEY, secret).verify(token)
