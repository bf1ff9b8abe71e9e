"""``AgentSession.userdata`` that survives a refresh, a return and a worker restart.

``SessionPersistence(store, userdata=MyData)`` declares the type the developer keeps in
``session.userdata``: a dataclass or a pydantic model. The declaration is checked when the controller is
built — every field must have a type that can be stored and rebuilt exactly, or InvalidInputError names
the field — and the value present at ``attach`` is round-tripped once, so a type that cannot come back is
a clear error at start-up, never a silent loss at restore time (:mod:`lkpersist.agent._userdata_types`).

It is saved when the participant leaves, when the session closes, and whenever the developer calls
``await persistence.save_userdata()``; it is restored into ``session.userdata`` when the participant
returns, before the greeting. It lives in the session's context under :data:`USERDATA_KEY`, so it goes
through the store codec like every context value (encrypted at rest with keys configured) and expires
with the session; ``lkpersist sessions show`` shows it there.

A stored value that no longer fits the declared type (a field renamed or removed, a type changed) is
logged with the identity and skipped: the agent starts with the userdata it was given. Stored data is
never logged.
"""

from __future__ import annotations

from typing import Any

from lkpersist.agent._userdata_types import check_declared, decode_value, encode_value
from lkpersist.exceptions import InvalidInputError
from lkpersist.logsafe import get_logger

log = get_logger("lkpersist.agent")

USERDATA_KEY = "lkpersist.userdata"
"""The reserved context key: ``{"type": "<module>.<qualname>", "data": {...}}``."""


class UserdataCodec:
    """The declared userdata type and its checked JSON form."""

    def __init__(self, declared: type[Any]) -> None:
        if not isinstance(declared, type):
            raise InvalidInputError(f"userdata must be a dataclass or pydantic model class, not {declared!r}")
        self.declared = declared
        self.name = f"{declared.__module__}.{declared.__qualname__}"
        check_declared(declared)

    def encode(self, value: Any) -> dict[str, Any]:
        """The stored form; InvalidInputError naming the field when ``value`` does not fit the type."""
        if not isinstance(value, self.declared):
            raise InvalidInputError(f"userdata is a {type(value).__name__}, not the declared {self.name}")
        return {"type": self.name, "data": encode_value(value, self.declared, self.declared.__name__)}

    def decode(self, stored: Any) -> Any:
        """The value back; ValueError or TypeError when the stored form does not fit the type any more."""
        if not isinstance(stored, dict) or not isinstance(stored.get("data"), dict):
            raise TypeError("not a stored userdata object")
        return decode_value(stored["data"], self.declared, self.declared.__name__)

    def check_round_trip(self, value: Any) -> None:
        """Store and rebuild ``value`` once; InvalidInputError when it does not come back the same."""
        first = self.encode(value)
        try:
            again = self.encode(self.decode(first))
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"userdata {self.name} does not come back from its stored form: {exc}"
            ) from exc
        if again != first:
            field = next((k for k in first["data"] if first["data"][k] != again["data"].get(k)), "?")
            raise InvalidInputError(
                f"userdata field {self.declared.__name__}.{field} does not come back the same"
            )


class UserdataKeeper:
    """Saves and restores one AgentSession's userdata (a no-op when nothing was declared)."""

    def __init__(self, declared: type[Any] | None) -> None:
        self.codec = None if declared is None else UserdataCodec(declared)
        self._holder: str | None = None
        """The identity whose userdata the session holds now (restored or saved in this process)."""

    def check(self, session: Any) -> None:
        """At attach: the value the session holds now must round-trip (nothing to check when unset)."""
        value = _current(session)
        if self.codec is not None and value is not None:
            self.codec.check_round_trip(value)

    def restore(self, session: Any, identity: str, context: dict[str, Any]) -> bool:
        """Put the stored userdata of ``identity`` into ``session``; False (logged) when it does not fit."""
        stored = context.get(USERDATA_KEY)
        if self.codec is None or stored is None or identity == self._holder:
            return False  # (a refresh in this job: the session's own value is as new as the stored one)
        try:
            session.userdata = self.codec.decode(stored)
        except Exception as exc:  # noqa: BLE001 -- a __post_init__ may raise anything; never a crash
            log.warning(
                "stored userdata of %r does not fit %s any more (%s): starting with fresh userdata",
                identity,
                self.codec.name,
                _reason(exc),
            )
            return False
        self._holder = identity
        return True

    def changes(self, session: Any, identity: str) -> dict[str, Any] | None:
        """The context change that saves the session's userdata now; None when there is nothing to save."""
        value = _current(session)
        if self.codec is None or value is None:
            return None
        try:
            encoded = {USERDATA_KEY: self.codec.encode(value)}
        except InvalidInputError as exc:
            log.error("userdata of %r not saved: %s", identity, exc)
            return None
        self._holder = identity
        return encoded


def _current(session: Any) -> Any:
    try:
        return session.userdata
    except ValueError:  # livekit raises it while no userdata is set
        return None


def _reason(exc: BaseException) -> str:
    """Why a stored value did not fit, naming fields but never quoting stored values (pydantic would)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            return "; ".join(
                f"{'.'.join(map(str, error['loc'])) or '(root)'}: {error['type']}" for error in errors()
            )
        except (TypeError, KeyError):
            pass
    return str(exc) or type(exc).__name__


__all__ = ["USERDATA_KEY", "UserdataCodec", "UserdataKeeper"]
