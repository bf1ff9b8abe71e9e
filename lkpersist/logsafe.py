"""Logs and error messages without keys, secrets, tokens or conversation text.

Two rules for every lkpersist module:

1. Get loggers with :func:`get_logger` (not ``logging.getLogger``): its records pass through
   :class:`RedactingFilter` before any handler sees them, whatever handlers the application installs.
   The filter masks Fernet keys and tokens, JWTs (LiveKit access tokens), passwords in URLs,
   ``secret=...``-style pairs and any value registered with :func:`register_secret`.
2. Conversation text (turns, context, metadata values) is logged only at DEBUG and only with
   ``extra=PERSONAL``; at INFO and above such a record's message is replaced by a notice, so turning
   up a log level can never leak what a person said.

Error lines shown to people also go through :func:`without_object_reprs`: a library's exception text
can embed ``repr()`` of its clients and connections (redis-py's ``MasterNotFoundError`` does, 1,500
characters of it), which says nothing to a reader.

Applications that also want third-party records (livekit, redis) filtered call :func:`install` once
after configuring logging. Patterns are a safety net, not a licence: code should not put secrets into
messages in the first place.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Final

PERSONAL_ATTR: Final = "lkpersist_personal"
PERSONAL: Final = {PERSONAL_ATTR: True}
"""``extra=PERSONAL`` marks a record that carries conversation text (allowed at DEBUG only)."""

MASK: Final = "***"
WITHHELD: Final = "<conversation text withheld: logged at DEBUG only>"
_MIN_SECRET_CHARS: Final = 6

_PATTERNS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    # user:password@ in URLs (redis://, rediss://, https://)
    (re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+(?P<tail>@)"), rf"\g<head>{MASK}\g<tail>"),
    # JWTs: header.payload.signature, both JSON parts base64url of "{"
    (re.compile(r"eyJ[A-Za-z0-9_-]*\.eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"), MASK),
    # Fernet tokens (version byte 0x80, then a 64-bit timestamp whose top bytes are 0)
    (re.compile(r"gAAAAA[A-Za-z0-9_=-]{20,}"), MASK),
    # Fernet keys: 32 bytes in url-safe base64
    (re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}=(?![A-Za-z0-9_=-])"), MASK),
    # name=value / name: value pairs whose name says secret
    (
        re.compile(
            r"(?i)(?P<head>\b[\w.-]*(?:secret|password|passwd|token|api[_-]?key|encryption[_-]?keys?|"
            r"identity[_-]?key|authorization)\b[\"']?\s*[=:]\s*[\"']?)(?:Bearer\s+)?[^\s\"',;&]+"
        ),
        rf"\g<head>{MASK}",
    ),
)

_OBJECT_REPR_START: Final = re.compile(r"<[A-Za-z_][\w.]*(?:\(| object at 0x)")
_ELIDED: Final = "<…>"

_registered: set[str] = set()
_registered_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask this exact value wherever it appears (API secrets that no pattern recognises)."""
    if value and len(value) >= _MIN_SECRET_CHARS:
        with _registered_lock:
            _registered.add(value)


def register_secrets(values: Iterable[str]) -> None:
    """:func:`register_secret` for several values."""
    for value in values:
        register_secret(value)


def without_object_reprs(text: str) -> str:
    """``text`` with every embedded object repr (``<redis.asyncio.client.Redis(...)>``, ``<Foo object at
    0x7f...>``, nested ones included) replaced by ``<…>``; placeholders such as ``<user>`` are kept."""
    parts: list[str] = []
    position = 0
    while (found := _OBJECT_REPR_START.search(text, position)) is not None:
        parts.append(text[position:found.start()] + _ELIDED)
        position = _after_brackets(text, found.start())
    parts.append(text[position:])
    return "".join(parts)


def _after_brackets(text: str, start: int) -> int:
    """The index just past the ``>`` that closes the ``<`` at ``start`` (the end when it never closes)."""
    depth = 0
    for index in range(start, len(text)):
        depth += {"<": 1, ">": -1}.get(text[index], 0)
        if depth == 0:
            return index + 1
    return len(text)


def redact(text: str) -> str:
    """``text`` with keys, tokens, secrets and URL passwords replaced by ``***``."""
    with _registered_lock:
        secrets = sorted(_registered, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and traceback) through :func:`redact`; withholds personal text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, PERSONAL_ATTR, False) and record.levelno >= logging.INFO:
            record.msg, record.args = WITHHELD, None
        else:
            record.msg, record.args = redact(_message_of(record)), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _message_of(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except (TypeError, ValueError):
        # A bad format string: keep the template, drop the arguments (they may hold anything).
        return str(record.msg)


_FILTER: Final = RedactingFilter()


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with the redacting filter attached (once)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(_FILTER)
    return logger


def install(logger: logging.Logger | None = None) -> None:
    """Attach the filter to every handler of ``logger`` (default: root), covering third-party records."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(_FILTER)


__all__ = [
    "MASK",
    "PERSONAL",
    "PERSONAL_ATTR",
    "WITHHELD",
    "RedactingFilter",
    "get_logger",
    "install",
    "redact",
    "register_secret",
    "register_secrets",
    "without_object_reprs",
]
