"""What ``simulate reconnect`` adds for a long first visit (``--turns 50`` and more): the summary cap it
runs with, a timeline that shows only the ends of a long conversation, and the two summary checks.

A first visit of N lines records 2N + 1 turns (each line, its reply, and the greeting); past the cap
(100) the scripted model's deterministic summary mode compacts the oldest into ``context["summary"]``,
and the return must restore that summary before the recent turns. Checks are returned as
``(name suffix, ok, detail)`` for :mod:`lkpersist.sim.reconnect` to record under its own labels.
"""

from __future__ import annotations

from collections.abc import Sequence

from livekit.agents import llm

from lkpersist.agent.history import RESTORED_MARK
from lkpersist.agent.summaries import Summaries
from lkpersist.model.session import SUMMARY_KEY, Session

SUMMARIES = Summaries(settle=0)
"""The default policy, except that checks start at once: a simulation checks logic, and no refresh races it."""
SHOWN_EXCHANGES = 2
"""A long conversation shows this many exchanges at each end of the timeline."""

Outcome = tuple[str, bool, str]


def hidden_lines(count: int) -> range:
    """The indexes of a conversation's lines the timeline leaves out (empty for a short one)."""
    return range(SHOWN_EXCHANGES, count - SHOWN_EXCHANGES)


def summary_words(session: Session | None) -> int:
    """How many words the session's summary has (0: none)."""
    summary = None if session is None else session.context.get(SUMMARY_KEY)
    return len(str(summary).split()) if summary else 0


def summarised(session: Session | None, recorded: int) -> Outcome | None:
    """After a first visit of ``recorded`` turns: its oldest turns were compacted (None under the cap)."""
    if recorded <= SUMMARIES.cap:
        return None
    words = summary_words(session)
    detail = f"{recorded} turns recorded, cap {SUMMARIES.cap}: " + (
        f"summary of {words} words in context" if words else "no summary stored"
    )
    return "older turns summarised", words > 0, detail


def summary_line(session: Session | None) -> str:
    """The timeline's line for the stored summary."""
    summary = None if session is None else session.context.get(SUMMARY_KEY)
    return f"context['summary']: {summary}" if summary else "no summary in context"


def summary_restored(received: Sequence[llm.ChatMessage]) -> Outcome:
    """On a return after a summary: the first restored message carries it, before the restored turns."""
    marked = [m for m in received if m.extra.get(RESTORED_MARK)]
    ok = bool(marked) and bool(marked[0].extra.get("is_summary")) and len(marked) > 1
    detail = f"the first restored message carries the summary, then {max(len(marked) - 1, 0)} earlier turns"
    return "summary restored before the recent turns", ok, detail


__all__ = [
    "SHOWN_EXCHANGES", "SUMMARIES", "hidden_lines", "summarised", "summary_line", "summary_restored", "summary_words"
]
