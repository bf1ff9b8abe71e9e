"""The machine's checks for ``lkpersist doctor``: LiveKit credentials and server, the optional extras.

``LIVEKIT_URL`` is checked with one HTTP request (``GET /``, which a LiveKit server answers) over TCP,
and TLS for ``wss://``/``https://``; nothing is sent but that request. The extras are found with
``importlib`` without being imported (livekit is slow to import, and the doctor must run without it).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import os
import ssl
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from lkpersist.doctor import Check, failed, passed

LIVEKIT_VARIABLES = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
CONNECT_TIMEOUT = 3.0
_DEFAULT_PORTS = {"ws": 80, "http": 80, "wss": 443, "https": 443}


def credentials(environ: Mapping[str, str] | None = None) -> Check:
    env = os.environ if environ is None else environ
    missing = [name for name in LIVEKIT_VARIABLES if not env.get(name, "").strip()]
    if missing:
        return failed("livekit credentials", f"not set: {', '.join(missing)}",
                      "export LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET (lkpersist run and token need them)")
    return passed("livekit credentials", "LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET are set")


async def livekit_reachable(environ: Mapping[str, str] | None = None) -> Check | None:
    """One request to ``LIVEKIT_URL``; None when it is not set (the credentials line says so)."""
    env = os.environ if environ is None else environ
    url = env.get("LIVEKIT_URL", "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return failed("livekit server", f"LIVEKIT_URL {url!r} is not a ws://, wss://, http:// or https:// URL",
                      "set LIVEKIT_URL to your server, e.g. wss://my-project.livekit.cloud")
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError:
        return failed("livekit server", f"LIVEKIT_URL {url!r} has an invalid port", "fix the port in LIVEKIT_URL")
    secure = parts.scheme in ("wss", "https")
    try:
        status, elapsed = await _http_status(parts.hostname, port, secure)
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        reason = _reason(exc)
        return failed("livekit server", f"{url}: {reason}",
                      "check LIVEKIT_URL, that the LiveKit server runs, and that this host can reach it")
    return passed("livekit server", f"{url} answers (HTTP {status}) in {elapsed * 1000:.0f} ms")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT:g} s"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or 'handshake'})"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


async def _http_status(host: str, port: int, secure: bool) -> tuple[str, float]:
    started = time.perf_counter()
    context = ssl.create_default_context() if secure else None
    async with asyncio.timeout(CONNECT_TIMEOUT):
        reader, writer = await asyncio.open_connection(host, port, ssl=context)
        try:
            writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode("ascii"))
            await writer.drain()
            line = await reader.readline()
        finally:
            writer.close()
    fields = line.decode("latin-1").split()
    if len(fields) < 2 or not fields[0].startswith("HTTP/"):
        raise OSError(0, "answered, but not HTTP")
    return fields[1], time.perf_counter() - started


def extras() -> list[Check]:
    return [
        _distribution("agent extra", "livekit.agents", "livekit-agents", "lkpersist run, simulate reconnect, token",
                      "pip install 'lkpersist[agent]'"),
        _distribution("metrics extra", "prometheus_client", "prometheus_client", "lkpersist metrics",
                      "pip install 'lkpersist[metrics]'"),
    ]


def _distribution(name: str, module: str, distribution: str, needed_by: str, fix: str) -> Check:
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        return failed(name, f"{distribution} is not installed (needed by {needed_by})", fix)
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return passed(name, f"{distribution} {version} installed")


__all__ = ["LIVEKIT_VARIABLES", "credentials", "extras", "livekit_reachable"]
