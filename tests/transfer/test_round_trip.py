"""SQLite → Redis → SQLite through export files: 10,000 sessions come back equal, field for field."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.model.session import Session, Turn
from lkpersist.model.transfer import SessionRecord, prepared
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore
from lkpersist.transfer.export import export_sessions
from lkpersist.transfer.import_ import import_sessions
from tests.conftest import T0, store_url_for

SESSIONS = 10_000


def _records(count: int) -> list[SessionRecord]:
    rng = random.Random(7)
    records = []
    for index in range(count):
        last_seen = T0 - rng.randint(0, 3000) / 7
        expired = index % 5 == 0
        count = rng.randint(0, 9)
        session = Session(
            identity=f"user-{index}" if index % 97 else f"odd {{*}} ✓\n{index}",
            joined_at=last_seen - rng.randint(0, 10_000) / 3, last_seen=last_seen,
            reconnect_count=count, language=rng.choice([None, "en", "fr"]),
            metadata={"plan": rng.choice(["free", "pro"]), "n": index, "nested": {"a": [1, 2.5, None]}},
            context={} if index % 3 else {"summary": f"talked about {index}"},
            connected=index % 7 == 0 and not expired,
            expires_at=None if index % 7 == 0 and not expired else last_seen + (-1 if expired else 600),
            ttl=600.0, greeted_visit=count + rng.randint(0, 1),
        )
        turns = tuple(Turn(("user", "assistant")[t % 2], f"turn {t} of {index} — é", last_seen - 60 + t + 0.125,
                           None if t == 3 else f"item-{index}-{t}") for t in range(index % 12))
        records.append(SessionRecord(session, turns))
    return records


async def _copy(source: SessionStore, target: SessionStore, path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        exported = await export_sessions(source, out, status="all")
    assert exported.sessions == SESSIONS and not exported.corrupt
    with path.open(encoding="utf-8") as lines:
        result = await import_sessions(target, lines)
    assert result.outcomes == {"created": SESSIONS} and result.bad_lines == 0


async def _everything(store: SessionStore) -> dict[str, SessionRecord]:
    found: dict[str, SessionRecord] = {}
    async for page in store.iter_records("all", page_size=1000):
        found.update((r.session.identity, r) for r in page if isinstance(r, SessionRecord))
    return found


@pytest.fixture
def urls(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, str, str]:
    return (f"sqlite:///{tmp_path / 'first.db'}", store_url_for("redis", tmp_path, request),
            f"sqlite:///{tmp_path / 'last.db'}")


async def test_sqlite_redis_sqlite_round_trip_compares_equal(urls: tuple[str, str, str], tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    first, middle, last = (open_store(url, clock=clock) for url in urls)
    try:
        original = _records(SESSIONS)
        for start in range(0, SESSIONS, 1000):
            await first.import_records(original[start:start + 1000])
        await _copy(first, middle, tmp_path / "one.ndjson")
        await _copy(middle, last, tmp_path / "two.ndjson")
        # what a store keeps of each: detached (never connected on arrival), times in whole milliseconds
        expected = {r.session.identity: prepared(r, first.max_turns) for r in original}
        assert await _everything(first) == expected
        assert await _everything(middle) == expected
        assert await _everything(last) == expected
    finally:
        for store in (first, middle, last):
            await store.close()
