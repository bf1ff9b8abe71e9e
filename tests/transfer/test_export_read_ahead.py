"""``export_sessions`` reads ahead: the store's read of the next page has started (its job is on the
SQLite worker's queue, its Redis pipeline sent) before the lines of this page are written, so the two
run at the same time. Checked by the order of events, not by timing."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

from lkpersist.clock import VirtualClock
from lkpersist.model.session import Session
from lkpersist.model.transfer import SessionRecord
from lkpersist.stores.base import RecordPage
from lkpersist.stores.memory import MemoryStore
from lkpersist.transfer.export import export_sessions


class _Logged(io.StringIO):
    def __init__(self, events: list[str]) -> None:
        super().__init__()
        self.events = events

    def write(self, text: str) -> int:
        if '"session"' in text:
            self.events.append(f"write {text.count(chr(10))} lines")
        return super().write(text)


class _ObservedStore(MemoryStore):
    """A memory store noting when each page's read starts (when its iterator is asked for it)."""

    def __init__(self, events: list[str], **options: Any) -> None:
        super().__init__(**options)
        self.events = events

    async def _scan_records(self, status: Any, page_size: int) -> AsyncIterator[RecordPage]:
        number = 0
        async for page in super()._scan_records(status, page_size):
            number += 1
            self.events.append(f"read {number}")
            yield page
        self.events.append("read: no more")


async def test_the_next_page_is_asked_for_before_this_one_is_written(clock: VirtualClock) -> None:
    events: list[str] = []
    store = _ObservedStore(events, clock=clock)
    now = clock.now()
    await store.import_records([
        SessionRecord(Session(identity=f"ahead-{index}", joined_at=now - 10, last_seen=now - 1, ttl=600.0), ())
        for index in range(6)
    ])
    result = await export_sessions(store, _Logged(events), status="all", page_size=2)
    assert result.sessions == 6
    assert events == ["read 1", "read 2", "write 2 lines", "read 3", "write 2 lines", "read: no more",
                      "write 2 lines"]
