"""The ``-o/--output`` choices, one enum per family of commands."""

from __future__ import annotations

from enum import Enum


class ListFormat(str, Enum):
    """Output of ``sessions ls``."""

    table = "table"
    json = "json"
    ndjson = "ndjson"


class ShowFormat(str, Enum):
    """Output of ``sessions show`` and ``audit``."""

    table = "table"
    json = "json"


class ExportFormat(str, Enum):
    """What ``sessions export`` writes: the versioned NDJSON, or one identity's ChatContext document."""

    ndjson = "ndjson"
    chat_ctx = "chat-ctx"


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
