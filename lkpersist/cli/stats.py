"""``lkpersist stats``: daily analytics of the store, one row per UTC day, oldest first, today last.

Read from what connect and append_turn counted (never by loading sessions). ``-o json`` prints
``{"days": [{"date", "active_identities", "connections", "returns", "new_sessions", "turns"}, …], "totals": {…}}``;
the totals' ``active_identities`` counts each identity once over the whole window.
"""

from __future__ import annotations

from typing import Annotated

import typer

from lkpersist.cli._output.formats import ShowFormat
from lkpersist.cli._runner import run_with_store

app = typer.Typer()


@app.command("stats")
def stats(
    ctx: typer.Context,
    days: Annotated[int, typer.Option("--days", "-d", min=1, max=366, help="How many UTC days, today included.")] = 14,
    output: Annotated[ShowFormat, typer.Option("--output", "-o", help="table or json.")] = ShowFormat.table,
) -> None:
    """Show daily analytics: active identities, connections, returns, new sessions and turns per day.

    One row per UTC day (the store's clock), oldest first, with a bar per value and the totals; -o json for scripts.
    """
    from lkpersist.stores.base import SessionStore

    async def work(store: SessionStore) -> None:
        from lkpersist.cli._output.console import echo_json
        from lkpersist.cli._output.stats import write_table

        result = await store.daily_stats(days)
        if output is ShowFormat.json:
            echo_json(result.to_dict())
        else:
            write_table(result)

    run_with_store(ctx, work, create=False)


__all__ = ["app", "stats"]
