"""Redis store URLs: parsed and checked eagerly, then turned into a redis-py asyncio client.

Client construction is the only thing that differs between plain Redis, TLS, Sentinel and Cluster;
everything above it (scripts, keys, pipelines per bucket) is the same. Connecting stays lazy, but a
malformed URL fails at once with InvalidStoreURLError, before any network traffic.

Query options: ``prefix``, ``socket_timeout``, ``socket_connect_timeout`` (seconds), ``max_connections``,
and for TLS ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_cert_reqs`` (none|optional|required).
``retries`` and ``retry_max_backoff`` (seconds): how often an operation is tried again after a broken
connection, with exponential backoff from 50 ms up to that cap; the defaults (1 and 0.2 s; on Sentinel 20
and 0.5 s, about 9 s in all) ride out a restarted server, and on Sentinel a failover with
``down-after-milliseconds`` up to a few seconds: raise them to cover yours. ``wait_replicas`` and
``wait_timeout_ms``: see :mod:`~lkpersist.stores.redis.wait` (not on Cluster). The client itself is built in
:mod:`~lkpersist.stores.redis.client`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from lkpersist.exceptions import InvalidStoreURLError
from lkpersist.stores.redis.keys import check_prefix

DEFAULT_SOCKET_TIMEOUT = 5.0
DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_RETRIES = (1, 0.2)
SENTINEL_RETRIES = (20, 0.5)
RETRY_BASE = 0.05
_CERT_REQS = ("none", "optional", "required")
_TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")


def _cert_reqs(value: str) -> str:
    if value not in _CERT_REQS:
        raise ValueError(f"must be one of {', '.join(_CERT_REQS)}")
    return value


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError("must be a positive number of seconds")
    return number


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must not be negative")
    return number


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be at least 1")
    return number


_QUERY_OPTIONS: dict[str, Callable[[str], Any]] = {
    "prefix": check_prefix,
    "socket_timeout": _positive_float,
    "socket_connect_timeout": _positive_float,
    "max_connections": _positive_int,
    "retries": _non_negative_int,
    "retry_max_backoff": _positive_float,
    "wait_replicas": _positive_int,
    "wait_timeout_ms": _non_negative_int,
    "ssl_ca_certs": str,
    "ssl_certfile": str,
    "ssl_keyfile": str,
    "ssl_cert_reqs": _cert_reqs,
}


@dataclass(frozen=True)
class RedisTarget:
    """Everything a Redis store URL says, checked."""

    scheme: str
    nodes: list[tuple[str, int]]
    db: int = 0
    username: str | None = None
    password: str | None = None
    service: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def prefix(self) -> str | None:
        return self.options.get("prefix")

    def retry(self) -> Any:
        """Retries on a broken connection (a restarted server, a stale pooled socket, a failover), never
        on a timeout: a timed-out script may have run, and connect must not count twice."""
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError

        retries, cap = SENTINEL_RETRIES if self.scheme == "redis+sentinel" else DEFAULT_RETRIES
        retries = self.options.get("retries", retries)
        cap = self.options.get("retry_max_backoff", cap)
        return Retry(ExponentialBackoff(cap=cap, base=RETRY_BASE), retries, (RedisConnectionError,))

    def connection_kwargs(self) -> dict[str, Any]:
        """Keyword arguments common to every client kind (timeouts, credentials, TLS, retries)."""
        kwargs: dict[str, Any] = {
            "username": self.username,
            "password": self.password,
            "socket_timeout": self.options.get("socket_timeout", DEFAULT_SOCKET_TIMEOUT),
            "socket_connect_timeout": self.options.get("socket_connect_timeout", DEFAULT_CONNECT_TIMEOUT),
            "decode_responses": False,
            "retry": self.retry(),
        }
        if "max_connections" in self.options:
            kwargs["max_connections"] = self.options["max_connections"]
        if self.scheme == "rediss":
            kwargs["ssl"] = True
            kwargs.update({name: self.options[name] for name in _TLS_OPTIONS if name in self.options})
        return kwargs


def parse_redis_url(url: str, redacted: str) -> RedisTarget:
    """Check ``url`` and return its parts; ``redacted`` (no password) names it in errors."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        nodes = _nodes(parts.netloc.rpartition("@")[2], default_port=26379 if scheme == "redis+sentinel" else 6379)
        service, db = _service_and_db(scheme, parts.path)
        options = _options(scheme, parts.query)
    except ValueError as exc:
        raise InvalidStoreURLError(f"invalid Redis URL {redacted!r}: {exc}") from None
    return RedisTarget(
        scheme=scheme,
        nodes=nodes,
        db=db,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        service=service,
        options=options,
    )


def _nodes(hosts: str, default_port: int) -> list[tuple[str, int]]:
    nodes = []
    for node in hosts.split(","):
        host, colon, port = node.rpartition(":") if not node.endswith("]") else (node, "", "")
        if not colon:
            host, port = node, str(default_port)
        host = host.strip("[]")
        if not host:
            raise ValueError("missing host")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad port {port!r}")
        nodes.append((host, int(port)))
    return nodes


def _service_and_db(scheme: str, path: str) -> tuple[str | None, int]:
    segments = [unquote(segment) for segment in path.strip("/").split("/") if segment]
    service = None
    if scheme == "redis+sentinel":
        if not segments:
            raise ValueError("the Sentinel service name is missing (redis+sentinel://h:p/service[/db])")
        service = segments.pop(0)
    if scheme == "redis+cluster" and segments:
        raise ValueError("Redis Cluster has no database number")
    if len(segments) > 1:
        raise ValueError(f"unexpected path {path!r}")
    if not segments:
        return service, 0
    if not segments[0].isdigit():
        raise ValueError(f"bad database number {segments[0]!r}")
    return service, int(segments[0])


def _options(scheme: str, query: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
        if name not in _QUERY_OPTIONS:
            raise ValueError(f"unknown option {name!r} (known: {', '.join(sorted(_QUERY_OPTIONS))})")
        if name in _TLS_OPTIONS and scheme != "rediss":
            raise ValueError(f"option {name!r} needs rediss:// (TLS)")
        if name.startswith("wait_") and scheme == "redis+cluster":
            raise ValueError(f"option {name!r} is not available on Redis Cluster")
        try:
            options[name] = _QUERY_OPTIONS[name](value)
        except ValueError as exc:
            raise ValueError(f"option {name}={value!r}: {exc}") from None
    if "wait_timeout_ms" in options and "wait_replicas" not in options:
        raise ValueError("option 'wait_timeout_ms' needs wait_replicas")
    return options
