"""Reading a store behind lkpersist's back: every stored key and value, as the raw clients see them."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any


def raw_values(url: str, *, with_files: bool = False) -> Iterator[bytes]:
    """Every stored value (and, for SQLite with ``with_files``, every byte of the file, WAL and journal)."""
    if not url.startswith("sqlite"):
        yield from _raw_redis(url)
        return
    path = sqlite_path(url)
    yield from _raw_sqlite(path)
    if with_files:  # freed pages and the WAL may keep old text
        yield from (file.read_bytes() for file in path.parent.glob(path.name + "*"))


def raw_dump(url: str) -> list[bytes]:
    """A comparable snapshot of the whole store (to prove a failed command changed nothing)."""
    return sorted(raw_values(url))


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def redis_client_and_prefix(url: str) -> tuple[Any, str]:
    import redis

    base, _, query = url.partition("?")
    prefix = dict(part.split("=", 1) for part in query.split("&"))["prefix"]
    return redis.Redis.from_url(base), prefix


def _raw_sqlite(path: Path) -> Iterator[bytes]:
    connection = sqlite3.connect(path)
    try:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"'):
                yield from (str(cell).encode() if not isinstance(cell, bytes) else cell for cell in row)
    finally:
        connection.close()


def _raw_redis(url: str) -> Iterator[bytes]:
    client, prefix = redis_client_and_prefix(url)
    readers: dict[bytes, Callable[[bytes], Iterable[Any]]] = {
        b"hash": lambda key: [item for pair in client.hgetall(key).items() for item in pair],
        b"list": lambda key: client.lrange(key, 0, -1),
        b"set": lambda key: client.smembers(key),
        b"zset": lambda key: [item for pair in client.zrange(key, 0, -1, withscores=True) for item in
                              (pair[0], str(pair[1]).encode())],
        b"string": lambda key: [client.get(key) or b""],
    }
    try:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            yield key
            yield from readers[client.type(key)](key)
    finally:
        client.close()
