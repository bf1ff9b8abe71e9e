"""``lkpersist simulate reconnect``: watch the agent recognise a returning participant, with no server.
``lkpersist simulate load``: many participants against the configured store (see :mod:`lkpersist.sim.load`;
exit 1 when the consistency check fails).

The command parses, runs :func:`lkpersist.sim.reconnect.simulate_reconnect` on the configured store with a
virtual clock, and renders the report. livekit is imported only when the command runs.
Exit 0 when the verdict holds (a return recognised, or an expired session correctly treated as new),
1 when it does not, 2 on bad options, 3 when the store cannot be used, 4 without the ``agent`` extra
(``reconnect`` only: ``load`` needs no livekit).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from lkpersist.cli._options import duration_seconds
from lkpersist.cli._output.formats import ReportFormat
from lkpersist.cli._runner import fail, run_with_store, store_url_of

if TYPE_CHECKING:
    from lkpersist.sim.load import LoadReport
    from lkpersist.sim.reconnect import SimulationReport
    from lkpersist.stores.base import SessionStore

app = typer.Typer(help="Simulate participants against the real agent-side controller.", no_args_is_help=True)

OutputOption = Annotated[ReportFormat, typer.Option("--output", "-o", help="table (rich) or json.")]


@app.command("reconnect")
def reconnect(
    ctx: typer.Context,
    identity: Annotated[str, typer.Option("--identity", help="Participant identity to simulate.")],
    gap: Annotated[str, typer.Option("--gap", help="Time away between visits (300, 90s, 5m, 2h).")] = "3s",
    times: Annotated[int, typer.Option("--times", min=1, max=50, help="How many times to come back.")] = 1,
    turns: Annotated[
        int, typer.Option("--turns", min=1, max=200, help="User turns in the first visit (50+: summarised).")
    ] = 2,
    agents: Annotated[
        int, typer.Option("--agents", min=1, max=5, help="Agent jobs serving the participant at once.")
    ] = 1,
    device_switch: Annotated[
        bool, typer.Option("--device-switch", help="Also move to another device in every visit.")
    ] = False,
    output: OutputOption = ReportFormat.table,
) -> None:
    """Connect, talk, disconnect, wait GAP on a virtual clock, reconnect; print a timeline and a verdict.

    With --agents N, N real controllers share the store: one greeting per visit, with the store's visit
    number. With --device-switch, a DUPLICATE_IDENTITY leave and a join from another device must
    continue the visit (no new visit number, no "welcome back"). Needs the agent extra
    (livekit-agents): without it, one line naming it and exit 4.
    """
    from lkpersist.cli._output.simulation import render_reconnect
    from lkpersist.clock import VirtualClock
    from lkpersist.exceptions import MissingDependencyError
    from lkpersist.optional import import_agent_side

    gap_seconds = duration_seconds(gap)
    try:
        simulation = import_agent_side("lkpersist.sim.reconnect", "lkpersist simulate reconnect")
    except MissingDependencyError as exc:
        fail(str(exc), exc.exit_code)
    # Start the virtual clock as far in the past as the simulation will jump, so it ends at the real
    # "now" and the sessions it leaves behind do not look last seen in the future.
    clock = VirtualClock(time.time() - gap_seconds * times)

    async def work(store: SessionStore) -> SimulationReport:
        report: SimulationReport = await simulation.simulate_reconnect(
            store, clock, identity=identity, gap=gap_seconds, times=times, turns=turns, agents=agents,
            device_switch=device_switch,
        )
        return report

    report = run_with_store(ctx, work, clock=clock)
    _finish(ctx, output, report.to_dict(), lambda store: render_reconnect(report, store), report.ok)


def _finish(
    ctx: typer.Context, output: ReportFormat, document: dict[str, Any], render: Callable[[str], None], ok: bool
) -> NoReturn:
    """Print a simulation's report (JSON with the store, or the rich view) and exit 0 when ``ok``, else 1."""
    from lkpersist.stores import resolve_store_url
    from lkpersist.stores.url import redact_url

    store = redact_url(resolve_store_url(store_url_of(ctx)))
    if output is ReportFormat.json:
        typer.echo(json.dumps({"store": store, **document}, ensure_ascii=False, indent=2))
    else:
        render(store)
    raise typer.Exit(0 if ok else 1)


@app.command("load")
def load(
    ctx: typer.Context,
    identities: Annotated[int, typer.Option("--identities", min=1, help="Simulated participants.")] = 1000,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Participants active at once.")] = 64,
    duration: Annotated[
        str | None, typer.Option("--duration", help="Run this long (90s, 5m); or give --operations.")
    ] = None,
    operations: Annotated[
        int | None, typer.Option("--operations", min=1, help="Run this many store operations; or --duration.")
    ] = None,
    turns: Annotated[int, typer.Option("--turns", min=0, max=50, help="Turns added per visit.")] = 2,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the run's sessions instead of deleting them.")] = False,
    output: OutputOption = ReportFormat.table,
) -> None:
    """Participants connect, talk, leave and return; print throughput, latency, errors and a consistency check."""
    from lkpersist.cli._output.simulation import load_progress, render_load
    from lkpersist.cli._runner import stderr_console
    from lkpersist.exceptions import InvalidInputError
    from lkpersist.sim.load import LOAD_TTL_POLICY, LoadPlan, run_load

    if (duration is None) == (operations is None):
        fail("give exactly one of --duration or --operations", 2)
    seconds = duration_seconds(duration)
    try:
        plan = LoadPlan(identities, concurrency, seconds, operations, turns_per_visit=turns, keep=keep)
    except InvalidInputError as exc:
        fail(str(exc), 2)

    async def work(store: SessionStore) -> LoadReport:
        with load_progress(plan, enabled=output is ReportFormat.table and stderr_console().is_terminal) as progress:
            return await run_load(store, plan, progress)

    report = run_with_store(ctx, work, ttl_policy=LOAD_TTL_POLICY)
    _finish(ctx, output, report.to_dict(), lambda store: render_load(report, store), report.consistent)


__all__ = ["app"]
