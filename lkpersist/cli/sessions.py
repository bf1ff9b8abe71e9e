"""``lkpersist sessions``: list, show, remove, count and purge stored sessions.

Each command parses its options, calls the store through :func:`run_with_store` and renders with
:mod:`lkpersist.cli._output`. The module imports only what the option types need; the store, rich and
asyncio are imported inside the commands, so ``--help`` and completion start fast (livekit: never).

Read-only commands (``ls``, ``show``, ``count``, ``purge --dry-run``) open the store with
``create=False``: on a SQLite file that does not exist they say so and exit 3, creating nothing.
``watch`` creates it: it is started to wait for what agents will write.

Exit codes (the CLI contract): 0 ok; 1 the thing asked for did not hold (``show``/``rm`` of a session
that does not exist); 2 usage error (bad option, bad duration, bad identity); 3 the store is unreachable
or unusable, including corrupt records met by ``ls`` (reported one line each on stderr *after* the
readable sessions were listed) — so a cron job notices, while a person still sees everything else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lkpersist.cli import transfer
from lkpersist.cli._audit import audited
from lkpersist.cli._options import ALL, checked_identity, duration_seconds, turn_count
from lkpersist.cli._output.formats import ListFormat, ShowFormat, SummaryFormat, WatchFormat
from lkpersist.cli._runner import fail, run_with_store

if TYPE_CHECKING:
    from lkpersist.cli._output.listing import ListingResult
    from lkpersist.model.analytics import SessionCounters
    from lkpersist.model.results import PurgeResult
    from lkpersist.model.session import Session, Status, Turn
    from lkpersist.stores.base import SessionStore

PURGE_SKIPPED = "another purge is running (lock held)"

app = typer.Typer(
    help="Inspect and clean up stored sessions. Exit codes: 0 ok, 1 not found, 2 usage, 3 store problem "
    "(unreachable, or a read-only command on a store that does not exist).",
    no_args_is_help=True,
)

ActiveFlag = Annotated[bool, typer.Option("--active", help="Live sessions: connected, or not yet expired (default).")]
ExpiredFlag = Annotated[bool, typer.Option("--expired", help="Expired sessions not yet purged.")]
AllFlag = Annotated[bool, typer.Option("--all", help="Live and expired sessions.")]


def _status(active: bool, expired: bool, every: bool) -> Status:
    """One of the three filters; active when none is given."""
    flags: tuple[tuple[Status, bool], ...] = (("active", active), ("expired", expired), ("all", every))
    chosen = [status for status, given in flags if given]
    if len(chosen) > 1:
        fail("give at most one of --active, --expired, --all", 2)
    return chosen[0] if chosen else "active"


@app.command("ls")
def list_sessions(
    ctx: typer.Context,
    active: ActiveFlag = False,
    expired: ExpiredFlag = False,
    every: AllFlag = False,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, help="Stop after N sessions (default: all).")
    ] = None,
    output: Annotated[
        ListFormat, typer.Option("--output", "-o", help="table (people), json (one array) or ndjson (streamed).")
    ] = ListFormat.table,
) -> None:
    """List sessions, last seen newest first, streamed page by page from the store.

    Corrupt records are named on stderr, one line each; the rest are still listed, then exit 3.

    Tables escape control characters, quote identities with blank space at either end, and cut long ones with an ellipsis; JSON is exact. TURNS is how many turns each session holds.
    """
    from lkpersist.cli._output.console import silence_broken_pipe
    from lkpersist.cli._output.listing import write_listing
    from lkpersist.stores.base import DEFAULT_PAGE_SIZE

    status = _status(active, expired, every)
    page_size = min(limit, DEFAULT_PAGE_SIZE) if limit else DEFAULT_PAGE_SIZE

    async def work(store: SessionStore) -> ListingResult:
        items = store.iter_sessions(status, page_size=page_size)
        return await write_listing(items, output, now=store.now(), limit=limit, empty_message=f"no {status} sessions")

    with audited(ctx, "sessions ls", selection={"status": status, "limit": limit, "output": output.value}) as audit:
        try:
            result = run_with_store(ctx, work, create=False)
        except BrokenPipeError:
            silence_broken_pipe()
            raise typer.Exit(0) from None
        audit.counts = {"sessions": result.listed, "corrupt": len(result.corrupt)}
        if result.corrupt:
            raise typer.Exit(3)


@app.command("show")
def show(
    ctx: typer.Context,
    identity: Annotated[str, typer.Argument(metavar="IDENTITY", help="The participant identity, exactly.")],
    turns: Annotated[
        str | None,
        typer.Option("--turns", "-t", metavar="N|all", help="Also show the newest N conversation turns, or all of them."),
    ] = None,
    output: Annotated[ShowFormat, typer.Option("--output", "-o", help="table or json.")] = ShowFormat.table,
) -> None:
    """Show one live session and how many turns it holds; exit 1 when it does not exist or has expired.

    -o json: the session's fields (times as epoch seconds, turn_count), "events" (the session's counters:
    connections, returns, turns recorded since it began; null when the store kept none), plus "turns" when
    --turns is given.
    """
    from lkpersist.cli._output.console import echo_json
    from lkpersist.cli._output.session import counters_of, print_session, session_document
    from lkpersist.cli._output.text import quoted

    checked_identity(identity)
    wanted = turn_count(turns)

    async def work(store: SessionStore) -> tuple[Session | None, SessionCounters | None, list[Turn] | None, float]:
        session = await store.get(identity)
        if session is None:
            return None, None, None, store.now()
        counters = await store.session_counters(identity)
        if wanted is None:
            return session, counters, None, store.now()
        limit = None if wanted == ALL else wanted
        return session, counters, await store.recent_turns(identity, limit), store.now()

    with audited(ctx, "sessions show", identities=[identity]) as audit:
        session, counters, recent, now = run_with_store(ctx, work, create=False)
        if session is None:
            audit.outcome = "not_found"
            fail(f"session not found: {quoted(identity)}", 1)
        audit.counts = {"turns": len(recent or [])}
        events = counters_of(session, counters)
        if output is ShowFormat.json:
            echo_json(session_document(session, recent, events))
        else:
            print_session(session, recent, now, events)


@app.command("rm")
def remove(
    ctx: typer.Context,
    identities: Annotated[list[str], typer.Argument(metavar="IDENTITY", help="Identities to remove, exactly (no patterns).")],
) -> None:
    """Remove sessions (live or expired) and their turns; exit 1 if any did not exist.

    Identities match exactly, never as patterns: rm '*' removes only the session named *.

    Prints one line per identity; the others are still removed when one is missing.
    """
    from lkpersist.cli._output.text import quoted

    for identity in identities:
        checked_identity(identity)

    async def work(store: SessionStore) -> list[bool]:
        return [await store.delete(identity) for identity in identities]

    with audited(ctx, "sessions rm", identities=identities) as audit:
        removed = run_with_store(ctx, work)
        audit.counts = {"removed": sum(removed), "not_found": len(removed) - sum(removed)}
        for identity, existed in zip(identities, removed, strict=True):
            if existed:
                typer.echo(f"removed {quoted(identity)}")
            else:
                typer.echo(f"error: session not found: {quoted(identity)}", err=True)
        if not all(removed):
            audit.outcome = "not_found" if not any(removed) else "partial"
            raise typer.Exit(1)


@app.command("count")
def count(
    ctx: typer.Context,
    active: ActiveFlag = False,
    expired: ExpiredFlag = False,
    every: AllFlag = False,
    output: Annotated[SummaryFormat, typer.Option("--output", "-o", help="text (the number) or json.")] = (
        SummaryFormat.text
    ),
) -> None:
    """Print how many sessions match (active by default), without listing them."""
    from lkpersist.cli._output.console import echo_json

    status = _status(active, expired, every)

    async def work(store: SessionStore) -> int:
        return await store.count(status)

    number = run_with_store(ctx, work, create=False)
    if output is SummaryFormat.json:
        echo_json({"status": status, "count": number})
    else:
        typer.echo(str(number))


@app.command("purge")
def purge(
    ctx: typer.Context,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            metavar="DURATION",
            help="Also purge sessions last seen longer ago than this (300, 90s, 5m, 2h, 1d), connected or not.",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be purged; delete nothing.")] = False,
    output: Annotated[SummaryFormat, typer.Option("--output", "-o", help="text (one line) or json.")] = (
        SummaryFormat.text
    ),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success (errors still go to stderr).")] = False,
) -> None:
    """Delete expired sessions, in chunks; safe under cron.

    Never prompts; prints one summary line (or nothing with --quiet); exits 0 even when nothing was due.

    One purge at a time per store: a purge holds the store lock "purge" while it runs (--dry-run takes none).

    If another purge holds it, this one prints "another purge is running (lock held); skipping" and exits 0.

    On a terminal a transient progress bar shows on stderr while it deletes (never in cron's output).
    """
    from lkpersist.cli._output.console import echo_json
    from lkpersist.cli._output.summaries import purge_document, purge_progress, purge_summary
    from lkpersist.cli._runner import stderr_console
    from lkpersist.exceptions import LockHeldError

    seconds = duration_seconds(older_than)
    show_bar = not (quiet or dry_run) and output is SummaryFormat.text and stderr_console().is_terminal

    async def work(store: SessionStore) -> PurgeResult | None:
        expected = await store.count("expired") if show_bar and seconds is None else None
        with purge_progress(expected, enabled=show_bar) as advance:
            try:
                return await store.purge(older_than=seconds, dry_run=dry_run, lock=True, progress=advance)
            except LockHeldError:
                return None

    with audited(ctx, "sessions purge", selection={"older_than": seconds, "dry_run": dry_run}) as audit:
        result = run_with_store(ctx, work, create=not dry_run)
        audit.outcome = "skipped" if result is None else None
        audit.counts = {"purged": 0 if result is None else result.purged}
    if quiet:
        return
    if result is None:
        if output is SummaryFormat.json:
            echo_json({"purged": 0, "dry_run": False, "older_than": seconds, "skipped": PURGE_SKIPPED})
        else:
            typer.echo(f"{PURGE_SKIPPED}; skipping")
        return
    if output is SummaryFormat.json:
        echo_json(purge_document(result, seconds))
    else:
        typer.echo(purge_summary(result, seconds))


@app.command("watch")
def watch(
    ctx: typer.Context,
    identity: Annotated[
        str | None, typer.Option("--identity", "-i", metavar="IDENTITY", help="Only this identity's events (exact).")
    ] = None,
    output: Annotated[
        WatchFormat, typer.Option("--output", "-o", help="table (a line per event) or ndjson (an object per line).")
    ] = WatchFormat.table,
    count: Annotated[int | None, typer.Option("--count", "-n", min=1, help="Stop after N events.")] = None,
    timeout: Annotated[
        str | None, typer.Option("--timeout", metavar="DURATION", help="Stop after this long (90s, 5m, 1h).")
    ] = None,
) -> None:
    """Print session events live, as any process using this store produces them; Ctrl-C stops (exit 0).

    Kinds: created, returned (with the visit count), disconnected, expired, purged, deleted; no conversation text.

    Only events after the start are shown: "watching ..." on stderr marks the start.

    --count N stops after N events, --timeout after that long; exit 1 if --count events did not all arrive.
    """
    from lkpersist.cli._output.console import silence_broken_pipe
    from lkpersist.cli._watch import tail_events

    if identity is not None:
        checked_identity(identity)
    seconds = duration_seconds(timeout)
    try:
        # creates a missing store, unlike the reading commands: watching is waiting for agents yet to write
        seen = run_with_store(ctx, lambda store: tail_events(store, identity, output, count, seconds))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except BrokenPipeError:
        silence_broken_pipe()
        raise typer.Exit(0) from None
    if count is not None and seen < count:
        fail(f"only {seen} of {count} events arrived before the timeout", 1)


app.command("export")(transfer.export)
app.command("import")(transfer.import_)
