"""The store's checks for ``lkpersist doctor``: reachable, its layout, encryption, clocks, purges."""

from __future__ import annotations

import time
from collections.abc import Callable

from lkpersist.crypto import ENV_KEYS
from lkpersist.crypto.config import codec_from_env
from lkpersist.crypto.fernet import FernetCodec
from lkpersist.crypto.migrate import EncryptionStatus, encryption_status
from lkpersist.doctor import Check, failed, passed
from lkpersist.exceptions import LkPersistError
from lkpersist.model.results import StorageInfo
from lkpersist.stores import open_store, redact_url
from lkpersist.stores.base import STALE_AFTER, SessionStore

PROBE_IDENTITY = "lkpersist-doctor-probe"
MAX_CLOCK_OFFSET = 1.0
"""Seconds of clock difference to a Redis server beyond which expiry (judged by each host's clock) drifts."""
STORE_FIX = "check --store / LKPERSIST_STORE, that the server runs and is reachable, and its credentials"


async def store_checks(
    url: str, *, key_file: str | None = None, progress: Callable[[int], None] | None = None
) -> list[Check]:
    """Every store check; when the store does not answer, only that one (the others need it)."""
    shown = redact_url(url)
    try:
        store = open_store(url, create=False, codec=codec_from_env(key_file=key_file))
    except LkPersistError as exc:
        return [failed("store", str(exc), STORE_FIX)]
    try:
        started = time.perf_counter()
        try:
            await store.get(PROBE_IDENTITY)
            info = await store.storage_info()
        except LkPersistError as exc:
            return [failed("store", str(exc), STORE_FIX)]
        answered = f"{shown} answers in {(time.perf_counter() - started) * 1000:.1f} ms"
        return [passed("store", answered), _layout(info), *await _later_checks(store, info, progress)]
    finally:
        await store.close()


async def _later_checks(store: SessionStore, info: StorageInfo, progress: Callable[[int], None] | None) -> list[Check]:
    checks = []
    for check in (_encryption(store, progress), _clock(info), _purges(store)):
        try:
            checks.append(await check)
        except LkPersistError as exc:
            checks.append(failed("store", f"stopped answering: {exc}", STORE_FIX))
            break
    return checks


def _layout(info: StorageInfo) -> Check:
    server = f" ({info.server_version})" if info.server_version else ""
    if info.layout_version is None:
        return passed("schema", f"{info.backend}{server}: records carry their schema version; no stored layout")
    if info.supported_layout is not None and info.layout_version > info.supported_layout:
        return failed("schema", f"layout version {info.layout_version} is newer than this lkpersist "
                      f"({info.supported_layout})", "upgrade lkpersist on this machine")
    return passed("schema", f"{info.backend}{server}: layout version {info.layout_version}")


async def _encryption(store: SessionStore, progress: Callable[[int], None] | None) -> Check:
    found = await encryption_status(store, progress=progress)
    codec = store.codec
    keys = list(codec.key_ids) if isinstance(codec, FernetCodec) else []
    used = ", ".join(f"{kid} ({count})" for kid, count in sorted(found.encrypted.items())) or "none"
    detail = f"{len(keys)} keys configured; values by key id: {used}; plaintext {found.plaintext}"
    if found.undecryptable:
        return failed("encryption", f"{detail}; {found.undecryptable} values undecryptable "
                      f"(sessions {', '.join(repr(s) for s in found.undecryptable_sessions)})",
                      f"configure the key they were encrypted with ({ENV_KEYS} or --key-file)")
    if keys and found.plaintext:
        return failed("encryption", detail, "run `lkpersist encrypt migrate` to encrypt what is left in plaintext")
    if not keys:
        return passed("encryption", f"not configured: {found.values} values stored in plaintext (optional; see README)")
    return passed("encryption", detail + _rotation_note(found, keys))


def _rotation_note(found: EncryptionStatus, keys: list[str]) -> str:
    older = sum(count for kid, count in found.encrypted.items() if kid != keys[0])
    return f" ({older} under older keys: `lkpersist encrypt rotate` retires them)" if older else ""


async def _clock(info: StorageInfo) -> Check:
    if info.server_time is None:
        return passed("clock", f"{info.backend}: expiry is judged by this host's clock alone")
    offset = info.server_time - time.time()
    detail = f"this host is {abs(offset):.3f} s {'behind' if offset > 0 else 'ahead of'} the Redis server"
    if abs(offset) > MAX_CLOCK_OFFSET:
        return failed("clock", detail, "synchronise the clocks (chrony or systemd-timesyncd): expiry compares "
                      "times written by every host")
    return passed("clock", detail)


async def _purges(store: SessionStore) -> Check:
    census = await store.census()
    detail = f"{census.expired} expired sessions waiting for a purge"
    if census.stale:
        return failed("purge", f"{detail}, {census.stale} of them expired over {STALE_AFTER / 3600:g} h ago",
                      "schedule `lkpersist sessions purge` every few minutes (README: Purge from cron or systemd)")
    return passed("purge", f"{detail}, none expired over {STALE_AFTER / 3600:g} h ago")


__all__ = ["MAX_CLOCK_OFFSET", "store_checks"]
