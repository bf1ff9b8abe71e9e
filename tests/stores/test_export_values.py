"""Export reads metadata and context by ``parse_json``, not the ordinary decode: every stored form of a
value must come out as the ordinary read (``store.get``) gives it, in the same line text, and a damaged
value must name its record as corrupt, as the ordinary read does. Redis and SQLite, plain and encrypted."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest
import redis

from lkpersist.clock import VirtualClock
from lkpersist.crypto.codec import PLAIN
from lkpersist.crypto.fernet import FernetCodec
from lkpersist.crypto.keys import generate_key
from lkpersist.exceptions import CorruptRecordError
from lkpersist.model.results import CorruptRecord
from lkpersist.model.session import Session, Turn
from lkpersist.model.transfer import SessionRecord
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore
from lkpersist.stores.redis import RedisStore
from lkpersist.transfer.format import record_line
from tests.conftest import T0

STORED_VALUES = {
    "big integer": "123456789012345678901234567890",
    "whole float beyond 2**63": "1e19",
    "nan": "NaN",
    "infinity": "-Infinity",
    "overflowing float": "1e400",
    "lone surrogate": '"\\ud800 x"',
    "spaces and nesting": ' {"a": [1, 2.5, null, true], "é": "ü"} ',
    "plain text": '"pro"',
}
DAMAGED = {"not json": "{nope", "two values": "1 2"}


@pytest.fixture(params=("plain", "encrypted"))
async def store(request: pytest.FixtureRequest, redis_url: str, redis_prefix: str,
                clock: VirtualClock) -> AsyncIterator[RedisStore]:
    codec = FernetCodec([generate_key()]) if request.param == "encrypted" else None
    url = f"{redis_url}{'&' if '?' in redis_url else '?'}prefix={redis_prefix}"
    opened = open_store(url, clock=clock, **({"codec": codec} if codec else {}))
    assert isinstance(opened, RedisStore)
    yield opened
    await opened.close()


def _session(identity: str) -> Session:
    return Session(identity=identity, joined_at=T0 - 100, last_seen=T0 - 10, metadata={"keep": 1},
                   context={"c": "x"}, expires_at=T0 + 590, ttl=600.0)


async def test_every_stored_value_exports_as_the_ordinary_read_gives_it(
    store: RedisStore, sync_redis: redis.Redis
) -> None:
    names = [*STORED_VALUES, *DAMAGED]
    turns = (Turn("user", "hi", T0 - 9, "i1"),)
    await store.import_records([SessionRecord(_session(name), turns) for name in names])
    for name, raw in {**STORED_VALUES, **DAMAGED}.items():
        keys = store.keys.keys_for(name)[1]
        sync_redis.hset(keys.metadata, "v", store.codec.encode(raw))
        sync_redis.hset(keys.context, "w", store.codec.encode(raw))
    await _same_as_ordinary_reads(store, turns, STORED_VALUES, DAMAGED)


async def _same_as_ordinary_reads(
    store: SessionStore, turns: tuple[Turn, ...], good: Mapping[str, str], damaged: Mapping[str, str]
) -> None:
    found: dict[str, SessionRecord | CorruptRecord] = {}
    async for page in store.iter_records("all", page_size=3):
        found.update((item.identity if isinstance(item, CorruptRecord) else item.session.identity, item)
                     for item in page)
    assert set(found) == {*good, *damaged}
    for name in good:
        record, ordinary = found[name], await store.get(name)
        assert isinstance(record, SessionRecord) and ordinary is not None, name
        assert "v" in record.session.metadata and len(record.session.context) == 2, name
        assert record_line(record) == record_line(SessionRecord(ordinary, turns)), name
    for name in damaged:
        with pytest.raises(CorruptRecordError) as raised:
            await store.get(name)
        item = found[name]
        assert isinstance(item, CorruptRecord) and item.identity == name and item.reason == raised.value.reason, name

SQLITE_OBJECTS = {f"o-{name}": f'{{"v": {raw}, "keep": 1}}' for name, raw in STORED_VALUES.items()}
SQLITE_DAMAGED = {"o-not json": "{nope", "o-a list": "[1, 2]", "o-two values": "{} {}"}


@pytest.mark.parametrize("encrypted", [False, True])
async def test_every_stored_sqlite_object_exports_as_the_ordinary_read_gives_it(
    tmp_path: Path, clock: VirtualClock, encrypted: bool
) -> None:
    """SQLite keeps metadata and context as one JSON object each; export reads them by ``parse_json``."""
    codec = FernetCodec([generate_key()]) if encrypted else PLAIN
    path = tmp_path / "values.db"
    store = open_store(f"sqlite:///{path}", clock=clock, codec=codec)
    try:
        stored = {**SQLITE_OBJECTS, **SQLITE_DAMAGED}
        turns = (Turn("user", "hi", T0 - 9, "i1"),)
        await store.import_records([SessionRecord(_session(name), turns) for name in stored])
        conn = sqlite3.connect(path, isolation_level=None)
        for name, raw in stored.items():
            conn.execute("UPDATE lkpersist_sessions SET metadata = ?, context = ? WHERE identity = ?",
                         (codec.encode(raw), codec.encode(raw), name))
        conn.close()
        await _same_as_ordinary_reads(store, turns, SQLITE_OBJECTS, SQLITE_DAMAGED)
    finally:
        await store.close()
