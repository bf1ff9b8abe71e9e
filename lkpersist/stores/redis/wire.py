"""Pipelines of plain commands without redis-py's per-command machinery, for bulk reads (export).

redis-py spends several microseconds of Python on each command of a pipeline (packing it, one awaited
read with its own timeout per reply, a response callback), so a pipeline of many small commands costs
the client far more than Redis; a Lua script that makes the same reads costs Redis three times as much
instead (each reply converted to a Lua table and back). Here every command is packed by hiredis, the
whole pipeline written with the connection's ``send_packed_command``, and the replies parsed by a hiredis
``Reader`` of this module's own, fed straight from the connection's stream: about a microsecond of client
CPU per command, and Redis does only the commands' own work.

Only for a client of one server (plain, TLS or Sentinel master) with hiredis installed:
:func:`usable` says whether a client qualifies; callers use an ordinary pipeline otherwise (a Cluster).
The connection's stream (``Connection._reader``) is the one redis-py internal read; a connection that
fails or is cancelled mid-pipeline is disconnected before it goes back to the pool, as redis-py does.
Reply errors are returned in place (``ReplyError`` instances), never raised: the caller decides.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

try:
    import hiredis

    _hiredis: Any = hiredis
    ReplyError: type[Exception] = hiredis.ReplyError
except ImportError:  # redis-py works without it; so does every caller of this module (usable() is False)
    _hiredis = None
    ReplyError = Exception

_READ_SIZE = 1 << 18


class WireUnavailable(Exception):
    """The client's connections do not expose the stream this module reads (a redis-py that keeps it
    elsewhere): nothing was sent; use an ordinary pipeline."""


def usable(client: Any) -> bool:
    """Whether :func:`run_commands` can run on ``client``: one server's pooled client, hiredis installed.
    (RESP2 or RESP3: the Reader reads either; a hash comes as its fields flat or as a dict.)"""
    return _hiredis is not None and type(client) is Redis and not getattr(client, "single_connection_client", False)


def pack(command: Sequence[Any]) -> bytes:
    """One command as the Redis protocol sends it."""
    return _hiredis.pack_command(tuple(command))  # type: ignore[no-any-return]


async def run_commands(client: Redis, packed: Sequence[bytes], replies: int) -> list[Any]:
    """Send ``packed`` (commands as the Redis protocol sends them, several to an item if need be, as
    :func:`pack` makes them) as one pipeline on a pooled connection and return the ``replies`` replies
    they give, in order. A broken or timed-out connection is redis-py's
    ConnectionError / TimeoutError, after one more attempt on a fresh connection (every caller's
    commands are reads); :class:`WireUnavailable` when this client's connections cannot be read so."""
    if not replies:
        return []
    for attempt in (1, 2):
        try:
            return await _run_once(client, packed, replies)
        except (RedisConnectionError, RedisTimeoutError):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _run_once(client: Redis, packed: Sequence[bytes], replies: int) -> list[Any]:
    pool = client.connection_pool
    connection = await (pool.get_connection() if _no_command_name(pool) else pool.get_connection("MULTI"))  # type: ignore[no-untyped-call]
    try:
        if not connection.is_connected:
            await connection.connect()
        stream = stream_of(connection)
        if stream is None:
            await pool.release(connection)
            raise WireUnavailable(type(connection).__name__)
        await connection.send_packed_command(packed)
        found = await _read(connection, stream, replies)
    except WireUnavailable:
        raise
    except BaseException as exc:
        await connection.disconnect(nowait=True)
        await pool.release(connection)
        if isinstance(exc, TimeoutError):  # asyncio.timeout's (an OSError too), not a cancellation
            raise RedisTimeoutError("Timeout reading from Redis") from exc
        if isinstance(exc, OSError):
            raise RedisConnectionError(f"Error while reading from Redis: {exc}") from exc
        raise
    await pool.release(connection)
    return found


def _no_command_name(pool: Any) -> bool:
    """Whether this pool's ``get_connection`` is called without arguments (redis-py since 5.3 warns when
    given any; before, it required a command name, which no pool of redis-py's ever used)."""
    kind = type(pool)
    known = _NO_COMMAND_NAME.get(kind)
    if known is None:
        parameter = inspect.signature(kind.get_connection).parameters.get("command_name")
        known = _NO_COMMAND_NAME[kind] = parameter is None or parameter.default is not inspect.Parameter.empty
    return known


_NO_COMMAND_NAME: dict[type, bool] = {}


def stream_of(connection: Any) -> asyncio.StreamReader | None:
    """The stream a connected redis-py connection reads its replies from (None: not where it is looked for)."""
    stream = getattr(connection, "_reader", None)
    return stream if isinstance(stream, asyncio.StreamReader) else None


async def _read(connection: Any, stream: asyncio.StreamReader, replies: int) -> list[Any]:
    """``replies`` replies read off ``connection``'s ``stream`` by a Reader of our own."""
    timeout: float | None = connection.socket_timeout
    reader = _hiredis.Reader(notEnoughData=_MORE)
    found: list[Any] = []
    while True:
        reply = reader.gets()
        while reply is not _MORE:
            found.append(reply)
            if len(found) == replies:
                if reader.has_data():  # more than was asked for: the connection's state is not ours to know
                    raise RedisConnectionError("Redis sent more replies than commands")
                return found
            reply = reader.gets()
        async with asyncio.timeout(timeout):
            data = await stream.read(_READ_SIZE)
        if not data:
            raise RedisConnectionError("Redis closed the connection")
        reader.feed(data)


_MORE = object()

__all__ = ["ReplyError", "WireUnavailable", "pack", "run_commands", "stream_of", "usable"]
