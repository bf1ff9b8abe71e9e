"""Progress bars on stderr for the long commands (``encrypt``, ``simulate load``, ``sessions purge``).

Only on a terminal, and transient: cron's and a pipe's output never carries a bar, and stdout stays the
command's result alone.
"""

from __future__ import annotations

from rich.progress import Progress, ProgressColumn

from lkpersist.cli._runner import err_console


def stderr_progress(*columns: str | ProgressColumn, enabled: bool = True) -> Progress:
    """A transient progress display on stderr, switched off when stderr is not a terminal (or not ``enabled``)."""
    return Progress(*columns, console=err_console, transient=True, disable=not (enabled and err_console.is_terminal))


__all__ = ["stderr_progress"]
