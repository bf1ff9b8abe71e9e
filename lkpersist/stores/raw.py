"""Raw access to stored personal values, for ``encrypt status / migrate / rotate``: read as stored and
rewritten by compare-and-set (``store.stored_values()``; each backend's ``raw.py``).

The driver (:mod:`lkpersist.crypto.migrate`) never sees a backend's layout: each backend offers
:class:`StoredValues`, which pages through every session's personal values as they are stored
(language, metadata and context, and every turn payload) and rewrites some of them, each only if it
still holds what was read. That is what makes a migration safe while agents keep writing: a value an
agent changed in between is simply read again, and operational fields (counts, times, connected) are
never written, so no reconnect increment and no turn can be lost.

A value's ``ref`` says where it lives; it is the backend's own and opaque to the driver.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StoredValue:
    """One personal value as stored; ``stored`` is None when the bytes are not even UTF-8 text."""

    ref: Hashable
    stored: str | None


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """Every personal value of one session (expired or not), as read in one snapshot."""

    identity: str
    values: tuple[StoredValue, ...]


@dataclass(frozen=True, slots=True)
class Rewrite:
    """Replace the value at ``ref`` with ``new``, only if it still is ``old``."""

    ref: Hashable
    old: str
    new: str


Batch = Sequence[tuple[str, Sequence[Rewrite]]]


class StoredValues(Protocol):
    """Raw access to a store's personal values, for encryption status and migration."""

    def pages(self, page_size: int) -> AsyncIterator[list[StoredRecord]]:
        """Every session's values, about ``page_size`` sessions at a time (a session may come twice)."""
        ...

    async def reread(self, identities: Sequence[str]) -> list[StoredRecord]:
        """The current values of these sessions (those that still exist)."""
        ...

    async def rewrite(self, batch: Batch) -> list[int]:
        """Apply each compare-and-set; per identity, how many of its rewrites took effect."""
        ...


def text_or_none(raw: bytes | str | None) -> str | None:
    """A stored value as text; None when it is not UTF-8 (it then counts as undecryptable)."""
    if raw is None or isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
