"""The one place ``sqlite3`` exceptions become lkpersist errors, with a one-line message naming the file."""

from __future__ import annotations

import os
import sqlite3

from lkpersist.exceptions import StoreError, StoreReadOnlyError, StoreUnavailableError
from lkpersist.stores.sqlite.url import SQLiteTarget

_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
_UNUSABLE_CODES = (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT)


def translate(exc: sqlite3.Error, target: SQLiteTarget) -> StoreError:
    """The one mapping from sqlite3 exceptions to lkpersist's, with a one-line message naming the file."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    detail = " ".join(str(exc).split()) or type(exc).__name__
    where = f"SQLite store {str(target.path)!r}"
    if code in _UNUSABLE_CODES:
        return StoreError(f"{where} is unusable: {detail}")
    if code == sqlite3.SQLITE_READONLY:
        return StoreReadOnlyError(
            f"{where} is read-only for this user (uid {os.getuid()}): this command writes, and needs write "
            "access to the file and its directory (read-only commands work)"
        )
    if code in _BUSY_CODES:
        return StoreUnavailableError(
            f"{where}: {detail} (another process held it longer than the {target.timeout:g} s busy timeout)"
        )
    if isinstance(exc, sqlite3.OperationalError):
        return StoreUnavailableError(f"{where}: {detail}")
    return StoreError(f"{where}: {detail}")


_NO_SHARED_MEMORY = (
    sqlite3.SQLITE_READONLY_DIRECTORY, sqlite3.SQLITE_READONLY_CANTINIT, sqlite3.SQLITE_READONLY_CANTLOCK
)


def no_shared_memory(exc: sqlite3.Error) -> bool:
    """A read-only WAL database whose ``-shm`` cannot be created or locked here (the directory is not ours)."""
    code = getattr(exc, "sqlite_errorcode", None) or 0
    return code in _NO_SHARED_MEMORY or (code & 0xFF) == sqlite3.SQLITE_CANTOPEN


def is_busy(exc: sqlite3.Error) -> bool:
    return ((getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF) in _BUSY_CODES
