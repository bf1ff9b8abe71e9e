"""The ``-o/--output`` choices, one enum per family of commands."""

from __future__ import annotations

from enum import Enum


class ListFormat(str, Enum):
    """Output of ``sessions ls``."""

    table = "table"
    json = "json"
    ndjson = "ndjson"


class ShowFormat(str, Enum):
    """Output of ``sessions show``."""

    table = "table"
    json = "json"


class SummaryFormat(str, Enum):
    """Output of one-line commands (``purge``, ``count``)."""

    text = "text"
    json = "json"


class WatchFormat(str, Enum):
    """Output of ``sessions watch``."""

    table = "table"
    ndjson = "ndjson"


class ReportFormat(str, Enum):
    """Output of the simulations' reports."""

    table = "table"
    json = "json"
