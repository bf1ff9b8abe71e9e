"""Long conversations: the oldest turns summarised into ``context["summary"]``, off the speech path.

A session keeps its newest turns verbatim. Once more than :attr:`Summaries.cap` are stored, the oldest
(all but the newest :attr:`Summaries.keep`) are summarised, together with the previous summary, by the
agent's own LLM, and the store replaces exactly those turns with the new summary in one atomic
compare-and-set (:meth:`~lkpersist.stores.base.SessionStore.compact_turns`). On a return the summary goes
back into the chat context before the recent turns (:mod:`lkpersist.agent.history`).

Why it is shaped this way:

- It never delays speech. A check runs in a background task of its own (never in the per-identity
  chain that orders joins, leaves and turns), every :attr:`Summaries.check_every` recorded turns, when
  the participant leaves, and when a participant with a long history returns, after the greeting
  decision; it first waits :attr:`Summaries.settle` (2 s), so its reads never queue in front of a
  refresh's rejoin or an arrival's store calls. The LLM call is bounded by :attr:`Summaries.timeout`; on
  :meth:`SessionPersistence.aclose` a summary in flight is abandoned.
- Nothing is lost when it fails. The turns are only dropped by the store, in the same atomic step that
  stores the summary covering them; a failed or timed-out summary (or an empty one) leaves them all in
  place, and the next check tries again. The store's ``max_turns`` (500 by default) stays above the cap,
  so turns wait there, never dropped, while summaries keep failing; only past that ceiling does the
  store drop the oldest, as it does when nothing summarises at all.
- Two agents summarising one session at once cannot lose each other's work: turns are read before the
  previous summary, and the store refuses a compaction whose turns are no longer exactly the oldest.
- A provider error on a summary call is reported by livekit as one LLM error of the session, which the
  AgentSession forgives when the agent next speaks; at most one summary is attempted per ``check_every``
  turns, so summaries alone never exhaust its budget of unrecoverable errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lkpersist.exceptions import InvalidInputError
from lkpersist.model.session import MAX_SUMMARY_CHARS, Turn

if TYPE_CHECKING:
    from livekit.agents import llm

    from lkpersist.stores.base import SessionStore


@dataclass(frozen=True, slots=True)
class Summaries:
    """When and how conversations are compacted (``SessionPersistence(summaries=...)``; None: never).

    ``cap``: stored turns past which the oldest are summarised. ``keep``: the newest turns that stay
    verbatim after a compaction. ``max_words``: the summary length asked of the LLM (a longer answer is
    cut at twice that). ``timeout``: seconds one summary may take before it counts as failed.
    ``check_every``: recorded turns between two checks. ``settle``: seconds a check waits before it
    reads the store, so that it never queues in front of the calls of an arrival (a refresh is a leave
    and a join within a second; SQLite runs one store call at a time). ``llm``: the model to summarise
    with; None uses the AgentSession's own.
    """

    cap: int = 100
    keep: int = 20
    max_words: int = 200
    timeout: float = 30.0
    check_every: int = 10
    settle: float = 2.0
    llm: llm.LLM[Any] | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.keep < self.cap:
            raise InvalidInputError(
                f"summaries: keep ({self.keep}) must be at least 0 and below cap ({self.cap})"
            )
        if not 10 <= self.max_words <= MAX_SUMMARY_CHARS // 20:
            raise InvalidInputError(f"summaries: max_words must be between 10 and {MAX_SUMMARY_CHARS // 20}")
        if self.timeout <= 0 or self.check_every < 1 or self.settle < 0:
            raise InvalidInputError("summaries: timeout must be positive, check_every at least 1, settle >= 0")

    def check_store(self, store: SessionStore) -> None:
        """Refuse a store whose turn ceiling would drop turns before they could be summarised."""
        if self.cap >= store.max_turns:
            raise InvalidInputError(
                f"summaries: cap ({self.cap}) must be below the store's max_turns ({store.max_turns}), "
                "the ceiling where unsummarised turns would be dropped; raise max_turns or lower the cap"
            )


def to_cover(turns: Sequence[Turn], keep: int) -> list[Turn]:
    """The oldest turns to summarise: all but the newest ``keep``, trimmed so both ends carry item ids
    (what ``compact_turns`` checks them by); empty when there is nothing such to cover."""
    covered = list(turns[: max(len(turns) - keep, 0)])
    while covered and covered[-1].item_id is None:
        covered.pop()
    if not covered or covered[0].item_id is None:
        return []
    return covered


__all__ = ["Summaries", "to_cover"]
