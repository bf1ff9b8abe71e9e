"""Text pieces every view uses: the one time format, short ages, escaping untrusted text, statuses."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lkpersist.durations import format_duration

if TYPE_CHECKING:
    from lkpersist.model.session import Session


def iso_utc(timestamp: float) -> str:
    """``2027-01-15T08:00:00Z``: the one human time format."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def relative(timestamp: float, now: float) -> str:
    """``3m ago`` / ``in 4m12s``, at most two units so the column stays narrow."""
    delta = timestamp - now
    span = "".join(re.findall(r"\d+[dhms]", format_duration(abs(delta)))[:2])
    return f"in {span}" if delta > 0.5 else f"{span} ago"


def safe_text(text: str, limit: int | None = None, *, keep_newlines: bool = False) -> str:
    """``text`` made harmless for a terminal: control and format characters escaped, cut at ``limit``."""
    escaped = "".join(_escape_char(ch, keep_newlines) for ch in text)
    if limit is not None and len(escaped) > limit:
        return escaped[: limit - 1] + "…"
    return escaped


def counted(count: int, noun: str) -> str:
    """``1 session``, ``2 sessions``: a count and its noun, for summary lines."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def quoted(identity: str) -> str:
    """An identity for a one-line message: escaped, quoted, at most about a line long."""
    return f"'{safe_text(identity, 80)}'"


def identity_cell(identity: str, limit: int) -> str:
    """An identity in a table: escaped and cut like any text, and quoted when blank space at either end
    would make it invisible or look like another (``'   '``, ``' alice'``)."""
    if identity.strip() == identity:
        return safe_text(identity, limit)
    return f"'{safe_text(identity, limit - 2)}'"


def _escape_char(ch: str, keep_newlines: bool) -> str:
    if ch == "\\":
        return "\\\\"
    if keep_newlines and ch in "\n\t":
        return ch
    if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
        return ch.encode("unicode_escape").decode("ascii")
    return ch


def status_of(session: Session, now: float) -> str:
    """``connected``, ``disconnected`` (counting down) or ``expired``."""
    if session.is_expired(now):
        return "expired"
    return "connected" if session.connected else "disconnected"


def expires_cell(session: Session, now: float) -> str:
    if session.connected and not session.is_expired(now):
        return "-"
    return relative(session.deadline, now)
