"""``sessions export``: a store's records written as the versioned NDJSON of :mod:`~lkpersist.transfer.format`.

Records are read page by page (``store.iter_records``) and written as they come, the next page read
while this one is written, so memory stays bounded by two pages whatever the number of sessions. Values come out decrypted with the configured keys: the
file holds personal data in plaintext even when the store encrypts at rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
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
