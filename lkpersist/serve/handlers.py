"""The routes of ``lkpersist serve``: the page, ``POST /api/token`` and ``GET /api/history``.

Handlers read the request, call the framework-free rules (:class:`~lkpersist.serve.issuer.TokenIssuer`,
the store) and answer JSON. Every refusal is a :class:`~lkpersist.serve.request.RefusedRequest`, turned
into a one-line JSON error by :func:`lkpersist.serve.middleware.json_errors`.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from lkpersist import audit
from lkpersist.exceptions import StoreNotFoundError
from lkpersist.serve.config import ServeConfig
from lkpersist.serve.issuer import TokenIssuer
from lkpersist.serve.request import MAX_BODY_BYTES, RefusedRequest, parse_token_request
from lkpersist.stores.base import SessionStore

STATIC_DIR: Final = Path(__file__).parent / "static"
LIVEKIT_CLIENT_VERSION: Final = "2.23.0"
"""The vendored livekit-client (static/vendor/livekit-client.umd.js); see static/vendor/README.md."""
CONFIG_MARKER: Final = "{{LKPERSIST_PAGE_CONFIG}}"
MAX_HISTORY_TURNS: Final = 100


@dataclass
class ServeState:
    """What the handlers share: the rules, the rendered page, and the store (opened at startup)."""

    config: ServeConfig
    issuer: TokenIssuer
    page: bytes
    store: SessionStore | None = None


STATE: Final = web.AppKey("lkpersist_serve", ServeState)


def render_page(config: ServeConfig) -> bytes:
    """index.html with the page's settings in a ``<meta>`` tag (read once, at startup)."""
    settings = {
        "connect_timeout_ms": round(config.connect_timeout * 1000),
        "history_turns": config.history_turns,
        "livekit_client": LIVEKIT_CLIENT_VERSION,
    }
    template = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    return template.replace(CONFIG_MARKER, html.escape(json.dumps(settings), quote=True)).encode("utf-8")


async def index(request: web.Request) -> web.Response:
    return web.Response(body=request.app[STATE].page, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-cache"})


async def post_token(request: web.Request) -> web.Response:
    """A token for the participant: the same identity with a valid resume_token, a new one otherwise."""
    token_request = parse_token_request(await _json_body(request))
    answer = request.app[STATE].issuer.issue(token_request)
    return web.json_response(answer.to_dict())


async def get_history(request: web.Request) -> web.Response:
    """The session's recent turns (role, text, timestamp), for the bearer of its resume credential."""
    state = request.app[STATE]
    identity = state.issuer.identity_of(_bearer(request))
    if identity is None:
        raise RefusedRequest(401, "a valid resume token is needed (Authorization: Bearer <resume_token>)",
                             headers={"WWW-Authenticate": 'Bearer realm="lkpersist"'})
    limit = _limit(request.query.get("limit"), state.config.history_turns)
    assert state.store is not None, "the store is opened when the app starts"
    try:
        turns = await state.store.recent_turns(identity, limit)
    except StoreNotFoundError:  # no agent has written the store yet: nobody has a history
        turns = []
    if turns:
        audit.record_history(identity, len(turns))  # opt-in (LKPERSIST_AUDIT_LOG); never waits for a disk
    return web.json_response(
        {"turns": [{"role": turn.role, "text": turn.text, "timestamp": turn.timestamp} for turn in turns]}
    )


async def _json_body(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise RefusedRequest(415, "send the request as JSON (Content-Type: application/json)")
    too_large = RefusedRequest(413, f"the request body is over {MAX_BODY_BYTES // 1024} KiB")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise too_large
    try:
        raw = await request.read()  # the app's client_max_size stops a body without Content-Length
    except web.HTTPRequestEntityTooLarge as exc:
        raise too_large from exc
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise RefusedRequest(400, "the request body is not valid JSON") from exc


def _bearer(request: web.Request) -> str | None:
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    return credential.strip() or None if scheme.lower() == "bearer" else None


def _limit(raw: str | None, default: int) -> int:
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_HISTORY_TURNS:
        raise RefusedRequest(400, f"limit must be a whole number from 1 to {MAX_HISTORY_TURNS}")
    return int(raw)


__all__ = [
    "LIVEKIT_CLIENT_VERSION", "STATE", "STATIC_DIR", "ServeState", "get_history", "index", "post_token",
    "render_page",
]
