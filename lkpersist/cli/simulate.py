"""``lkpersist simulate reconnect``: watch the agent recognise a returning participant, with no server.

The command parses, runs :func:`lkpersist.simulate.simulate_reconnect` on the configured store with a
virtual clock, and renders the report. livekit is imported only when the command runs.
Exit 0 when the verdict holds (a return recognised, or an expired session correctly treated as new),
1 when it does not, 2 on bad options, 3 when the store cannot be used.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lkpersist.cli._runner import fail, run_with_store, store_url_of
from lkpersist.clock import VirtualClock
from lkpersist.durations import format_duration, parse_duration
from lkpersist.exceptions import InvalidInputError
from lkpersist.stores import redact_url, resolve_store_url

if TYPE_CHECKING:
    from lkpersist.simulate import SimulationReport
    from lkpersist.stores.base import SessionStore

app = typer.Typer(help="Simulate participants against the real agent-side controller.", no_args_is_help=True)

ACTOR_STYLES = {
    "agent": "green",
    "user": "cyan",
    "store": "magenta",
    "room": "blue",
    "clock": "yellow",
    "llm": "dim",
}


class Output(str, Enum):
    table = "table"
    json = "json"


@app.command("reconnect")
def reconnect(
    ctx: typer.Context,
    identity: Annotated[str, typer.Option("--identity", help="Participant identity to simulate.")],
    gap: Annotated[str, typer.Option("--gap", help="Time away between visits (300, 90s, 5m, 2h).")] = "3s",
    times: Annotated[int, typer.Option("--times", min=1, max=50, help="How many times to come back.")] = 1,
    turns: Annotated[int, typer.Option("--turns", min=1, max=50, help="User turns in the first visit.")] = 2,
    output: Annotated[Output, typer.Option("--output", "-o", help="table (rich) or json.")] = Output.table,
) -> None:
    """Connect, talk, disconnect, wait GAP on a virtual clock, reconnect; print a timeline and a verdict."""
    try:
        gap_seconds = parse_duration(gap)
    except InvalidInputError as exc:
        fail(str(exc), 2)
    clock = VirtualClock()

    async def work(store: SessionStore) -> SimulationReport:
        from lkpersist.simulate import simulate_reconnect

        return await simulate_reconnect(
            store, clock, identity=identity, gap=gap_seconds, times=times, turns=turns
        )

    report = run_with_store(ctx, work, clock=clock)
    store = redact_url(resolve_store_url(store_url_of(ctx)))
    if output is Output.json:
        typer.echo(json.dumps({"store": store, **report.to_dict()}, ensure_ascii=False, indent=2))
    else:
        _render(report, store)
    raise typer.Exit(0 if report.ok else 1)


def _render(report: SimulationReport, store: str) -> None:
    console = Console(highlight=False, soft_wrap=True)
    console.print(
        f"[bold]simulate reconnect[/] {escape(repr(report.identity))}: gap {format_duration(report.gap)}, "
        f"{report.times} return(s), store {escape(store)}"
    )
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("t", justify="right", no_wrap=True)
    table.add_column("who", no_wrap=True)
    table.add_column("what")
    for event in report.timeline:
        style = ACTOR_STYLES.get(event.actor, "")
        table.add_row(f"+{format_duration(event.at)}", f"[{style}]{event.actor}[/]", escape(event.text))
    console.print(table)
    for check in report.checks:
        mark = "[green]✓[/]" if check.ok else "[red]✗[/]"
        console.print(f" {mark} {escape(check.name)}: {escape(check.detail)}")
    verdict = "[bold green]PASS[/]" if report.ok else "[bold red]FAIL[/]"
    console.print(f"verdict: {verdict} — {escape('; '.join(report.outcomes))}")


__all__ = ["app"]
