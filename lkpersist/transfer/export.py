"""``sessions export``: a store's records written as the versioned NDJSON of :mod:`~lkpersist.transfer.format`.

Records are read page by page (``store.iter_records``) and written as they come, the next page read
while this one is written, so memory stays bounded by two pages whatever the number of sessions. Values come out decrypted with the configured keys: the
file holds personal data in plaintext even when the store encrypts at rest.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

from lkpersist.model.results import CorruptRecord
from lkpersist.model.session import Status
from lkpersist.model.transfer import SessionRecord
from lkpersist.stores.base import DEFAULT_PAGE_SIZE, RecordPage, SessionStore
from lkpersist.transfer.format import header_line, record_line

Progress = Callable[[int], None]
"""Called with the number of sessions just written."""


@dataclass
class ExportResult:
    """What an export wrote; ``corrupt`` and ``missing`` were not written (reported by the caller)."""

    sessions: int = 0
    turns: int = 0
    corrupt: list[CorruptRecord] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """Identities asked for by name that have no session of the asked status."""


async def export_sessions(
    store: SessionStore,
    out: TextIO,
    *,
    status: Status = "active",
    identities: Sequence[str] | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    progress: Progress | None = None,
) -> ExportResult:
    """Write the header and one line per matching session (only ``identities`` when given)."""
    with _fewer_collections():
        return await _export(store, out, status, identities, page_size, progress)


async def _export(
    store: SessionStore, out: TextIO, status: Status, identities: Sequence[str] | None, page_size: int,
    progress: Progress | None,
) -> ExportResult:
    result = ExportResult()
    out.write(header_line(store.now(), status) + "\n")
    found: set[str] = set()
    async for page in _read_ahead(store.iter_records(status, identities, page_size)):
        lines = []
        for item in page:
            if isinstance(item, CorruptRecord):
                result.corrupt.append(item)
                continue
            lines.append(record_line(item))
            result.turns += item.turn_total
            if identities is not None:
                found.add(item.session.identity)
        out.write("\n".join(lines) + "\n" if lines else "")
        result.sessions += len(lines)
        if progress is not None:
            progress(len(page))
    if identities is not None:
        result.missing = [identity for identity in dict.fromkeys(identities) if identity not in found]
    return result


_YOUNG_THRESHOLD = 50_000
_raised: list[tuple[int, ...]] = []
"""The collector's thresholds from before the first export still running, once per export running."""


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """The cyclic garbage collector's young threshold at least ``_YOUNG_THRESHOLD`` while any export runs.

    A page being read holds some twenty containers a session (turn dicts, hashes, the record) that outlive
    the young generation's collections, so at the default threshold (700) the collector promotes them
    and runs a full collection over the whole heap every few pages: 5-6 us a session, an eighth of an
    export's client time. They are freed by reference counting when the page is written (a page makes no
    cycles), so the collector has nothing to find; with the higher threshold it still runs, after 50,000
    containers more than were freed, so memory stays bounded. Restored once the last export ends."""
    before = _raised[0] if _raised else gc.get_threshold()
    _raised.append(before)
    if 0 < before[0] < _YOUNG_THRESHOLD:  # 0: automatic collection is off, and stays off
        gc.set_threshold(_YOUNG_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        _raised.pop()
        if not _raised:
            gc.set_threshold(*before)


async def _read_ahead(pages: AsyncIterator[RecordPage]) -> AsyncIterator[RecordPage]:
    """The pages of ``pages``, the next one read from the store while the caller writes this one."""
    upcoming: asyncio.Future[RecordPage] = asyncio.ensure_future(anext(pages))
    try:
        while True:
            try:
                page = await upcoming
            except StopAsyncIteration:
                return
            upcoming = asyncio.ensure_future(anext(pages))
            await asyncio.sleep(0)  # the task starts now (a store's read is under way) before the caller writes
            yield page
    finally:
        if not upcoming.done():
            upcoming.cancel()
        await asyncio.gather(upcoming, return_exceptions=True)
        await pages.aclose()  # type: ignore[attr-defined]


async def one_record(store: SessionStore, identity: str, status: Status = "all") -> SessionRecord | CorruptRecord | None:
    """One identity's record (for ``--format chat-ctx``), or None."""
    async for page in store.iter_records(status, [identity]):
        for item in page:
            return item
    return None


__all__ = ["ExportResult", "export_sessions", "one_record"]
