"""``import_sessions`` over the lines of a file: blank lines (whitespace only, text or bytes) are skipped,
neither imported nor reported, and the lines around them keep their numbers."""

from __future__ import annotations

import pytest

from lkpersist.clock import VirtualClock
from lkpersist.model.session import Session
from lkpersist.model.transfer import SessionRecord
from lkpersist.stores.memory import MemoryStore
from lkpersist.transfer.format import header_line, record_line
from lkpersist.transfer.import_ import import_sessions
from tests.conftest import T0


def _line(identity: str) -> str:
    session = Session(identity=identity, joined_at=T0 - 10, last_seen=T0, expires_at=T0 + 300, ttl=300.0)
    return record_line(SessionRecord(session)) + "\n"


@pytest.mark.parametrize("as_bytes", [False, True])
async def test_blank_lines_are_skipped_and_numbers_kept(clock: VirtualClock, as_bytes: bool) -> None:
    lines = [header_line(T0, "all") + "\n", _line("a"), "\n", "", " \t\r\n", _line("b"), "{broken\n"]
    store = MemoryStore(clock=clock)
    source = [line.encode("utf-8") for line in lines] if as_bytes else lines
    result = await import_sessions(store, source)
    assert result.outcomes == {"created": 2}
    assert result.bad_lines == 1 and result.problems[0].startswith("line 7:")
    assert {item.session.identity async for page in store.iter_records("all") for item in page
            if isinstance(item, SessionRecord)} == {"a", "b"}
