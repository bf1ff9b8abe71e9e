"""Checks and cursors shared by every backend's listing: a status filter, a page size, an opaque position."""

from __future__ import annotations

import base64
import json

from lkpersist.exceptions import InvalidInputError
from lkpersist.model.session import STATUSES, Status

Position = tuple[int, str]
"""Where a listing stands: the last item's ``last_seen`` in ms and its tiebreak (identity or member)."""


def check_status(status: str) -> Status:
    if status not in STATUSES:
        raise InvalidInputError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    return status


def check_limit(limit: int) -> int:
    if limit < 1:
        raise InvalidInputError("limit must be at least 1")
    return limit


def encode_cursor(last_seen_ms: int, tiebreak: str) -> str:
    """Pagination cursors are opaque to callers: the (last_seen, tiebreak) position of the last item."""
    raw = json.dumps([last_seen_ms, tiebreak], ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_cursor(cursor: str) -> Position:
    try:
        last_seen_ms, tiebreak = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        return int(last_seen_ms), str(tiebreak)
    except (ValueError, TypeError, UnicodeError) as exc:
        raise InvalidInputError(f"invalid cursor {cursor!r}") from exc


__all__ = ["Position", "check_limit", "check_status", "decode_cursor", "encode_cursor"]
