"""Redis export reads metadata and context values by ``parse_json``, not the ordinary decode: every stored
form of a value must come out as the ordinary read (``store.get``) gives it, in the same line text, and a
damaged value must name its record as corrupt, as the ordinary read does. Plain and encrypted stores."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis

from lkpersist.clock import VirtualClock
from lkpersist.crypto.fernet import FernetCodec
from lkpersist.crypto.keys import generate_key
from lkpersist.exceptions import CorruptRecordError
from lkpersist.model.results import CorruptRecord
from lkpersist.model.session import Session, Turn
from lkpersist.model.transfer import SessionRecord
from lkpersist.stores import open_store
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
    found: dict[str, SessionRecord | CorruptRecord] = {}
    async for page in store.iter_records("all", page_size=3):
        found.update((item.identity if isinstance(item, CorruptRecord) else item.session.identity, item)
                     for item in page)
    assert set(found) == set(names)
    for name in STORED_VALUES:
        record, ordinary = found[name], await store.get(name)
        assert isinstance(record, SessionRecord) and ordinary is not None, name
        assert set(record.session.metadata) == {"keep", "v"} and set(record.session.context) == {"c", "w"}
        assert record_line(record) == record_line(SessionRecord(ordinary, turns)), name
    for name in DAMAGED:
        with pytest.raises(CorruptRecordError) as raised:
            await store.get(name)
        item = found[name]
        assert isinstance(item, CorruptRecord) and item.identity == name and item.reason == raised.value.reason, name
