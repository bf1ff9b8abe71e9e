"""Backends side by side, chosen by URL.

``open_store(url)`` is the one way in. Backends are imported lazily so that opening a SQLite store never
imports redis, and nothing here imports livekit; the contract itself (``SessionStore``) is loaded on
first use too, so importing this package (the CLI does, for its help and completion) costs almost nothing.

==============================================  ==============================================
``sqlite:///relative/path.db``                  SQLite file (the default, shared across processes)
``sqlite:////absolute/path.db``
``memory://``                                   this process only
``redis://[user:pass@]host:port/db``            Redis; ``rediss://`` for TLS
``redis+sentinel://h:p[,h:p]/service[/db]``     Redis behind Sentinel
``redis+cluster://h:p[,h:p]``                   Redis Cluster
==============================================  ==============================================
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from lkpersist.exceptions import InvalidStoreURLError
from lkpersist.stores.url import redact_url, scheme_of

if TYPE_CHECKING:
    from lkpersist.stores.base import SessionStore

ENV_STORE = "LKPERSIST_STORE"
_REDIS_SCHEMES = ("redis", "rediss", "redis+sentinel", "redis+cluster")


def default_store_url() -> str:
    """A SQLite file in the user's state directory, so the agent and the CLI share it with no setup."""
    from platformdirs import user_state_dir

    path = Path(user_state_dir("lkpersist")) / "sessions.db"
    return "sqlite:///" + quote(str(path))  # the SQLite URL is percent-decoded: keep % ? # literal


def resolve_store_url(explicit: str | None = None) -> str:
    """``--store`` wins, then ``LKPERSIST_STORE``, then the default SQLite file."""
    return explicit or configured_store_url() or default_store_url()


def configured_store_url(explicit: str | None = None) -> str | None:
    """The URL given by ``--store`` or ``LKPERSIST_STORE``; None when the default applies."""
    return explicit or os.environ.get(ENV_STORE) or None


def open_store(url: str | None = None, *, create: bool = True, **options: Any) -> SessionStore:
    """Return a store for ``url`` (see the module table). ``options``: clock, ttl_policy, max_turns, ...

    Connecting is lazy: an unreachable server surfaces as StoreUnavailableError on first use. Without a
    ``codec`` option the encryption configuration decides (:func:`lkpersist.crypto.config.codec_from_env`):
    Fernet when keys are configured, else plaintext that refuses to show encrypted values as text.

    ``create=False`` is for reading: a SQLite file that does not exist is not created (nor its
    directories); the first use raises StoreNotFoundError instead. Redis and memory ignore it. A SQLite
    file this user may read but not write is opened read-only whatever ``create`` says, and a write to it
    raises StoreReadOnlyError.
    """
    url = resolve_store_url(url)
    if "codec" not in options:
        from lkpersist.crypto.config import codec_from_env

        options["codec"] = codec_from_env()
    scheme = scheme_of(url)
    if scheme == "memory":
        from lkpersist.stores.memory import MemoryStore

        return MemoryStore(**options)
    if scheme == "sqlite":
        from lkpersist.stores.sqlite import SQLiteStore

        return SQLiteStore.from_url(url, create=create, **options)
    if scheme in _REDIS_SCHEMES:
        from lkpersist.stores.redis import RedisStore

        return RedisStore.from_url(url, **options)
    raise InvalidStoreURLError(
        f"unsupported store URL scheme {scheme!r} in {redact_url(url)!r}: "
        "use sqlite:///path, memory://, redis://, rediss://, redis+sentinel:// or redis+cluster://"
    )


def __getattr__(name: str) -> Any:
    if name == "SessionStore":
        from lkpersist.stores.base import SessionStore

        return SessionStore
    raise AttributeError(f"module 'lkpersist.stores' has no attribute {name!r}")


__all__ = [
    "ENV_STORE",
    "SessionStore",
    "configured_store_url",
    "default_store_url",
    "open_store",
    "redact_url",
    "resolve_store_url",
]
