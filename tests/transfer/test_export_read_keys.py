"""Redis export's ``READ_RECORDS`` on the five keys ``KeyLayout.read_keys`` gives a member (its record keys but the
item ids, which an export never reads): each part of the answer is the hash or list it names, and a
record's devices, metadata and context come out of an export as they went in."""

from __future__ import annotations

from lkpersist.clock import VirtualClock
from lkpersist.model.results import CorruptRecord
from lkpersist.model.session import Device, Session, Turn
from lkpersist.model.transfer import SessionRecord
from lkpersist.stores import open_store
from lkpersist.stores.redis import RedisStore
from lkpersist.stores.redis.export import READ_RECORDS
from lkpersist.stores.redis.keys import KeyLayout


def _record(clock: VirtualClock, index: int, turns: int) -> SessionRecord:
    now = clock.now()
    devices = (Device(f"d{index}", "a «phone», v2", now - 90, now - 20),) if index % 2 else ()
    session = Session(identity=f"reader-{index:02d}", joined_at=now - 100, last_seen=now - 10, metadata={"n": index},
                      context={"c": [index, "x"]}, expires_at=now + 500, ttl=600.0, devices=devices)
    return SessionRecord(session, tuple(Turn("user", f"turn {t} «é»", now - 50 + t, None if t % 2 else f"i-{t}")
                                        for t in range(turns)))


def _read_keys(layout: KeyLayout, identity: str) -> list[bytes]:
    encoded = layout.encode_identity(identity)
    return layout.read_keys(layout.bucket_of(encoded), [encoded.encode("ascii")])


def test_read_keys_are_the_record_keys_but_the_item_ids() -> None:
    layout = KeyLayout("rk")
    members = [layout.encode_identity(name).encode("ascii") for name in ("a", "b", "c")]
    every = layout.record_keys(7, members)
    found = layout.read_keys(7, members)
    assert found == [key for at, key in enumerate(every) if at % 6 != 4]
    assert not any(b":k:" in key for key in found) and len(found) == 5 * len(members)


async def test_each_part_of_the_answer_is_the_key_it_names(
    redis_url: str, redis_prefix: str, clock: VirtualClock
) -> None:
    store = open_store(f"{redis_url}?prefix={redis_prefix}", clock=clock)
    assert isinstance(store, RedisStore)
    try:
        await store.import_records([_record(clock, index, index + 1) for index in range(4)])
        client = store._redis.client
        for index in range(4):
            keys = _read_keys(store.keys, f"reader-{index:02d}")
            [answer] = await client.eval(READ_RECORDS, len(keys), *keys)
            hashes = [[part for pair in (await client.hgetall(keys[at])).items() for part in pair] for at in (0, 1, 2, 4)]
            assert [sorted(part) for part in answer[:4]] == [sorted(part) for part in hashes]
            assert answer[1] and answer[2]  # metadata and context, each from its own hash
            assert answer[3] if index % 2 else not answer[3]  # the devices hash, only where there are devices
            frames = await client.lrange(keys[3], 0, -1)
            assert answer[5] == 1 and len(answer[4]) == len(frames) == index + 1
            assert all(frame.endswith(payload) for frame, payload in zip(frames, answer[4], strict=True))
    finally:
        await store.close()


async def test_an_export_carries_devices_and_names_a_damaged_record(
    redis_url: str, redis_prefix: str, clock: VirtualClock
) -> None:
    store = open_store(f"{redis_url}?prefix={redis_prefix}", clock=clock)
    assert isinstance(store, RedisStore)
    try:
        records = [_record(clock, index, index % 4) for index in range(12)]
        await store.import_records(records)
        await store._redis.client.lset(_read_keys(store.keys, "reader-05")[3], 0, b"-:{not json")
        found: dict[str, SessionRecord | CorruptRecord] = {}
        async for page in store.iter_records("all", None, 4):
            for item in page:
                found[item.identity if isinstance(item, CorruptRecord) else item.session.identity] = item
        assert sorted(found) == [record.session.identity for record in records]
        assert isinstance(found.pop("reader-05"), CorruptRecord)
        for record in records:
            if record.session.identity in found:
                assert found[record.session.identity] == record
                assert found[record.session.identity].session.devices == record.session.devices  # type: ignore[union-attr]
        assert all(found[r.session.identity].session.devices for r in records[1::2] if r.session.identity in found)  # type: ignore[union-attr]
    finally:
        await store.close()
