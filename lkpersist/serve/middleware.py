"""What every response of ``lkpersist serve`` goes through: JSON errors, CORS, rate limits, headers.

Order (outermost first): CORS (so a browser can read even a 429 from an allowed origin), errors (every
failure becomes one line of JSON, ``{"error": "..."}``, and the server keeps serving), the rate limit
(API paths only: the page and its scripts are free).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware

from lkpersist.exceptions import StoreError
from lkpersist.logsafe import get_logger
from lkpersist.serve.ratelimit import RateLimiter, retry_after_header
from lkpersist.serve.request import RefusedRequest

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

API_PREFIX: Final = "/api/"
CORS_METHODS: Final = "GET, POST, OPTIONS"
CORS_HEADERS: Final = "Content-Type, Authorization"
CORS_MAX_AGE: Final = "600"
PAGE_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' https: http: wss: ws:; media-src 'self' blob: mediastream:; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)
"""Only our own scripts run (the credential in localStorage is out of an injected script's reach);
LiveKit may be on any host, and LiveKit Cloud moves between regional hosts, so connections are open."""

log = get_logger("lkpersist.serve")


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """``{"error": message}`` on one line with ``status``."""
    text = json.dumps({"error": " ".join(message.split()) or "error"}, ensure_ascii=False)
    return web.json_response(text=text, status=status, headers=headers)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refusals, HTTP errors, store trouble and bugs alike: a JSON line with the right status."""
    try:
        return await handler(request)
    except RefusedRequest as exc:
        return error_response(exc.status, str(exc), exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {name: exc.headers[name] for name in ("Allow",) if name in exc.headers}
        return error_response(exc.status, exc.reason.lower(), headers)
    except StoreError as exc:
        log.warning("session store unavailable: %s", exc)
        return error_response(503, "the session store is unavailable; try again shortly")
    except Exception:
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return error_response(500, "internal error")


def cors(allow_origins: tuple[str, ...]) -> Middleware:
    """CORS for the origins given with ``--allow-origin`` only; other origins get no CORS headers."""
    allowed = frozenset(allow_origins)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        permitted = origin is not None and ("*" in allowed or origin in allowed)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response: web.StreamResponse = (
                web.Response(status=204, headers=_preflight_headers()) if permitted
                else error_response(403, "origin not allowed")
            )
        else:
            response = await handler(request)
        if permitted and origin is not None:
            response.headers["Access-Control-Allow-Origin"] = origin
        if allowed:
            response.headers.add("Vary", "Origin")
        return response

    return middleware


def _preflight_headers() -> dict[str, str]:
    return {
        "Access-Control-Allow-Methods": CORS_METHODS,
        "Access-Control-Allow-Headers": CORS_HEADERS,
        "Access-Control-Max-Age": CORS_MAX_AGE,
    }


def rate_limit(limiter: RateLimiter) -> Middleware:
    """A 429 with ``Retry-After`` once an address has used up its requests (API paths only)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(API_PREFIX):
            wait = limiter.admit(request.remote or "unknown")
            if wait > 0:
                seconds = retry_after_header(wait)
                raise RefusedRequest(429, f"too many requests from your address: retry in {seconds} s",
                                     headers={"Retry-After": seconds})
        return await handler(request)

    return middleware


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: no sniffing, no referrer, no caching of credentials, a script policy."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.path.startswith(API_PREFIX):
        response.headers["Cache-Control"] = "no-store"
    elif response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)


__all__ = [
    "API_PREFIX", "PAGE_POLICY", "cors", "error_response", "json_errors", "rate_limit", "security_headers",
]
