"""How the simulations look: ``simulate reconnect``'s timeline and checks, ``simulate load``'s progress
bar and summary. The numbers all come from the reports (:mod:`lkpersist.sim.reconnect`,
:mod:`lkpersist.sim.load`); ``cli/simulate.py`` stays a parser.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from lkpersist.cli._output.progress import stderr_progress
from lkpersist.durations import format_duration

if TYPE_CHECKING:
    from lkpersist.sim.load import LoadPlan, LoadProgress, LoadReport
    from lkpersist.sim.reconnect import SimulationReport

ACTOR_STYLES = {
    "agent": "green",
    "user": "cyan",
    "store": "magenta",
    "room": "blue",
    "clock": "yellow",
    "llm": "dim",
}


def render_reconnect(report: SimulationReport, store: str) -> None:
    console = Console(highlight=False, soft_wrap=True)
    console.print(
        f"[bold]simulate reconnect[/] {escape(repr(report.identity))}: gap {format_duration(report.gap)}, "
        f"{report.times} return(s), {report.agents} agent(s)"
        f"{', device switch in every visit' if report.device_switch else ''}, store {escape(store)}"
    )
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("t", justify="right", no_wrap=True)
    table.add_column("who", no_wrap=True)
    table.add_column("what")
    for event in report.timeline:
        style = ACTOR_STYLES.get(event.actor.split(" ")[0], "")  # "agent 2": an agent's style
        who = f"[{style}]{escape(event.actor)}[/]" if style else escape(event.actor)
        table.add_row(f"+{format_duration(event.at)}", who, escape(event.text))
    console.print(table)
    for check in report.checks:
        mark = "[green]✓[/]" if check.ok else "[red]✗[/]"
        console.print(f" {mark} {escape(check.name)}: {escape(check.detail)}")
    verdict = "[bold green]PASS[/]" if report.ok else "[bold red]FAIL[/]"
    console.print(f"verdict: {verdict} — {escape('; '.join(report.outcomes))}")


@contextmanager
def load_progress(plan: LoadPlan, *, enabled: bool) -> Iterator[Callable[[LoadProgress], None] | None]:
    """A rich progress bar on stderr (by operations, or by seconds with ``--duration``); None when disabled."""
    if not enabled:
        yield None
        return
    columns = (
        TextColumn("[bold]simulate load"), BarColumn(), TextColumn("{task.fields[ops]} ops"),
        TextColumn("{task.fields[rate]} ops/s"), TextColumn("[red]{task.fields[errors]}"), TimeElapsedColumn(),
    )
    with stderr_progress(*columns) as bar:
        total = plan.duration if plan.duration is not None else plan.operations
        task = bar.add_task("load", total=total, ops=0, rate="-", errors="")

        def update(snapshot: LoadProgress) -> None:
            done = snapshot.elapsed if plan.duration is not None else snapshot.operations
            rate = f"{snapshot.operations / snapshot.elapsed:,.0f}" if snapshot.elapsed > 0 else "-"
            errors = f"{snapshot.errors} errors" if snapshot.errors else ""
            bar.update(task, completed=done, ops=f"{snapshot.operations:,}", rate=rate, errors=errors)

        yield update


def render_load(report: LoadReport, store: str) -> None:
    """The human summary: throughput, latency per operation, errors, stall, consistency verdict."""
    console = Console(highlight=False, soft_wrap=True)
    plan = report.plan
    console.print(
        f"[bold]simulate load[/] run {plan.run_id}: {plan.identities} identities, concurrency {plan.concurrency}, "
        f"store {escape(store)}"
    )
    console.print(f"{report.operations:,} operations in {report.elapsed:.2f} s: [bold]{report.throughput:,.0f} ops/s[/]")
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("operation", "count", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column == "operation" else "right")
    for operation, row in report.latency().items():
        table.add_row(operation, f"{row['count']:,.0f}", *(f"{row[k]:.2f}" for k in ("p50", "p95", "p99", "max")))
    console.print(table)
    _render_errors(console, report)
    if report.consistent:
        console.print(f"consistency: [bold green]OK[/] — {report.checked:,} identities match what the run did")
    else:
        console.print(f"consistency: [bold red]FAILED[/] — {len(report.mismatches)} of {report.checked:,} differ")
        for m in report.mismatches[:10]:
            console.print(
                f"  {escape(m.identity)}: reconnects {m.reconnects} (expected {m.expected_reconnects[0]}.."
                f"{m.expected_reconnects[1]}), turns {m.turns} (expected {m.expected_turns[0]}..{m.expected_turns[1]})"
            )


def _render_errors(console: Console, report: LoadReport) -> None:
    stats = report.stats
    if not stats.error_count:
        console.print(f"errors: 0; longest time without a successful operation {stats.longest_stall * 1000:.0f} ms")
        return
    kinds = ", ".join(f"{kind} {count}" for kind, count in stats.errors.most_common())
    operations = ", ".join(f"{op} {count}" for op, count in stats.errors_by_operation.most_common())
    console.print(f"errors: [red]{stats.error_count}[/] ({escape(kinds)}; by operation: {operations})")
    console.print(
        f"  between +{stats.error_times[0]:.2f} s and +{stats.error_times[-1]:.2f} s; "
        f"longest time without a successful operation {stats.longest_stall:.2f} s"
    )
