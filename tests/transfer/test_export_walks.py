"""Redis export's walk over the buckets (``stores/redis/export.py``, ZSCAN of each bucket's index, the
reads of one step sent with the next ZSCANs): every matching record comes out exactly once whatever the
number of buckets (one, a few, the default) and the page size, and an export stopped early leaves the
store usable."""

from __future__ import annotations

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.model.results import CorruptRecord
from lkpersist.model.session import Session, Turn
from lkpersist.model.transfer import SessionRecord
from lkpersist.stores import open_store
from lkpersist.stores.redis import RedisStore


def _record(clock: VirtualClock, index: int, *, expired: bool) -> SessionRecord:
    now = clock.now()
    session = Session(identity=f"walker-{index:03d}", joined_at=now - 100, last_seen=now - 10, reconnect_count=1,
                      metadata={"n": index}, connected=False, expires_at=now + (-5 if expired else 500), ttl=600.0)
    return SessionRecord(session, tuple(Turn("user", f"turn {t}", now - 50 + t, f"i-{t}") for t in range(index % 4)))


@pytest.mark.parametrize("buckets", [1, 3, 256])
@pytest.mark.parametrize("page_size", [1, 7, 500])
async def test_every_record_once_whatever_the_buckets(
    redis_url: str, redis_prefix: str, clock: VirtualClock, buckets: int, page_size: int
) -> None:
    store = open_store(f"{redis_url}?prefix={redis_prefix}", clock=clock)
    assert isinstance(store, RedisStore)
    store.keys.buckets = buckets  # the one layout every part of the store builds its keys with
    try:
        records = [_record(clock, index, expired=index % 3 == 0) for index in range(60)]
        await store.import_records(records)
        for status, expected in (("all", records), ("active", records[1::3] + records[2::3]),
                                 ("expired", records[::3])):
            found: list[str] = []
            async for page in store.iter_records(status, None, page_size):  # type: ignore[arg-type]
                for item in page:
                    assert not isinstance(item, CorruptRecord)
                    found.append(item.session.identity)
                    assert item.turn_dicts == [turn.to_dict() for turn in records[int(found[-1][-3:])].turns]
            assert sorted(found) == sorted(record.session.identity for record in expected), status
    finally:
        await store.close()


async def test_an_export_stopped_early_leaves_no_step_running(
    redis_url: str, redis_prefix: str, clock: VirtualClock
) -> None:
    store = open_store(f"{redis_url}?prefix={redis_prefix}", clock=clock)
    try:
        await store.import_records([_record(clock, index, expired=False) for index in range(40)])
        pages = store.iter_records("all", None, 2)
        first = await anext(pages)  # type: ignore[call-overload]
        assert first
        await pages.aclose()  # type: ignore[attr-defined]
        assert await store.count("all") == 40  # the store still answers: no pipeline left half-read
    finally:
        await store.close()
