"""``import_sessions`` keeps one batch being written while it parses the next, and lets that write move on.

A store's write of a batch needs the event loop several times (Redis: sending its chunks, reading the
replies). If parsing never yielded, the write of batch N could only move while the loop waited for it
at the end of batch N+1, so parsing and writing would take turns instead of overlapping. Checked without
timing: a store whose write needs several loop turns, and a line source that notes, as each line is
read, whether the write of the previous batch has finished.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

from lkpersist.clock import VirtualClock
from lkpersist.model.session import Session, Turn
from lkpersist.model.transfer import ConflictRule, ImportOutcome, SessionRecord
from lkpersist.stores.memory import MemoryStore
from lkpersist.transfer.format import header_line, record_line
from lkpersist.transfer.import_ import import_sessions
from tests.conftest import T0

BATCH = 500
LOOP_TURNS = 5
"""Loop iterations one batch's write takes (a few round trips)."""


class SlowWriter(MemoryStore):
    """A memory store whose ``import_records`` needs ``LOOP_TURNS`` turns of the loop, noting when it is done."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(clock=clock)
        self.written = 0

    async def _import_records(self, records: Sequence[SessionRecord], rule: ConflictRule) -> list[ImportOutcome]:
        for _ in range(LOOP_TURNS):
            await asyncio.sleep(0)
        outcomes = await super()._import_records(records, rule)
        self.written += 1
        return outcomes


def _lines(store: SlowWriter, count: int, seen: list[tuple[int, int]]) -> Iterator[str]:
    yield header_line(T0, "all")
    for n in range(count):
        seen.append((n, store.written))
        session = Session(identity=f"u{n}", joined_at=T0 - 10, last_seen=T0, expires_at=T0 + 300, ttl=300.0)
        yield record_line(SessionRecord(session, (Turn("user", f"hi {n}", T0 - 1, f"i{n}"),)))


async def test_the_batch_in_flight_is_written_while_the_next_one_is_parsed(clock: VirtualClock) -> None:
    store = SlowWriter(clock)
    seen: list[tuple[int, int]] = []
    result = await import_sessions(store, _lines(store, 3 * BATCH, seen), batch=BATCH)
    assert result.outcomes == {"created": 3 * BATCH}
    written_by = {n: written for n, written in seen}
    # the first batch went to the store when line BATCH was read; it is written well before the
    # second batch is all parsed (without yielding it would only be written at line 2 * BATCH)
    assert written_by[2 * BATCH - 1] == 1
    assert written_by[BATCH] == 0  # ... and not before it was handed over
