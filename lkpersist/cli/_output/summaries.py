"""One-line results for cron and people: what a purge did (or would do), and its progress bar."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from lkpersist.cli._output.progress import stderr_progress
from lkpersist.durations import format_duration
from lkpersist.model.results import PurgeResult


def purge_summary(result: PurgeResult, older_than: float | None) -> str:
    """``purged 12 expired sessions`` / ``would purge ... (dry run)`` / ``nothing to purge: ...``."""
    def what(count: int) -> str:
        noun = "session" if count == 1 else "sessions"
        if older_than is None:
            return f"expired {noun}"
        return f"{noun} expired or last seen more than {format_duration(older_than)} ago"

    suffix = " (dry run)" if result.dry_run else ""
    if result.purged == 0:
        return f"nothing to purge: no {what(0)}{suffix}"
    verb = "would purge" if result.dry_run else "purged"
    return f"{verb} {result.purged} {what(result.purged)}{suffix}"


def purge_document(result: PurgeResult, older_than: float | None) -> dict[str, Any]:
    return {"purged": result.purged, "dry_run": result.dry_run, "older_than": older_than}


@contextmanager
def purge_progress(total: int | None, *, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A transient bar on stderr, only on a terminal (a cron job's mail never carries it); the callback
    takes the running total a purge reports (``store.purge(progress=...)``). ``total``: what is expected,
    or None when unknown (the bar then pulses)."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    columns = (TextColumn("purging"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with stderr_progress(*columns, enabled=enabled) as bar:
        task = bar.add_task("purge", total=total or None)
        yield lambda purged: bar.update(task, completed=purged)
