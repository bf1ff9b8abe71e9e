"""Encryption status, migration and key rotation of a whole store: the library half of ``lkpersist encrypt``.

Every backend offers the same raw access to its personal values (:mod:`lkpersist.stores.raw`);
the logic lives here once:

- :func:`encryption_status` counts stored values: plaintext, encrypted per key id, undecryptable.
- :func:`migrate` encrypts every plaintext value in place under the first key; with ``rotate=True``
  it also re-encrypts values under older keys, so those keys can then be dropped.

A migration first reads the whole store and refuses to start (DecryptionError naming the session,
exit 3) when anything cannot be decrypted with the configured keys: a wrong key must never leave a
store half under one key and half under another. It then rewrites page by page, each value by
compare-and-set, so agents may keep writing: a value changed in between is read again and retried, and
operational fields are never written, so no turn and no reconnect increment is lost. Every committed
page stays done, values already in the wanted form are left alone, so an interrupted run is resumed by
running it again, and nothing is ever encrypted twice. Memory stays bounded by the page size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from lkpersist.crypto import ENV_KEYS
from lkpersist.crypto.codec import is_encrypted_form
from lkpersist.crypto.fernet import FernetCodec
from lkpersist.exceptions import CorruptRecordError, DecryptionError, InvalidInputError
from lkpersist.stores.base import SessionStore
from lkpersist.stores.raw import Rewrite, StoredRecord, StoredValues

DEFAULT_PAGE_SIZE = 100
"""Sessions read and rewritten per step (each with up to ``max_turns`` turns)."""
MIGRATION_LOCK = "encrypt"
MIGRATION_LOCK_TTL = 30.0
"""Seconds the lock outlives a migration that died; a running one extends it every ttl/3."""
MAX_ATTEMPTS = 5
"""Times one session is read again after agents changed it mid-rewrite, before it is left for a re-run."""
_NAMED = 10

PLAINTEXT = "plaintext"
UNDECRYPTABLE = "undecryptable"

Progress = Callable[[int], None]
"""Called with the number of sessions just finished (drives a progress bar)."""


@dataclass
class EncryptionStatus:
    """How a store's personal values are stored right now."""

    sessions: int = 0
    values: int = 0
    plaintext: int = 0
    encrypted: dict[str, int] = field(default_factory=dict)
    undecryptable: int = 0
    undecryptable_sessions: list[str] = field(default_factory=list)
    """The first few sessions holding an undecryptable value."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MigrationResult:
    """What ``migrate`` (or ``rotate``) did, or with ``dry_run`` would do."""

    rotate: bool
    dry_run: bool
    sessions: int = 0
    values: int = 0
    rewritten: int = 0
    retried: int = 0
    unfinished: list[str] = field(default_factory=list)
    """Sessions agents kept changing through every attempt: run again to finish them."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def encryption_status(
    store: SessionStore, *, page_size: int = DEFAULT_PAGE_SIZE, progress: Progress | None = None
) -> EncryptionStatus:
    """Count the store's personal values by how they are stored (decrypting each encrypted one)."""
    status = EncryptionStatus()
    async for page in store.stored_values().pages(page_size):
        for record in page:
            _count(store, record, status)
        _report(progress, len(page))
    return status


def _count(store: SessionStore, record: StoredRecord, status: EncryptionStatus) -> None:
    status.sessions += 1
    unreadable = False
    for value in record.values:
        kind = _classify(store, value.stored)
        status.values += 1
        if kind == PLAINTEXT:
            status.plaintext += 1
        elif kind == UNDECRYPTABLE:
            status.undecryptable += 1
            unreadable = True
        else:
            status.encrypted[kind] = status.encrypted.get(kind, 0) + 1
    if unreadable and len(status.undecryptable_sessions) < _NAMED:
        status.undecryptable_sessions.append(record.identity)


def _classify(store: SessionStore, stored: str | None) -> str:
    if stored is None:
        return UNDECRYPTABLE
    if isinstance(store.codec, FernetCodec):
        return store.codec.classify(stored)
    return UNDECRYPTABLE if is_encrypted_form(stored) else PLAINTEXT


async def migrate(
    store: SessionStore,
    *,
    rotate: bool = False,
    dry_run: bool = False,
    page_size: int = DEFAULT_PAGE_SIZE,
    progress: Progress | None = None,
    verified: Progress | None = None,
) -> MigrationResult:
    """Encrypt every plaintext value under the first key (and with ``rotate`` re-encrypt older ones).

    ``verified`` reports the first pass (every value checked), ``progress`` the second (rewrites).
    One migration or rotation at a time per store: it holds the store lock ``"encrypt"`` (LockHeldError,
    exit 1, when another run holds it); ``dry_run`` takes no lock.
    """
    codec = _encrypting_codec(store)
    access = store.stored_values()
    async with contextlib.AsyncExitStack() as held:
        if not dry_run:
            await held.enter_async_context(store.lock(MIGRATION_LOCK, MIGRATION_LOCK_TTL, refresh=True))
        async for page in access.pages(page_size):
            for record in page:
                _check_readable(codec, record)
            _report(verified, len(page))
        result = MigrationResult(rotate=rotate, dry_run=dry_run)
        async for page in access.pages(page_size):
            await _migrate_page(access, codec, page, result)
            _report(progress, len(page))
    return result


def _encrypting_codec(store: SessionStore) -> FernetCodec:
    if not isinstance(store.codec, FernetCodec):
        raise InvalidInputError(f"encrypting needs a key: set {ENV_KEYS} or give --key-file")
    return store.codec


def _check_readable(codec: FernetCodec, record: StoredRecord) -> None:
    """Raise, naming the session, when one of its values cannot be decrypted with the configured keys."""
    for value in record.values:
        if value.stored is None:
            raise CorruptRecordError(record.identity, "a stored personal value is not UTF-8 text")
        if is_encrypted_form(value.stored):
            try:
                codec.decode(value.stored)
            except DecryptionError as exc:
                raise exc.naming(record.identity) from exc


async def _migrate_page(
    access: StoredValues, codec: FernetCodec, page: Sequence[StoredRecord], result: MigrationResult
) -> None:
    result.sessions += len(page)
    result.values += sum(len(record.values) for record in page)
    pending = list(page)
    for _attempt in range(MAX_ATTEMPTS):
        plans = [(record.identity, _rewrites(codec, record, result.rotate)) for record in pending]
        plans = [(identity, rewrites) for identity, rewrites in plans if rewrites]
        if result.dry_run or not plans:
            result.rewritten += sum(len(rewrites) for _, rewrites in plans)
            return
        applied = await access.rewrite(plans)
        result.rewritten += sum(applied)
        changed = [identity for (identity, rewrites), done in zip(plans, applied, strict=True) if done < len(rewrites)]
        if not changed:
            return
        result.retried += len(changed)
        pending = await access.reread(changed)
    result.unfinished += [record.identity for record in pending if _rewrites(codec, record, result.rotate)]


def _rewrites(codec: FernetCodec, record: StoredRecord, rotate: bool) -> list[Rewrite]:
    rewrites = []
    for value in record.values:
        new = _target(codec, record.identity, value.stored, rotate)
        if new is not None and value.stored is not None:
            rewrites.append(Rewrite(value.ref, value.stored, new))
    return rewrites


def _target(codec: FernetCodec, identity: str, stored: str | None, rotate: bool) -> str | None:
    """What to write instead of ``stored``; None when it is already as wanted (or not ours to touch)."""
    if stored is None:
        return None
    if not is_encrypted_form(stored):
        return codec.encode(stored)
    if not rotate:
        return None
    try:
        return codec.reencrypt(stored) if codec.needs_rotation(stored) else None
    except DecryptionError as exc:
        raise exc.naming(identity) from exc


def _report(progress: Progress | None, done: int) -> None:
    if progress is not None and done:
        progress(done)


__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MIGRATION_LOCK",
    "EncryptionStatus",
    "MigrationResult",
    "encryption_status",
    "migrate",
]
