"""``sqlite:///path`` URLs: parsed and checked before the file is touched.

URL forms: ``sqlite:///relative/path.db`` (relative to the working directory when the store is opened),
``sqlite:////absolute/path.db``. Options: ``?timeout=30`` (seconds a writer waits for the lock) and
``?synchronous=normal|full``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from lkpersist.exceptions import InvalidStoreURLError

DEFAULT_TIMEOUT = 30.0
_SYNCHRONOUS = ("normal", "full")


@dataclass(frozen=True, slots=True)
class SQLiteTarget:
    """Everything a ``sqlite://`` URL says, checked: an absolute file path and connection options.

    ``create``: whether a missing file (and its directories) is created on first use; False for reading
    (``open_store(url, create=False)``), when a missing file is an error and nothing is created.
    """

    path: Path
    timeout: float = DEFAULT_TIMEOUT
    synchronous: str = "normal"
    create: bool = True


def parse_sqlite_url(url: str, cwd: Path | None = None) -> SQLiteTarget:
    """``sqlite:///relative.db`` (from ``cwd``) or ``sqlite:////absolute.db``, ``?timeout=&synchronous=``."""
    try:
        parts = urlsplit(url)
        if parts.netloc:
            raise ValueError("a SQLite URL has no host: use sqlite:///relative.db or sqlite:////absolute.db")
        raw = unquote(parts.path.removeprefix("/"))
        if not raw or raw.endswith("/"):
            raise ValueError("no database file named (e.g. sqlite:///sessions.db)")
        path = (cwd or Path.cwd()) / raw
        if path.is_dir():
            raise ValueError(f"{str(path)!r} is a directory, not a database file")
        return SQLiteTarget(path=path, **_options(parts.query))
    except ValueError as exc:
        raise InvalidStoreURLError(f"invalid SQLite URL {url!r}: {exc}") from None


def _options(query: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
        if name == "timeout":
            options["timeout"] = check_timeout(_number(value))
        elif name == "synchronous":
            options["synchronous"] = check_synchronous(value)
        else:
            raise ValueError(f"unknown option {name!r} (known: synchronous, timeout)")
    return options


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"timeout={value!r} is not a number of seconds") from None


def check_timeout(seconds: float) -> float:
    if not seconds > 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {seconds!r}")
    return float(seconds)


def check_synchronous(value: str) -> str:
    if value.lower() not in _SYNCHRONOUS:
        raise ValueError(f"synchronous must be one of {', '.join(_SYNCHRONOUS)}, not {value!r}")
    return value.lower()
