"""The ``lkpersist stats`` table: a row per day, each value with a bar scaled to its column's largest day."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from lkpersist.cli._output.console import print_table, stdout_console
from lkpersist.model.analytics import COUNTERS, DailyStats

BAR_WIDTH = 12
_COLUMNS = ("active_identities", *COUNTERS)
_TITLES = {"active_identities": "active", "connections": "connections", "returns": "returns",
           "new_sessions": "new sessions", "turns": "turns"}
_STYLES = {"active_identities": "cyan", "connections": "blue", "returns": "green", "new_sessions": "yellow",
           "turns": "magenta"}


def bar(value: int, largest: int, width: int = BAR_WIDTH) -> str:
    """A bar of ``width`` cells at most, in eighths of a cell; any value above zero shows at least a sliver."""
    if value <= 0 or largest <= 0:
        return ""
    eighths = max(1, round(value / largest * width * 8))
    return "█" * (eighths // 8) + ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")[eighths % 8]


def write_table(stats: DailyStats) -> None:
    table = Table(box=None, pad_edge=False, show_footer=True)
    table.add_column("date", footer="total")
    rows = [day.to_dict() for day in stats.days]
    totals = stats.totals
    for name in _COLUMNS:
        table.add_column(_TITLES[name], justify="left", footer=str(totals[name]))
    largest = {name: max((row[name] for row in rows), default=0) for name in _COLUMNS}
    for row in rows:
        cells = [_cell(row[name], largest[name], _STYLES[name]) for name in _COLUMNS]
        table.add_row(row["date"], *cells)
    print_table(stdout_console(), table)


def _cell(value: int, largest: int, style: str) -> Text:
    width = len(str(largest))
    return Text.assemble((f"{value:>{width}} ", ""), (bar(value, largest), style))


__all__ = ["BAR_WIDTH", "bar", "write_table"]
