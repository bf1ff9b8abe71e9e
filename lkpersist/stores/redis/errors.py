"""The one place redis-py exceptions become lkpersist errors (``raise ... from exc``).

Messages name the store by its redacted URL (never the password) and fit on one line, because the CLI
prints them as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    NoPermissionError,
    RedisClusterException,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from lkpersist.exceptions import CorruptRecordError, LkPersistError, StoreError, StoreUnavailableError
from lkpersist.logsafe import without_object_reprs
from lkpersist.stores.redis.lua import CORRUPT_MARKER, UNREADABLE_MARKER
from lkpersist.stores.redis.readable import unreadable_error
from lkpersist.stores.redis.sentinel import SentinelsUnreachableError

REDIS_ERRORS = (RedisError, RedisClusterException)
"""What redis-py raises; every one of them becomes an lkpersist error (``translate``)."""
_AUTH_REQUIRED = ("NOAUTH", "HELLO must be called with the client already authenticated", "Authentication required")
_WRONG_CREDENTIALS = ("WRONGPASS", "invalid username-password pair", "invalid password", "invalid username")
_CREDENTIAL_REPLIES = ("NOPERM", *_WRONG_CREDENTIALS)
_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, AuthenticationError, NoPermissionError, BusyLoadingError)
HOW_TO_AUTHENTICATE = (
    "put the password in the URL: redis://:PASSWORD@host:port/db (redis://USER:PASSWORD@host:port/db for an ACL user)"
)


def translate(exc: BaseException, where: str, identity: str | None = None) -> LkPersistError:
    """The lkpersist error for a redis-py failure while working on ``identity`` (if any)."""
    text = without_object_reprs(" ".join(str(exc).split())) or type(exc).__name__
    if isinstance(exc, SentinelsUnreachableError):
        return StoreUnavailableError(f"Redis Sentinel {where} is unreachable: {text}")
    if any(reply in text for reply in _AUTH_REQUIRED):
        return StoreUnavailableError(f"Redis store {where} requires authentication: {HOW_TO_AUTHENTICATE}")
    if any(reply in text for reply in _WRONG_CREDENTIALS):
        return StoreUnavailableError(
            f"Redis store {where} refused the credentials (wrong user name or password, or the user is disabled)"
        )
    if isinstance(exc, ResponseError) and UNREADABLE_MARKER in text:
        return unreadable_error(text, identity)
    if isinstance(exc, ResponseError) and ("WRONGTYPE" in text or CORRUPT_MARKER in text):
        reason = "a key holds the wrong type" if "WRONGTYPE" in text else "malformed session record"
        return CorruptRecordError(identity or "<unknown>", reason)
    if isinstance(exc, _UNAVAILABLE) or any(reply in text for reply in _CREDENTIAL_REPLIES):
        return StoreUnavailableError(f"Redis store {where} is unavailable: {text}")
    if isinstance(exc, RedisClusterException):
        return StoreUnavailableError(f"Redis cluster {where} is unavailable: {text}")
    return StoreError(f"Redis store {where} refused the operation: {text}")


@contextmanager
def translated(where: str, identity: str | None = None) -> Iterator[None]:
    """Run a block of Redis calls, re-raising redis-py errors as lkpersist errors."""
    try:
        yield
    except REDIS_ERRORS as exc:
        raise translate(exc, where, identity) from exc
