"""How a CLI command leaves its one audit record: written before the command acts, its outcome after.

``with audited(ctx, "sessions rm", identities=...) as result:`` writes the record (or exits 3 with
nothing done when it cannot), runs the block, then writes the outcome: the one the block set on
``result``, else one read from the exit code (0 ok, 3 error, anything else failed). Without
``LKPERSIST_AUDIT_LOG`` it does nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer

from lkpersist.cli._runner import cli_state, fail

if TYPE_CHECKING:
    from lkpersist.audit import AuditLog
    from lkpersist.crypto.identity import IdentityHasher


@dataclass
class AuditResult:
    """What the command says about itself: an outcome (None: from the exit code) and counts."""

    outcome: str | None = None
    counts: dict[str, int] = field(default_factory=dict)


def audit_log_of(ctx: typer.Context) -> AuditLog | None:
    from lkpersist.audit import audit_log_from_env
    from lkpersist.exceptions import InvalidInputError

    try:
        return audit_log_from_env(key_file=cli_state(ctx).key_file)
    except InvalidInputError as exc:
        fail(str(exc), exc.exit_code)


def audit_hasher_of(ctx: typer.Context) -> IdentityHasher | None:
    from lkpersist.audit import audit_hasher
    from lkpersist.exceptions import InvalidInputError

    try:
        return audit_hasher(key_file=cli_state(ctx).key_file)
    except InvalidInputError as exc:
        fail(str(exc), exc.exit_code)


@contextmanager
def audited(
    ctx: typer.Context, action: str, *, identities: Sequence[str] = (), selection: dict[str, Any] | None = None
) -> Iterator[AuditResult]:
    from lkpersist.audit import ENV_AUDIT_LOG, AuditWriteError  # light: no cryptography unless hashing

    result = AuditResult()
    if not os.environ.get(ENV_AUDIT_LOG, "").strip():
        yield result
        return

    audit = audit_log_of(ctx)
    assert audit is not None
    try:
        entry = audit.begin(action, identities=identities, selection=selection)
    except AuditWriteError as exc:
        fail(f"{exc}; nothing was done", 3)
    code: int = 0
    try:
        yield result
    except typer.Exit as exc:
        code = exc.exit_code
        raise
    except BaseException:
        code = 3
        raise
    finally:
        entry.outcome, entry.counts = result.outcome, result.counts
        try:
            entry.finish("ok" if code == 0 else "error" if code == 3 else "failed")
        except AuditWriteError as exc:
            typer.echo(f"error: {exc} (the command itself completed)", err=True)
            if code == 0:
                raise typer.Exit(3) from None


__all__ = ["AuditResult", "audit_hasher_of", "audit_log_of", "audited"]
