"""``sessions import``: a file in the format of :mod:`~lkpersist.transfer.format` streamed into a store.

Lines are read one at a time and imported in batches (``store.import_records``: each session written
whole and atomically under the conflict rule), one batch being written while the next is parsed (the
loop turning every few lines so that the write moves on meanwhile), so memory stays bounded by two batches. A line that does not
parse (truncated, edited out of shape) is reported with its number and skipped, or, with ``strict``,
stops the import: every record before it is imported, none after it. A dry run reads what is stored and
applies the same rule (:func:`lkpersist.model.transfer.decide_import`) without writing, so it predicts
each outcome exactly (unless someone writes meanwhile).

Importing the same file twice changes nothing: the second time every session is ``unchanged`` (or
``skipped``), turns are merged by item id and counts are never added.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from lkpersist.model.results import CorruptRecord
from lkpersist.model.transfer import (
    ConflictRule,
    ImportOutcome,
    SessionRecord,
    check_conflict_rule,
    decide_import,
    prepared,
)
from lkpersist.stores.base import SessionStore
from lkpersist.transfer.format import FormatError, Header, parse_header, parse_record

DEFAULT_BATCH = 500
Progress = Callable[[int], None]
"""Called with the number of bytes of input just consumed."""
_KEPT_PROBLEMS = 1000
_YIELD_EVERY = 25
"""Lines parsed between two turns of the event loop while a batch is being written: its store needs the
loop to move (Redis sends a batch in chunks and reads their replies), and without a turn it would only
move once the next batch is parsed, so the two would take turns instead of overlapping (a turn costs
about what a line does; one per 25 lines is noise).
"""


@dataclass
class ImportResult:
    """What an import did (or, with ``dry_run``, would do), per outcome, and what it could not read."""

    dry_run: bool
    on_conflict: ConflictRule
    outcomes: Counter[str] = field(default_factory=Counter)
    bad_lines: int = 0
    stopped_at: int | None = None
    """With ``strict``: the number of the bad line the import stopped at."""
    problems: list[str] = field(default_factory=list)
    """One message per bad line or unreadable stored record (the first thousand)."""
    failed: list[str] = field(default_factory=list)
    """Identities whose stored record could not be read: left alone."""

    @property
    def sessions(self) -> int:
        return sum(self.outcomes.values())

    def to_dict(self) -> dict[str, Any]:
        counts = {outcome.value: self.outcomes.get(outcome.value, 0) for outcome in ImportOutcome}
        return {"dry_run": self.dry_run, "on_conflict": self.on_conflict, "sessions": self.sessions, **counts,
                "bad_lines": self.bad_lines, "stopped_at_line": self.stopped_at, "problems": self.problems}

    def problem(self, message: str) -> None:
        if len(self.problems) < _KEPT_PROBLEMS:
            self.problems.append(message)


async def import_sessions(
    store: SessionStore,
    lines: Iterable[str] | Iterable[bytes],
    *,
    on_conflict: ConflictRule = "merge",
    dry_run: bool = False,
    strict: bool = False,
    batch: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    on_problem: Callable[[str], None] | None = None,
) -> ImportResult:
    """Import every record of ``lines`` (the header first); FormatError when the header is not ours.

    ``lines`` may be text, or bytes (a file opened in binary), whose lines are then decoded one by one so
    that one line of bad bytes is reported as that line rather than stopping the import."""
    result = ImportResult(dry_run=dry_run, on_conflict=check_conflict_rule(on_conflict))
    pending: list[tuple[int, SessionRecord]] = []
    numbered: Iterator[tuple[int, str | bytes]] = enumerate(lines, start=1)
    _read_header(numbered, progress)
    writing: asyncio.Task[None] | None = None  # one batch is written while the next one is parsed
    try:
        for number, raw in numbered:
            if progress is not None:
                progress(len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8")))
            if not raw or raw.isspace():  # (not strip(): that copies every line)
                continue
            if number % _YIELD_EVERY == 0 and writing is not None and not writing.done():
                await asyncio.sleep(0)  # the batch in flight moves on (see _YIELD_EVERY)
            try:
                pending.append((number, parse_record(_text(raw, number), number)))
            except FormatError as exc:
                _bad_line(result, str(exc), on_problem)
                if strict:
                    result.stopped_at = number
                    break
            if len(pending) >= batch:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(_flush(store, pending, result, on_problem))
                pending = []
                await asyncio.sleep(0)  # the batch is handed to the store before the next one is parsed
        if writing is not None:
            await writing
    finally:
        if writing is not None and not writing.done():
            writing.cancel()
            await asyncio.gather(writing, return_exceptions=True)
    await _flush(store, pending, result, on_problem)
    return result


def _read_header(numbered: Iterable[tuple[int, str | bytes]], progress: Progress | None) -> Header:
    for _, raw in numbered:
        if progress is not None:
            progress(len(raw))
        return parse_header(_text(raw, 1))
    raise FormatError("the file is empty (no header line)", 1)


def _text(raw: str | bytes, number: int) -> str:
    """A line as text; bytes that are not UTF-8 are a bad line (never silently replaced)."""
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("not UTF-8 text", number) from None


def _bad_line(result: ImportResult, message: str, on_problem: Callable[[str], None] | None) -> None:
    result.bad_lines += 1
    result.problem(message)
    if on_problem is not None:
        on_problem(message)


async def _flush(
    store: SessionStore, pending: list[tuple[int, SessionRecord]], result: ImportResult,
    on_problem: Callable[[str], None] | None,
) -> None:
    if not pending:
        return
    records = [record for _, record in pending]
    if result.dry_run:
        outcomes = await _predicted(store, records, result.on_conflict)
    else:
        outcomes = await store.import_records(records, result.on_conflict)
    for (number, record), outcome in zip(pending, outcomes, strict=True):
        result.outcomes[outcome.value] += 1
        if outcome is ImportOutcome.FAILED:
            result.failed.append(record.session.identity)
            message = f"line {number}: the stored session could not be read (corrupt or undecryptable); left alone"
            result.problem(message)
            if on_problem is not None:
                on_problem(message)


async def _predicted(store: SessionStore, records: Sequence[SessionRecord], rule: ConflictRule) -> list[ImportOutcome]:
    """What ``import_records`` would answer, from what is stored now (later lines see earlier ones' result)."""
    stored: dict[str, SessionRecord | CorruptRecord] = {}
    async for page in store.iter_records("all", [record.session.identity for record in records]):
        stored.update((_identity(item), item) for item in page)
    outcomes = []
    for record in (prepared(record, store.max_turns) for record in records):
        identity = record.session.identity
        current = stored.get(identity)
        if isinstance(current, CorruptRecord):
            outcomes.append(ImportOutcome.FAILED)
            continue
        session, turns = (None, ()) if current is None else (current.session, current.turns)
        decision = decide_import(session, turns, record, rule, store.now(), store.max_turns)
        if decision.write is not None and decision.write.session is not None:
            stored[identity] = SessionRecord(decision.write.session, tuple(decision.write.turns))
        outcomes.append(decision.outcome)
    return outcomes


def _identity(item: SessionRecord | CorruptRecord) -> str:
    return item.identity if isinstance(item, CorruptRecord) else item.session.identity


__all__ = ["DEFAULT_BATCH", "ImportResult", "import_sessions"]
