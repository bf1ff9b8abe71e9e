"""Store URLs as people and logs see them: the scheme they name, and the URL with its password masked."""

from __future__ import annotations

from urllib.parse import urlsplit

from lkpersist.exceptions import InvalidStoreURLError


def scheme_of(url: str) -> str:
    """The lower-cased scheme of a store URL; InvalidStoreURLError when there is none."""
    if "://" not in url:
        raise InvalidStoreURLError(f"invalid store URL {redact_url(url)!r}: expected scheme://..., e.g. sqlite:///sessions.db")
    return url.split("://", 1)[0].lower()


def redact_url(url: str) -> str:
    """The URL with any password replaced, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


__all__ = ["redact_url", "scheme_of"]
