"""Progress bars on stderr for the long commands (``encrypt``, ``simulate load``, ``sessions purge``).

Only on a terminal, and transient: cron's and a pipe's output never carries a bar, and stdout stays the
command's result alone.
"""

from __future__ import annotations

from rich.progress import Progress, ProgressColumn

from lkpersist.cli._runner import stderr_console


def stderr_progress(*columns: str | ProgressColumn, enabled: bool = True) -> Progress:
    """A transient progress display on stderr, switched off when stderr is not a terminal (or not ``enabled``)."""
    console = stderr_console()
    return Progress(*columns, console=console, transient=True, disable=not (enabled and console.is_terminal))


__all__ = ["stderr_progress"]
