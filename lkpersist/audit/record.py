"""One audit record: who accessed which sessions' personal data, when, with what result.

A record holds the time, the component (``cli``, ``agent`` or ``serve``) and its action (``sessions
show``, ``restore``, ``history``…), the OS user, host and process id, the identities (plain, or their keyed hashes) or the
selection of a bulk command, and the result: an outcome and counts. Never conversation text, metadata
or context values or keys, languages: nothing a record carries is the personal data it audits.

On a line (JSON), ``result`` comes last inside a fixed-width slot of spaces, so that the outcome can be
written into the same record in place once the command ends (see :mod:`lkpersist.audit.sinks`).
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

RESULT_WIDTH = 160
"""Bytes reserved for the ``result`` object of a record (its outcome and counts), padded with spaces."""
PENDING = "pending"
"""The outcome of a record whose command has not finished (or died before it could say)."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: the OS user, the host and the process."""

    user: str
    host: str
    pid: int

    @classmethod
    def current(cls) -> Actor:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid())
        return cls(user, socket.gethostname(), os.getpid())


@dataclass(slots=True)
class AuditRecord:
    """What one command or component did to whose sessions (see the module docstring)."""

    component: str
    action: str
    actor: Actor
    identities: Sequence[str] = ()
    identity_form: str = "plain"
    selection: dict[str, Any] | None = None
    time: float = field(default_factory=time.time)
    outcome: str = PENDING
    counts: dict[str, int] = field(default_factory=dict)

    def head(self) -> dict[str, Any]:
        """Every field but the result."""
        head: dict[str, Any] = {
            "time": round(self.time, 3), "at": _iso(self.time), "component": self.component, "action": self.action,
            "user": self.actor.user, "host": self.actor.host, "pid": self.actor.pid,
            "identities": list(self.identities), "identity_form": self.identity_form,
        }
        if self.selection:
            head["selection"] = self.selection
        return head

    def result(self) -> dict[str, Any]:
        return {"outcome": self.outcome, **self.counts}

    def line(self) -> bytes:
        """The record as one JSON line with its result in the padded slot."""
        head = json.dumps(self.head(), ensure_ascii=False, separators=(",", ":"))
        return head[:-1].encode("utf-8") + b',"result":' + result_slot(self.result()) + b"}\n"


def result_slot(result: dict[str, Any]) -> bytes:
    """``result`` as JSON padded to RESULT_WIDTH bytes (counts dropped if they would not fit)."""
    text = json.dumps(result, separators=(",", ":")).encode("utf-8")
    if len(text) > RESULT_WIDTH:
        text = json.dumps({"outcome": result["outcome"]}).encode("utf-8")
    return text.ljust(RESULT_WIDTH)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


__all__ = ["PENDING", "RESULT_WIDTH", "Actor", "AuditRecord", "result_slot"]
