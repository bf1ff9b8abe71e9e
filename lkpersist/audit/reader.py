"""Reading an audit file back (``lkpersist audit``): records filtered by time and identity, line by line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lkpersist.audit.sinks import AuditWriteError
from lkpersist.crypto.identity import IdentityHasher


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line of the file that is not a record (reported with its number, then skipped)."""

    line: int
    reason: str


def read_records(
    path: str, *, since: float | None = None, identity: str | None = None, hasher: IdentityHasher | None = None
) -> Iterator[dict[str, Any] | BadLine]:
    """Records at or after ``since`` that name ``identity`` (matched in each record's own identity form)."""
    wanted = None if identity is None else {"plain": identity}
    if identity is not None and hasher is not None and wanted is not None:
        wanted["hmac-sha256"] = hasher.digest(identity)
    try:
        handle = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 -- closed below, generator
    except OSError as exc:
        raise AuditWriteError(f"audit log: cannot read {path!r}: {exc.strerror or exc}") from exc
    with handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            record = _parsed(text, number)
            if isinstance(record, BadLine) or _wanted(record, since, wanted):
                yield record


def _parsed(text: str, number: int) -> dict[str, Any] | BadLine:
    try:
        record = json.loads(text)
    except ValueError:
        return BadLine(number, "not a JSON record (truncated or edited?)")
    if not isinstance(record, dict) or not isinstance(record.get("time"), int | float):
        return BadLine(number, "not an audit record")
    return record


def _wanted(record: dict[str, Any], since: float | None, wanted: dict[str, str] | None) -> bool:
    if since is not None and record["time"] < since:
        return False
    if wanted is None:
        return True
    form = wanted.get(str(record.get("identity_form", "plain")))
    return form is not None and form in (record.get("identities") or [])


__all__ = ["BadLine", "read_records"]
