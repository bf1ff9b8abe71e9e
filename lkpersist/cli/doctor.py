"""``lkpersist doctor``: check the store, encryption, clocks, purges, LiveKit and the extras.

One line per check, ✓ or ✗ with the fix; exit 0 when every check passes, 1 otherwise (a store that does
not answer is a ✗ line, not exit 3: reporting it is the doctor's job). ``-o json`` for scripts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lkpersist.cli._output.formats import SummaryFormat
from lkpersist.cli._runner import cli_state, fail

if TYPE_CHECKING:
    from lkpersist.doctor import Check

NAME_WIDTH = 20

app = typer.Typer()


@app.command("doctor")
def doctor(
    ctx: typer.Context,
    output: Annotated[SummaryFormat, typer.Option("--output", "-o", help="text (one line per check) or json.")] = (
        SummaryFormat.text
    ),
) -> None:
    """Check that lkpersist can work here; each line ✓, or ✗ with the fix. Exit 0 when all pass, else 1.

    Checks the store (answers, layout, encryption, clock offset to Redis, overdue purges), LiveKit credentials and server, and the extras. Reads every stored value once to report encryption (as `encrypt status` does); creates nothing.
    """
    import asyncio

    from lkpersist.exceptions import LkPersistError
    from lkpersist.stores import resolve_store_url

    state = cli_state(ctx)
    url = resolve_store_url(state.store_url)
    try:
        checks = asyncio.run(_checks(url, state.key_file))
    except LkPersistError as exc:
        fail(str(exc), exc.exit_code)
    if output is SummaryFormat.json:
        from lkpersist.cli._output.console import echo_json

        echo_json({"ok": all(c.ok for c in checks), "checks": [c.to_dict() for c in checks]})
    else:
        for check in checks:
            typer.echo(_line(check))
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


async def _checks(url: str, key_file: str | None) -> list[Check]:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn

    from lkpersist.cli._output.progress import stderr_progress
    from lkpersist.doctor.environment import credentials, extras, livekit_reachable
    from lkpersist.doctor.store import store_checks

    bars = stderr_progress(TextColumn("checking stored values"), BarColumn(), MofNCompleteColumn())
    task = bars.add_task("values", total=None)
    with bars:
        found = await store_checks(url, key_file=key_file, progress=lambda done: bars.advance(task, done))
    reachable = await livekit_reachable()
    return [*found, credentials(), *([reachable] if reachable else []), *extras()]


def _line(check: Check) -> str:
    mark = "✓" if check.ok else "✗"
    fix = f" — fix: {check.fix}" if check.fix else ""
    return f"{mark} {check.name:<{NAME_WIDTH}} {check.detail}{fix}"


__all__ = ["app", "doctor"]
