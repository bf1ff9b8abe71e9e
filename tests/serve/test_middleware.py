"""CORS only for --allow-origin, per-address rate limits with a clear 429, safe headers, a clean access log."""

from __future__ import annotations

import logging

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.exceptions import InvalidInputError
from lkpersist.serve.app import ACCESS_LOGGER
from lkpersist.serve.ratelimit import RateLimit, RateLimiter
from tests.serve.conftest import Server, StartServer

APP = "https://app.example.com"


async def _preflight(server: Server, origin: str) -> tuple[int, dict[str, str]]:
    headers = {"Origin": origin, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "content-type"}
    async with server.http.options(f"{server.url}/api/token", headers=headers) as response:
        return response.status, dict(response.headers)


async def test_no_cors_without_allow_origin(server: Server) -> None:
    async with server.http.post(f"{server.url}/api/token", json={}, headers={"Origin": APP}) as response:
        assert response.status == 200 and "Access-Control-Allow-Origin" not in response.headers
    status, _ = await _preflight(server, APP)
    assert status == 403


async def test_cors_for_the_allowed_origin_only(start_server: StartServer) -> None:
    server = await start_server(allow_origins=(APP,))
    status, headers = await _preflight(server, APP)
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == APP
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "Authorization" in headers["Access-Control-Allow-Headers"]
    async with server.http.post(f"{server.url}/api/token", json={}, headers={"Origin": APP}) as response:
        assert response.headers["Access-Control-Allow-Origin"] == APP and "Origin" in response.headers["Vary"]
    async with server.http.post(f"{server.url}/api/token", json={}, headers={"Origin": "https://evil.example"}) as r:
        assert "Access-Control-Allow-Origin" not in r.headers
    assert (await _preflight(server, "https://evil.example"))[0] == 403


async def test_cors_for_any_origin_with_a_star(start_server: StartServer) -> None:
    server = await start_server(allow_origins=("*",))
    assert (await _preflight(server, "https://anyone.example"))[1]["Access-Control-Allow-Origin"] == \
        "https://anyone.example"


async def test_the_rate_limit_answers_429_with_retry_after_and_recovers(start_server: StartServer) -> None:
    server = await start_server(rate_limit=RateLimit(3, 60.0))
    assert [(await server.token({}))[0] for _ in range(3)] == [200, 200, 200]
    async with server.http.post(f"{server.url}/api/token", json={}) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "20"
        assert (await response.json()) == {"error": "too many requests from your address: retry in 20 s"}
    assert (await server.history("x"))[0] == 429  # the whole API counts
    async with server.http.get(f"{server.url}/") as response:
        assert response.status == 200  # the page does not
    server.clock.advance(20)
    assert (await server.token({}))[0] == 200


async def test_a_429_reaches_an_allowed_origin_readably(start_server: StartServer) -> None:
    server = await start_server(rate_limit=RateLimit(1, 60.0), allow_origins=(APP,))
    await server.token({})
    async with server.http.post(f"{server.url}/api/token", json={}, headers={"Origin": APP}) as response:
        assert response.status == 429 and response.headers["Access-Control-Allow-Origin"] == APP


def test_rate_limits_are_per_address_and_memory_is_bounded() -> None:
    clock = VirtualClock(0)
    limiter = RateLimiter(RateLimit(2, 10.0), clock=clock, max_clients=100)
    assert [limiter.admit("10.0.0.1") for _ in range(3)] == [0.0, 0.0, 5.0]
    assert limiter.admit("10.0.0.2") == 0.0
    for n in range(1000):
        limiter.admit(f"10.1.{n // 256}.{n % 256}")
    assert len(limiter) == 100


@pytest.mark.parametrize(("text", "expected"), [
    ("60/1m", RateLimit(60, 60.0)), ("10/s", RateLimit(10, 1.0)), ("1000/1h", RateLimit(1000, 3600.0)),
    (" 5 / 30s ", RateLimit(5, 30.0)), ("off", None), ("0", None),
])
def test_rate_limit_forms(text: str, expected: RateLimit | None) -> None:
    assert RateLimit.parse(text) == expected


@pytest.mark.parametrize("text", ["fast", "10", "10/", "/1m", "0/1m", "10/0s", "10/1x", "-1/1m"])
def test_bad_rate_limits(text: str) -> None:
    with pytest.raises(InvalidInputError):
        RateLimit.parse(text)


async def test_security_headers(server: Server) -> None:
    async with server.http.get(f"{server.url}/") as page:
        policy = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert page.headers["X-Content-Type-Options"] == "nosniff" and page.headers["Referrer-Policy"] == "no-referrer"
    async with server.http.post(f"{server.url}/api/token", json={}) as token:
        assert token.headers["Cache-Control"] == "no-store"


async def test_the_access_log_has_requests_but_no_credentials(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    """The app is run by the test's own AppRunner here, so the access log is written the same way serve does."""
    from aiohttp import web

    from lkpersist.serve.app import AccessLogger, access_logger, build_app
    from tests.serve.conftest import make_config

    runner = web.AppRunner(build_app(make_config(), store=server.store), access_log_class=AccessLogger,
                           access_log=access_logger())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
            async with server.http.post(f"{url}/api/token", json={}) as response:
                answer = await response.json()
            credential = answer["resume_token"]
            async with server.http.get(f"{url}/api/history?limit=5&resume_token={credential}",
                                       headers={"Authorization": f"Bearer {credential}"}) as response:
                assert response.status == 200
    finally:
        await runner.cleanup()
    lines = [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]
    assert any('"POST /api/token" 200' in line for line in lines), lines
    assert any('"GET /api/history" 200' in line for line in lines), lines
    for secret in (credential, answer["participant_token"], answer["participant_identity"], "resume_token"):
        assert not [line for line in lines if secret in line], secret
