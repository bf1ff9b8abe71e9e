"""Redis export with each record's turn payloads joined by ``READ_RECORDS`` (plaintext stores): the reply
carries ``[p1,...,pn]`` and ``n`` instead of one value per turn, and ``stores.bulk.joined_turn_page`` must
decide every record exactly as ``turn_dicts`` decides its payloads alone, whatever else is on the page.
That text is carried into the record's line (``SessionRecord.rendered``) when it reads back as the turns:
each line reads as the line the ordinary path writes (for a store written by lkpersist, the very same text)."""

from __future__ import annotations

import json

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.crypto.codec import PLAIN
from lkpersist.model.results import CorruptRecord
from lkpersist.model.session import Device, Session, Turn
from lkpersist.model.transfer import SessionRecord
from lkpersist.stores import open_store
from lkpersist.stores.bulk import joined_turn_page, turn_dicts
from lkpersist.stores.redis import RedisStore
from lkpersist.stores.redis.export import READ_RECORDS, read_keys
from lkpersist.stores.redis.keys import KeyLayout
from lkpersist.transfer.format import parse_record, record_line
from tests.transfer.test_export_page_checks import GOOD, ODD, _payloads
from tests.transfer.test_fast_paths import _same
from tests.transfer.test_splice import _ordinary_line


def _joined(payloads: list[bytes]) -> tuple[bytes, int]:
    return b"[" + b",".join(payloads) + b"]", len(payloads)


@pytest.mark.parametrize("odd", [None, *ODD.values()], ids=["none", *ODD.keys()])
@pytest.mark.parametrize("place", [0, 2, 4])
def test_a_joined_page_reads_each_record_as_turn_dicts_alone(odd: list[bytes] | None, place: int) -> None:
    pages = [*GOOD]
    if odd is not None:
        pages.insert(place, odd)
    found = joined_turn_page([_joined(payloads) for payloads in pages])
    assert found == [turn_dicts(payloads, PLAIN) for payloads in pages]
    assert all(dicts is not None for at, dicts in enumerate(found) if odd is None or at != place)
    if odd is not None and turn_dicts(odd, PLAIN) is None:  # a line break, a huge timestamp: fine as dicts
        assert found[place] is None


def test_a_joined_count_that_does_not_match_is_not_read() -> None:
    # two turns in one payload: the array holds one value more than the record has payloads
    assert joined_turn_page([_joined(ODD["two values in one payload"])]) == [None]
    assert joined_turn_page([(b"[" + b",".join(_payloads("h", 2)) + b"]", 3)]) == [None]


def test_turns_that_only_parse_across_two_joined_records_are_not_read() -> None:
    whole = _payloads("f", 2)
    cut = whole[0].index(b',"timestamp"')
    pages = [_payloads("g", 1) + [whole[0][:cut]], [whole[0][cut + 1:], whole[1]], ODD["two values in one payload"]]
    assert joined_turn_page([_joined(payloads) for payloads in pages]) == [None, None, None]


def _record(clock: VirtualClock, index: int, turns: int) -> SessionRecord:
    now = clock.now()
    devices = (Device(f"d{index}", "a «phone», v2", now - 90, now - 20),) if index % 2 else ()
    session = Session(identity=f"joiner-{index:02d}", joined_at=now - 100, last_seen=now - 10, metadata={"n": index},
                      expires_at=now + 500, ttl=600.0, devices=devices)
    return SessionRecord(session, tuple(Turn("user", f"turn {t} «é»", now - 50 + t, None if t % 2 else f"i-{t}")
                                        for t in range(turns)))


def _record_keys(layout: KeyLayout, identity: str) -> list[bytes]:
    """READ_RECORDS' keys for ``identity``: session, metadata, context, turns, devices."""
    encoded = layout.encode_identity(identity)
    return read_keys(layout, layout.bucket_of(encoded), [encoded.encode("ascii")])


async def test_the_script_joins_exactly_the_payloads_it_would_return(
    redis_url: str, redis_prefix: str, clock: VirtualClock
) -> None:
    store = open_store(f"{redis_url}?prefix={redis_prefix}", clock=clock)
    assert isinstance(store, RedisStore)
    try:
        await store.import_records([_record(clock, index, turns) for index, turns in enumerate((0, 1, 5))])
        client, layout = store._redis.client, store.keys
        for index, turns in enumerate((0, 1, 5)):
            record_keys = _record_keys(layout, f"joiner-{index:02d}")
            apart = (await client.eval(READ_RECORDS, len(record_keys), *record_keys, "0"))[0]
            joined = (await client.eval(READ_RECORDS, len(record_keys), *record_keys, "1"))[0]
            assert apart[5] == joined[5] == 1 and len(apart[4]) == turns
            assert joined[4] == b"[" + b",".join(apart[4]) + b"]" and joined[6] == turns
            assert joined[:4] == apart[:4] and apart[0] and apart[1]  # the session and its metadata, as read
        # a frame without its item-id prefix: the frames come back as stored, not joined, in either mode
        record_keys = _record_keys(layout, "joiner-02")
        await client.rpush(record_keys[3], b"no prefix here")
        joined = (await client.eval(READ_RECORDS, len(record_keys), *record_keys, "1"))[0]
        assert joined[5] == 0 and len(joined) == 6 and joined[4][-1] == b"no prefix here"
    finally:
        await store.close()


async def test_an_export_with_an_odd_record_names_it_and_carries_the_rest(
    redis_url: str, redis_prefix: str, clock: VirtualClock
) -> None:
    store = open_store(f"{redis_url}?prefix={redis_prefix}", clock=clock)
    assert isinstance(store, RedisStore)
    try:
        records = [_record(clock, index, index % 4) for index in range(12)]
        await store.import_records(records)
        turns_key = _record_keys(store.keys, "joiner-05")[3]
        await store._redis.client.lset(turns_key, 0, b"-:{not json")
        found: dict[str, SessionRecord | CorruptRecord] = {}
        async for page in store.iter_records("all", None, 4):
            for item in page:
                found[item.identity if isinstance(item, CorruptRecord) else item.session.identity] = item
        assert sorted(found) == [record.session.identity for record in records]
        assert isinstance(found.pop("joiner-05"), CorruptRecord)
        for record in records:
            if record.session.identity in found:
                item = found[record.session.identity]
                assert isinstance(item, SessionRecord)
                assert item.turn_dicts == [turn.to_dict() for turn in record.turns]
    finally:
        await store.close()


STORED_VALUES = {
    "plain": '"pro"', "number": "2.5", "unicode": '"ü 👋 \\u2028 \\u0000"', "nested": '{"a":[1,{"b":null}],"c":"null"}',
    "64-bit integer": "18446744073709551615", "big integer": "123456789012345678901234567890",
    "whole float beyond 2**63": "1e19", "nan": "NaN", "infinity": "[1,-Infinity]", "lone surrogate": '"\\ud800 x"',
    "spaces": '[ 1 , 2 ]', "nested deeper than orjson writes": "[" * 300 + "]" * 300,
}


async def _exported(store: RedisStore) -> list[SessionRecord]:
    found: list[SessionRecord] = []
    async for page in store.iter_records("all", None, 50):
        for item in page:
            assert isinstance(item, SessionRecord), item
            found.append(item)
    return sorted(found, key=lambda record: record.session.identity)


async def test_a_store_written_by_lkpersist_exports_the_very_same_text_with_its_turns_spliced(
    redis_url: str, redis_prefix: str, clock: VirtualClock
) -> None:
    store = open_store(f"{redis_url}?prefix={redis_prefix}", clock=clock)
    assert isinstance(store, RedisStore)
    try:
        records = [_record(clock, index, index % 6) for index in range(12)]
        await store.import_records(records)
        read = await _exported(store)
        assert all(record.rendered is not None for record in read)
        assert [record_line(record) for record in read] == [_ordinary_line(record) for record in read]
        assert read == records
        assert [record.session.devices for record in read[1::2]] == [record.session.devices for record in records[1::2]]
        assert all(record.session.devices for record in read[1::2])
    finally:
        await store.close()


@pytest.mark.parametrize("name", STORED_VALUES)
@pytest.mark.parametrize("field", [1, 2])  # the metadata hash, the context hash
async def test_a_line_reads_as_the_ordinary_line_whatever_the_stored_value(
    redis_url: str, redis_prefix: str, clock: VirtualClock, name: str, field: int
) -> None:
    store = open_store(f"{redis_url}?prefix={redis_prefix}", clock=clock)
    assert isinstance(store, RedisStore)
    try:
        await store.import_records([_record(clock, 0, 3)])
        await store._redis.client.hset(_record_keys(store.keys, "joiner-00")[field], "v", STORED_VALUES[name])
        [record] = await _exported(store)
        line, ordinary = record_line(record), _ordinary_line(record)
        assert "\n" not in line and "\r" not in line
        assert _same(json.loads(line), json.loads(ordinary)), (line, ordinary)
        assert parse_record(line, 2) == parse_record(ordinary, 2)
        values = parse_record(line, 2).session.metadata if field == 1 else parse_record(line, 2).session.context
        assert _same(values["v"], json.loads(STORED_VALUES[name]))
    finally:
        await store.close()


@pytest.mark.parametrize("payload,spliced", [
    ('{"role":"user","text":"hi","timestamp":1800000000.5,"item_id":"i0"}', True),
    ('{ "role" : "user", "text" : "hi", "timestamp" : 1.5, "item_id" : "i0" }', True),
    ('{"role":"user",\n"text":"hi","timestamp":1.5,"item_id":"i0"}', False),  # a line break: the ordinary path
    ('{"role":"user","text":"hi","timestamp":1e19,"item_id":"i0"}', False),  # beyond 2**63: the ordinary path
    ('{"role":"user","text":"hi","timestamp":NaN,"item_id":"i0"}', False),  # orjson refuses it
])
async def test_stored_turns_are_carried_only_when_they_read_back_the_same(
    redis_url: str, redis_prefix: str, clock: VirtualClock, payload: str, spliced: bool
) -> None:
    store = open_store(f"{redis_url}?prefix={redis_prefix}", clock=clock)
    assert isinstance(store, RedisStore)
    try:
        await store.import_records([_record(clock, 0, 3)])
        await store._redis.client.lset(_record_keys(store.keys, "joiner-00")[3], 1, b"2:i0" + payload.encode())
        [record] = await _exported(store)
        assert (record.rendered is not None) == spliced
        line, ordinary = record_line(record), _ordinary_line(record)
        assert "\n" not in line and "\r" not in line
        assert _same(json.loads(line), json.loads(ordinary)), (line, ordinary)
        assert _same(json.loads(line)["turns"][1], json.loads(payload))
    finally:
        await store.close()
