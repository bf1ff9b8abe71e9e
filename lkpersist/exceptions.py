"""The one error family of lkpersist.

Every error the library raises on purpose derives from :class:`LkPersistError`, so an agent or a script
can catch one type. Backend exceptions (redis, sqlite3) are translated at the store boundary with
``raise ... from exc``; nothing outside ``lkpersist.stores`` sees a ``redis.ConnectionError``.

::

    LkPersistError
    ├── InvalidInputError          bad identity, duration, option value (CLI exit 2)
    │   └── InvalidStoreURLError   a store URL we cannot parse or do not support (CLI exit 3)
    ├── StoreError                 the store cannot be used (CLI exit 3)
    │   ├── StoreUnavailableError  unreachable, refused, timed out, wrong credentials
    │   ├── StoreNotFoundError     a SQLite file opened with ``create=False`` does not exist
    │   ├── StoreReadOnlyError     a write to a store this user may only read
    │   ├── CorruptRecordError     a stored record cannot be decoded; names the record
    │   └── DecryptionError        a record cannot be decrypted with the configured keys
    ├── SessionNotFoundError       the asked-for session does not exist or has expired (CLI exit 1)
    ├── LockHeldError              a named lock is held by someone else (``store.lock``; CLI exit 1)
    └── MissingDependencyError     an optional extra is not installed (also an ImportError; CLI exit 4)

The CLI maps these to its documented exit codes through :attr:`LkPersistError.exit_code`.
"""

from __future__ import annotations


class LkPersistError(Exception):
    """Root of every error lkpersist raises on purpose."""

    exit_code: int = 3


class InvalidInputError(LkPersistError, ValueError):
    """A value given by the caller (identity, duration, option) is not acceptable."""

    exit_code = 2


class InvalidStoreURLError(InvalidInputError):
    """A store URL that cannot be parsed or names an unsupported backend.

    It exits 3, not 2: an unusable store is a store problem for scripts, whatever its cause.
    """

    exit_code = 3


class StoreError(LkPersistError):
    """The store cannot be used as asked."""

    exit_code = 3


class StoreUnavailableError(StoreError):
    """The store is unreachable, refused the credentials, or timed out."""


class StoreNotFoundError(StoreError):
    """A store opened for reading only (``open_store(url, create=False)``) does not exist; nothing was created.

    ``path`` is the file that was looked for.
    """

    def __init__(self, message: str, path: str) -> None:
        self.path = path
        super().__init__(message)


class StoreReadOnlyError(StoreError):
    """A write was asked of a store this process may only read (e.g. a SQLite file owned by another user)."""


class CorruptRecordError(StoreError):
    """A stored record cannot be decoded. ``identity`` names it (or the raw key when unknown)."""

    def __init__(self, identity: str, reason: str) -> None:
        self.identity = identity
        self.reason = reason
        super().__init__(f"corrupt session record {identity!r}: {reason}")


class DecryptionError(StoreError):
    """A record cannot be decrypted with the configured keys (wrong key, missing key, tampered data).

    The codec raises it without an identity (it sees one value); each backend re-raises it at its
    decode step with :meth:`naming`, so the message names the session. Never a key or a plaintext.
    """

    def __init__(self, reason: str, identity: str | None = None) -> None:
        self.reason = reason
        self.identity = identity
        super().__init__(reason if identity is None else f"cannot decrypt session {identity!r}: {reason}")

    def naming(self, identity: str) -> DecryptionError:
        """This error naming ``identity`` (itself when it already names one)."""
        return self if self.identity is not None else DecryptionError(self.reason, identity)


class SessionNotFoundError(LkPersistError, KeyError):
    """The asked-for session does not exist, or has expired."""

    exit_code = 1

    def __init__(self, identity: str) -> None:
        self.identity = identity
        super().__init__(identity)

    def __str__(self) -> str:
        return f"session not found: {self.identity!r}"


class LockHeldError(LkPersistError):
    """A named store lock (``store.lock(name, ...)``) is held by someone else and was not freed in time."""

    exit_code = 1

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"lock {name!r} is held by another process")


class MissingDependencyError(LkPersistError, ImportError):
    """An optional part of lkpersist was used without its extra installed (livekit for the agent side).

    It is an ImportError too, so ``except ImportError`` around an optional import still works. The
    message is one line naming what to install, e.g. ``pip install 'lkpersist[agent]'``.
    """

    exit_code = 4
