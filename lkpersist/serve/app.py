"""The aiohttp application of ``lkpersist serve``, and its access log.

``build_app(config)`` gives an ``aiohttp.web.Application`` you can also mount in a server of your own
(``parent.add_subapp("/voice/", build_app(config))``) or run in tests on a loopback port. It opens the
configured store when it starts and closes it when it stops.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Middleware

from lkpersist.clock import Clock
from lkpersist.logsafe import get_logger
from lkpersist.serve.config import ServeConfig
from lkpersist.serve.handlers import (
    STATE,
    STATIC_DIR,
    ServeState,
    get_history,
    index,
    post_token,
    render_page,
)
from lkpersist.serve.issuer import TokenIssuer
from lkpersist.serve.middleware import cors, json_errors, rate_limit, security_headers
from lkpersist.serve.ratelimit import RateLimiter
from lkpersist.serve.request import MAX_BODY_BYTES
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore

ACCESS_LOGGER: Final = "lkpersist.serve.access"


class AccessLogger(AbstractAccessLogger):
    """One line per request: address, method, path (never the query string), status, time.

    Bodies and headers, where tokens and credentials travel, are never logged; the record still goes
    through lkpersist's redacting filter (:mod:`lkpersist.logsafe`) as a second guard.
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info('%s "%s %s" %d %.1fms', request.remote, request.method, request.path,
                         response.status, time * 1000)


def access_logger() -> logging.Logger:
    """The logger ``AppRunner(access_log=...)`` should write to (redacting filter attached)."""
    return get_logger(ACCESS_LOGGER)


def build_app(
    config: ServeConfig, *, store: SessionStore | None = None, clock: Clock | None = None
) -> web.Application:
    """The application for ``config``, reading history from ``store``.

    A ``store`` passed in stays the caller's to close; without one, the application opens
    ``open_store(config.store_url)`` when it starts and closes it when it stops.
    """
    middlewares: list[Middleware] = [cors(config.allow_origins), json_errors]
    if config.rate_limit is not None:
        middlewares.append(rate_limit(RateLimiter(config.rate_limit, clock=clock)))
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    app[STATE] = ServeState(config, TokenIssuer(config, clock=clock), render_page(config), store)
    app.router.add_get("/", index)
    app.router.add_post("/api/token", post_token)
    app.router.add_get("/api/history", get_history)
    app.router.add_static("/static/", STATIC_DIR)
    app.on_response_prepare.append(security_headers)
    if store is None:
        app.cleanup_ctx.append(_own_store)
    return app


async def _own_store(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    state.store = open_store(state.config.store_url)
    try:
        yield
    finally:
        await state.store.close()


__all__ = ["ACCESS_LOGGER", "AccessLogger", "access_logger", "build_app"]
