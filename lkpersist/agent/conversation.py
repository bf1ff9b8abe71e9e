"""The conversation side of one controller: who greets, long conversations, and the session's userdata.

:class:`~lkpersist.agent.controller.SessionPersistence` decides *when* (a participant arrived, a turn was
recorded, the participant left); this object decides *what*, through a few one-line hooks there:

- the greeting: :mod:`lkpersist.agent.greeter` (``greeting="template"|"llm"|None``);
- summaries of long conversations: :mod:`lkpersist.agent.summaries` and its background
  :mod:`lkpersist.agent.summariser`;
- ``session.userdata``: :mod:`lkpersist.agent.userdata`.

Everything here stays off the greeting's store budget except what the arrival already read: the
userdata and the summary come from the session the arrival returned.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from livekit.agents import AgentSession

from lkpersist.agent._store_calls import FAILED, BoundedCalls
from lkpersist.agent.greeter import Greeter, GreetingDecision, GreetingMode
from lkpersist.agent.greetings import GreetingTemplates
from lkpersist.agent.summaries import Summaries
from lkpersist.agent.summariser import Summariser
from lkpersist.agent.userdata import UserdataKeeper
from lkpersist.model.session import SUMMARY_KEY, Session
from lkpersist.stores.base import SessionStore


class Conversation:
    """One controller's greeting mode, summariser and userdata keeper (see the module docstring)."""

    def __init__(
        self,
        store: SessionStore,
        calls: BoundedCalls,
        *,
        greeting: GreetingMode,
        greetings: GreetingTemplates,
        ready_timeout: float,
        on_decision: Callable[[GreetingDecision], None] | None,
        summaries: Summaries | None,
        userdata: type[Any] | None,
        switch_line: str | None = None,
    ) -> None:
        self.greeter = Greeter(greeting, greetings, ready_timeout, on_decision)
        self.switch_line = switch_line
        self.summariser = Summariser(summaries, store, calls)
        self.userdata = UserdataKeeper(userdata)
        self._store, self._calls = store, calls
        self._session: AgentSession[Any] | None = None

    def attach(self, session: AgentSession[Any]) -> None:
        """At ``attach``: a userdata that cannot round-trip fails here; summaries use the session's LLM."""
        self.userdata.check(session)
        self.summariser.bind(session.llm)
        self._session = session

    def arrived(self, identity: str, session: Session, returning: bool) -> None:
        """The arrival's session is known: put back the stored userdata of a returning participant."""
        if returning and self._session is not None:
            self.userdata.restore(self._session, identity, session.context)

    def decision(
        self,
        identity: str,
        session: Session | None,
        *,
        arrived: float,
        name: str,
        greet: bool,
        returning: bool,
        visit: int,
        language: str | None,
        restored: int,
        store_ok: bool,
        switched: bool = False,
    ) -> GreetingDecision:
        """What the controller decided, with the template to say or the instructions to give (if it greets)."""
        summary = returning and session is not None and bool(session.context.get(SUMMARY_KEY))
        facts: dict[str, Any] = {"returning": returning, "language": language, "visit": visit, "name": name}
        text, instructions = self.greeter.compose(restored=restored, summary=summary, **facts)
        return GreetingDecision(
            identity=identity,
            returning=returning,
            visit=visit,
            greet=greet,
            text=text if greet else None,
            language=language,
            restored_turns=restored,
            store_ok=store_ok,
            elapsed=time.perf_counter() - arrived,
            instructions=instructions if greet else None,
            switched=switched,
        )

    def decided(self, decision: GreetingDecision, window: int) -> None:
        """The decision is made (and reported): a long history may now be summarised, off its path."""
        self.greeter.report(decision)
        self.summariser.arrived(decision.identity, decision.restored_turns, window)

    def greeting(
        self, ready: asyncio.Event, arrived: float, decision: GreetingDecision, name: str
    ) -> Coroutine[Any, Any, None] | None:
        """The speech to run for this decision, or None when this controller says nothing.

        A device switch is no greeting: the conversation goes on, after ``switch_line`` when one is set."""
        if decision.switched and self.switch_line and self._session is not None:
            return self.greeter.say_when_ready(self._session, ready, arrived, decision.identity, self.switch_line)
        if not decision.greet or self._session is None or not (decision.text or decision.instructions):
            return None
        return self.greeter.speak(self._session, ready, arrived, decision, name)

    def recorded(self, identity: str, stored: object) -> None:
        """A turn was appended (``stored``: the store's answer; True when it was new)."""
        if stored is True:
            self.summariser.recorded(identity)

    async def leaving(self, identity: str, speaker: str | None) -> None:
        """Before the store hears the participant left: save the userdata of the one being served."""
        if identity == speaker:
            await self.save_userdata(identity)

    def left(self, identity: str) -> None:
        """After: the conversation paused, so summarise what it added if that is due."""
        self.summariser.left(identity)

    async def save_userdata(self, identity: str) -> bool:
        """Save the session's userdata as ``identity``'s; False when nothing was declared, set or saved."""
        changes = self.userdata.changes(self._session, identity)
        if changes is None:
            return False
        saved = await self._calls(self._store.update(identity, context=changes), "update (userdata)")
        return saved is not FAILED

    async def wait_idle(self) -> None:
        await self.summariser.wait_idle()

    async def aclose(self) -> None:
        await self.summariser.aclose()


__all__ = ["Conversation"]
