"""The presence-aware lifecycle rules: the one statement of what connect, disconnect, heartbeat,
a greeting claim, an update and a purge do to a session.

The memory and SQLite backends run these functions inside their own atomic section; the Redis backend
runs the same rules in one Lua script (one round trip), and the shared contract suite in
``tests/stores/test_contract.py`` holds every backend to them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from lkpersist.exceptions import InvalidInputError
from lkpersist.model.results import ConnectResult
from lkpersist.model.session import Session, SessionChanges
from lkpersist.model.ttl import TTLPolicy


def connect_transition(
    current: Session | None, identity: str, now: float, policy: TTLPolicy
) -> ConnectResult:
    """Absent or expired: a new session. Otherwise the same session, one more reconnect, connected."""
    if current is None or current.is_expired(now):
        fresh = Session(identity=identity, joined_at=now, last_seen=now, connected=True, ttl=policy.ttl_for(0))
        return ConnectResult(session=fresh, returning=False, was_connected=False)
    count = current.reconnect_count + 1
    # A presence nobody refreshed for presence_timeout belongs to an agent that died: count it as left.
    stale = current.connected and now - current.last_seen >= policy.presence_timeout
    updated = replace(
        current,
        reconnect_count=count,
        last_seen=now,
        connected=True,
        expires_at=None,
        ttl=policy.ttl_for(count),
        disconnect_count=current.disconnect_count + (1 if stale else 0),
    )
    return ConnectResult(session=updated, returning=True, was_connected=current.connected and not stale)


def disconnect_transition(current: Session, now: float) -> Session:
    """Start the countdown: ``expires_at = now + ttl``."""
    return replace(
        current,
        connected=False,
        last_seen=now,
        expires_at=now + current.ttl,
        disconnect_count=current.disconnect_count + 1,
    )


def heartbeat_transition(current: Session, now: float) -> Session:
    """Refresh a live session so it cannot expire while its participant is there."""
    return replace(current, last_seen=now, connected=True, expires_at=None)


def is_present(session: Session, now: float, policy: TTLPolicy) -> bool:
    """Connected and refreshed within the presence timeout: someone is there (what ``census`` counts)."""
    return session.connected and now - session.last_seen < policy.presence_timeout and not session.is_expired(now)


def greeting_owed(current: Session) -> bool:
    """A greeting is owed when none happened since the participant last left (or ever)."""
    return current.greeted_epoch < current.disconnect_count


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
