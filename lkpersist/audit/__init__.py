"""The audit log: every access to a session's personal data, recorded (opt-in).

Switched on by ``LKPERSIST_AUDIT_LOG``: a file path (JSON lines, appended with ``O_APPEND`` so several
processes share one file) or ``syslog``. ``LKPERSIST_AUDIT_FSYNC=0`` stops the fsync after each record
(on by default); ``LKPERSIST_AUDIT_IDENTITY=hash`` records keyed hashes of identities instead of the
identities (the key: ``LKPERSIST_IDENTITY_KEY``, else derived from the first encryption key).

- The CLI's commands that read or change personal data (``sessions show|ls|export|import|rm|purge``,
  ``encrypt migrate|rotate``) each leave exactly one record: :meth:`AuditLog.begin` writes it before the
  command acts, and the outcome is written into it when the command ends (see :mod:`.sinks`). A record
  that cannot be written stops the command before it acts (exit 3).
- The agent records each restore of earlier conversation on a participant's return with
  :func:`record_restore`, and ``lkpersist serve`` each ``GET /api/history`` with :func:`record_history`:
  written by a background thread (neither the greeting path nor a request waits for a disk), and a
  failure is a logged warning, never an interruption.

Records never hold conversation text, metadata or context (values or keys) or a language.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lkpersist.audit.record import PENDING, RESULT_WIDTH, Actor, AuditRecord, result_slot
from lkpersist.audit.sinks import AuditWriteError, FileSink, Pending, Sink, SyslogSink
from lkpersist.crypto import ENV_IDENTITY_KEY
from lkpersist.exceptions import InvalidInputError
from lkpersist.logsafe import get_logger

if TYPE_CHECKING:
    from lkpersist.crypto.identity import IdentityHasher

ENV_AUDIT_LOG = "LKPERSIST_AUDIT_LOG"
ENV_AUDIT_FSYNC = "LKPERSIST_AUDIT_FSYNC"
ENV_AUDIT_IDENTITY = "LKPERSIST_AUDIT_IDENTITY"
ENV_SYSLOG_ADDRESS = "LKPERSIST_AUDIT_SYSLOG_ADDRESS"
SYSLOG = "syslog"

log = get_logger("lkpersist.audit")


@dataclass
class AuditEntry:
    """A command's record while it runs: set ``outcome`` and ``counts``, then :meth:`finish`."""

    record: AuditRecord
    pending: Pending | None
    outcome: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def finish(self, default_outcome: str) -> None:
        """Write the result into the record (AuditWriteError when that fails)."""
        self.record.outcome = self.outcome or default_outcome
        self.record.counts = self.counts
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.finish(result_slot(self.record.result()))


@dataclass
class AuditLog:
    """Where records go and how identities appear in them."""

    sink: Sink
    hasher: IdentityHasher | None = None
    actor: Actor = field(default_factory=Actor.current)

    @property
    def identity_form(self) -> str:
        return "plain" if self.hasher is None else "hmac-sha256"

    def identity_as_recorded(self, identity: str) -> str:
        return identity if self.hasher is None else self.hasher.digest(identity)

    def new_record(
        self, component: str, action: str, identities: Sequence[str] = (), selection: dict[str, Any] | None = None
    ) -> AuditRecord:
        shown = [self.identity_as_recorded(identity) for identity in identities]
        return AuditRecord(component, action, self.actor, shown, self.identity_form, selection)

    def begin(
        self, action: str, *, identities: Sequence[str] = (), selection: dict[str, Any] | None = None,
        component: str = "cli",
    ) -> AuditEntry:
        """Write the record (outcome ``pending``) before the command acts; AuditWriteError if it cannot."""
        record = self.new_record(component, action, identities, selection)
        line = record.line()
        return AuditEntry(record, self.sink.begin(line, len(line) - 2 - RESULT_WIDTH))

    def write(self, record: AuditRecord) -> None:
        self.sink.write(record.line())


def audit_log_from_env(environ: Mapping[str, str] | None = None, *, key_file: str | None = None) -> AuditLog | None:
    """The audit log the environment asks for, or None when ``LKPERSIST_AUDIT_LOG`` is not set."""
    env = os.environ if environ is None else environ
    where = env.get(ENV_AUDIT_LOG, "").strip()
    if not where:
        return None
    fsync = env.get(ENV_AUDIT_FSYNC, "1").strip().lower() not in ("0", "false", "no", "off")
    sink: Sink = SyslogSink(env.get(ENV_SYSLOG_ADDRESS) or SyslogSink.address) if where == SYSLOG else FileSink(where, fsync)
    return AuditLog(sink, audit_hasher(env, key_file=key_file))


def audit_hasher(environ: Mapping[str, str] | None = None, *, key_file: str | None = None) -> IdentityHasher | None:
    """The keyed hash identities are recorded as (``LKPERSIST_AUDIT_IDENTITY=hash``), or None for plain."""
    env = os.environ if environ is None else environ
    form = env.get(ENV_AUDIT_IDENTITY, "plain").strip().lower()
    if form in ("", "plain"):
        return None
    if form != "hash":
        raise InvalidInputError(f"{ENV_AUDIT_IDENTITY} must be plain or hash, not {form!r}")
    from lkpersist.crypto.identity import IdentityHasher  # cryptography: only when identities are hashed
    from lkpersist.crypto.keys import keys_from_env

    separate = env.get(ENV_IDENTITY_KEY, "").strip()
    if separate:
        return IdentityHasher(separate)
    keys = keys_from_env(env, key_file)
    if not keys:
        raise InvalidInputError(f"{ENV_AUDIT_IDENTITY}=hash needs {ENV_IDENTITY_KEY} or an encryption key")
    return IdentityHasher.from_encryption_key(keys[0])


# --- the agent's hook ---------------------------------------------------------------------------------

_agent_lock = threading.Lock()
_agent_log: AuditLog | None = None
_agent_configured = False
_writer: ThreadPoolExecutor | None = None


def record_restore(identity: str, turns: int) -> None:
    """Record that the agent put ``turns`` earlier turns of ``identity`` back into its context.

    Returns at once: the record is written by a background thread, and a failure is logged as a warning.
    A no-op when the audit log is off.
    """
    _record_in_background("agent", "restore", identity, {"turns": turns})


def record_history(identity: str, turns: int) -> None:
    """Record that ``lkpersist serve`` gave ``turns`` earlier turns of ``identity`` to the bearer of its
    resume credential (``GET /api/history``); written like :func:`record_restore`."""
    _record_in_background("serve", "history", identity, {"turns": turns})


def _record_in_background(component: str, action: str, identity: str, counts: dict[str, int]) -> None:
    audit = _agent_audit_log()
    if audit is None or _writer is None:
        return
    record = audit.new_record(component, action, [identity])
    record.outcome, record.counts = "ok", counts
    _writer.submit(_write_logged, audit, record)


def _agent_audit_log() -> AuditLog | None:
    global _agent_log, _agent_configured, _writer
    if _agent_configured:
        return _agent_log
    with _agent_lock:
        if not _agent_configured:
            try:
                _agent_log = audit_log_from_env()
            except InvalidInputError as exc:
                log.warning("audit log disabled: %s", exc)
            if _agent_log is not None:
                _writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lkpersist-audit")
            _agent_configured = True
    return _agent_log


def _write_logged(audit: AuditLog, record: AuditRecord) -> None:
    try:
        audit.write(record)
    except AuditWriteError as exc:
        log.warning("%s (carrying on without this record)", exc)


def reset_agent_audit_log() -> None:
    """Read the environment again on the next record (tests, or a process that changed it); waits for writes."""
    global _agent_log, _agent_configured, _writer
    with _agent_lock:
        if _writer is not None:
            _writer.shutdown(wait=True)
        _agent_log, _agent_configured, _writer = None, False, None


__all__ = [
    "ENV_AUDIT_FSYNC",
    "ENV_AUDIT_IDENTITY",
    "ENV_AUDIT_LOG",
    "PENDING",
    "SYSLOG",
    "AuditEntry",
    "AuditLog",
    "AuditWriteError",
    "audit_hasher",
    "audit_log_from_env",
    "record_history",
    "record_restore",
    "reset_agent_audit_log",
]
