"""Named locks for ``memory://``: a dict in this process (see :mod:`lkpersist.stores.locks` for the semantics)."""

from __future__ import annotations

from lkpersist.stores.locks import new_token


class MemoryLocks:
    """name -> (token, expires_at); the caller passes its clock's now, so a virtual clock works."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[str, float]] = {}

    def acquire(self, name: str, ttl: float, now: float) -> str | None:
        current = self._held.get(name)
        if current is not None and now < current[1]:
            return None
        token = new_token()
        self._held[name] = (token, now + ttl)
        return token

    def release(self, name: str, token: str, now: float) -> bool:
        current = self._held.get(name)
        if current is None or current[0] != token:
            return False
        del self._held[name]
        return now < current[1]

    def extend(self, name: str, token: str, ttl: float, now: float) -> bool:
        current = self._held.get(name)
        if current is None or current[0] != token or now >= current[1]:
            return False
        self._held[name] = (token, now + ttl)
        return True
