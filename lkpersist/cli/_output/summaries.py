"""One-line results for cron and people: what a purge did (or would do)."""

from __future__ import annotations

from typing import Any

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
