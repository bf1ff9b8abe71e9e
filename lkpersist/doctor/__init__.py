"""``lkpersist doctor``: is this machine ready to run lkpersist? Each check says ✓, or ✗ with the fix.

- :mod:`~lkpersist.doctor.store`: the store URL resolves and the store answers (round trip), its layout
  version, the encryption configuration (keys, key ids in use, plaintext left), the clock offset to a
  Redis server, whether purges run (sessions expired for over an hour still stored).
- :mod:`~lkpersist.doctor.environment`: LiveKit credentials, ``LIVEKIT_URL`` answering, the agent and
  metrics extras installed (found without importing livekit).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report: ``fix`` says what to do when ``ok`` is false."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def passed(name: str, detail: str) -> Check:
    return Check(name, True, detail)


def failed(name: str, detail: str, fix: str) -> Check:
    return Check(name, False, detail, fix)


__all__ = ["Check", "failed", "passed"]
