"""Redis import of new identities: one WRITE_IF_ABSENT call writes a chunk of them (a bucket's, on a
cluster), each record whole or not at all, the others going the read-and-decide way in file order.

Batches here are larger than a chunk and mix new identities, stored ones and repeats, on a single
server and on a cluster (where a chunk must stay in one slot); raw keys written behind the store's back
stand for stray state the empty-state check has to notice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.model.results import CorruptRecord
from lkpersist.model.session import Session, Turn
from lkpersist.model.transfer import ImportOutcome, SessionRecord
from lkpersist.stores import open_store
from lkpersist.stores.redis import RedisStore
from lkpersist.stores.redis.transfer import _ABSENT_CHUNK, _ABSENT_TURNS, _bounded
from tests._servers import server_store_url

Created, Merged, Unchanged = ImportOutcome.CREATED, ImportOutcome.MERGED, ImportOutcome.UNCHANGED


@pytest.fixture(params=("redis", "redis-cluster"))
async def store(
    request: pytest.FixtureRequest, clock: VirtualClock
) -> AsyncIterator[RedisStore]:
    if request.param == "redis":
        url = f"{request.getfixturevalue('redis_url')}?prefix={request.getfixturevalue('redis_prefix')}"
    else:
        url = server_store_url(request.param, request)
    opened = open_store(url, clock=clock)
    assert isinstance(opened, RedisStore)
    yield opened
    await opened.close()


def _record(clock: VirtualClock, identity: str, turns: int = 2, tag: str = "t") -> SessionRecord:
    now = clock.now()
    session = Session(identity=identity, joined_at=now - 100, last_seen=now - 10, reconnect_count=1,
                      metadata={"i": identity}, context={"c": tag}, expires_at=now + 590, ttl=600.0)
    return SessionRecord(session, tuple(Turn("user", f"{tag} {i}", now - 50 + i, f"{tag}-{i}") for i in range(turns)))


async def _stored(store: RedisStore) -> dict[str, SessionRecord]:
    found: dict[str, SessionRecord] = {}
    async for page in store.iter_records("all", page_size=50):
        for item in page:
            assert not isinstance(item, CorruptRecord), item
            found[item.session.identity] = item
    return found


async def test_a_batch_of_several_chunks_mixing_new_stored_and_repeated_identities(
    store: RedisStore, clock: VirtualClock
) -> None:
    count = 2 * _ABSENT_CHUNK + 37
    stored = [_record(clock, f"u{i}", tag="old") for i in range(0, count, 7)]
    assert await store.import_records(stored) == [Created] * len(stored)
    batch = [_record(clock, f"u{i}") for i in range(count)]
    expected = [Merged if i % 7 == 0 else Created for i in range(count)]
    longer = _record(clock, "u3", turns=3)  # u3 is new: created at line 3, then unchanged, then merged
    batch[5:5], expected[5:5] = [_record(clock, "u3")], [Unchanged]
    batch[11:11], expected[11:11] = [longer], [Merged]
    assert await store.import_records(batch) == expected
    found = await _stored(store)
    assert len(found) == count
    assert found["u1"] == batch[1] and found["u3"] == longer
    assert {t.text for t in found["u0"].turns} == {"old 0", "old 1", "t 0", "t 1"}
    assert await store.import_records(batch) == [Unchanged] * len(batch)


async def test_stray_keys_of_an_absent_session_send_it_the_read_and_decide_way(
    store: RedisStore, clock: VirtualClock
) -> None:
    client = store._redis.client
    strays = {name: store.keys.keys_for(name)[1] for name in ("items", "devices")}
    await client.sadd(strays["items"].item_ids, "stray-item")
    await client.hset(strays["devices"].devices, "stray-device", "1")
    records = [_record(clock, name) for name in ("before", "items", "devices", "after")]
    assert await store.import_records(records) == [Created] * 4
    assert await _stored(store) == {r.session.identity: r for r in records}
    assert await client.smembers(strays["items"].item_ids) == {b"t-0", b"t-1"}
    assert not await client.exists(strays["devices"].devices)
    for keys in strays.values():
        assert 0 < await client.pttl(keys.session) and 0 < await client.pttl(keys.item_ids)



def test_a_chunk_stops_at_its_record_or_turn_bound(clock: VirtualClock) -> None:
    small = [_record(clock, f"s{i}", turns=1) for i in range(_ABSENT_CHUNK + 1)]
    assert [len(c) for c in _bounded(small, list(range(len(small))))] == [_ABSENT_CHUNK, 1]
    big = [_record(clock, f"b{i}", turns=_ABSENT_TURNS * 2 // 5) for i in range(5)]  # two and a half fit
    assert _bounded(big, [4, 0, 1, 2, 3]) == [[4, 0], [1, 2], [3]]
    huge = [_record(clock, "h", turns=_ABSENT_TURNS + 1), _record(clock, "s", turns=1)]
    assert _bounded(huge, [0, 1]) == [[0], [1]]


async def test_records_past_a_chunk_s_turn_bound_go_in_the_next_chunk_whole(
    store: RedisStore, clock: VirtualClock
) -> None:
    records = [_record(clock, f"long{i}", turns=_ABSENT_TURNS * 2 // 5) for i in range(3)]  # chunks of 2 and 1
    assert await store.import_records(records) == [Created] * 3
    assert await _stored(store) == {r.session.identity: r for r in records}
