"""The one place ``sqlite3`` exceptions become lkpersist errors, with a one-line message naming the file."""

from __future__ import annotations

import sqlite3

from lkpersist.exceptions import StoreError, StoreUnavailableError
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
    if code in _BUSY_CODES:
        return StoreUnavailableError(
            f"{where}: {detail} (another process held it longer than the {target.timeout:g} s busy timeout)"
        )
    if isinstance(exc, sqlite3.OperationalError):
        return StoreUnavailableError(f"{where}: {detail}")
    return StoreError(f"{where}: {detail}")


def is_busy(exc: sqlite3.Error) -> bool:
    return ((getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF) in _BUSY_CODES
