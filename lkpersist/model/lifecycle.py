"""The lifecycle rules besides presence: what an update and a purge do to a session, and who is present.

Arrive, leave, beat and a greeting claim are the visit model of :mod:`lkpersist.model.presence`. The memory
and SQLite backends run these functions inside their own atomic section; the Redis backend restates the
same rules in Lua (one round trip), and the shared contract suites in ``tests/stores/`` hold every
backend to them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from lkpersist.exceptions import InvalidInputError
from lkpersist.model.session import Session, SessionChanges
from lkpersist.model.ttl import TTLPolicy


def is_present(session: Session, now: float, policy: TTLPolicy) -> bool:
    """Connected and refreshed within the presence timeout: someone is there (what ``census`` counts)."""
    return session.connected and now - session.last_seen <= policy.presence_timeout and not session.is_expired(now)


def merge_update(current: Session, changes: SessionChanges) -> Session:
    """Shallow-merge metadata and context (a key set to None is removed); replace language when given."""
    return replace(
        current,
        language=current.language if changes.language is None else changes.language,
        metadata=_merged(current.metadata, changes.metadata),
        context=_merged(current.context, changes.context),
    )


def _merged(base: dict[str, Any], changes: dict[str, Any] | None) -> dict[str, Any]:
    if not changes:
        return dict(base)
    result = dict(base)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def check_older_than(older_than: float | None) -> float | None:
    """A purge's ``older_than`` (seconds), refused when negative."""
    if older_than is not None and older_than < 0:
        raise InvalidInputError("older_than must not be negative")
    return older_than


def purge_cutoff(now: float, older_than: float | None) -> float | None:
    """The last_seen before which ``older_than`` purges a session; validates the duration."""
    checked = check_older_than(older_than)
    return None if checked is None else now - checked


def should_purge(session: Session, now: float, cutoff: float | None) -> bool:
    """The one purge rule: expired, or last seen before the cutoff."""
    return session.is_expired(now) or (cutoff is not None and session.last_seen < cutoff)
