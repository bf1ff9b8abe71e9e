"""Who speaks the greeting: lkpersist's templates, the agent's own LLM, or the agent's own code.

``SessionPersistence(greeting=...)``:

- ``"template"`` (the default): the templates of :mod:`lkpersist.agent.greetings` through
  ``session.say`` — fixed text, no LLM round trip, so fast and predictable.
- ``"llm"``: ``session.generate_reply(instructions=...)``, telling the model whether this is a first
  visit or a return, the visit number, and what of the earlier conversation was restored into its
  context (turns, a summary), so it greets in its own words and can refer to what was said. livekit
  adds such instructions for this one reply only: they never enter the history, and so are never
  recorded as a turn. When the reply fails or says nothing, the template is said instead: silence is
  worse than a plain greeting.
- ``None``: lkpersist restores the context and decides, the agent speaks. The store's greeting claim
  still decides who greets a visit, exactly one agent across processes, and that agent's
  ``on_decision`` receives ``decision.greet=True``: from then on the greeting is that callback's to
  make (``session.generate_reply(...)``). A claim nobody hears would leave the visit ungreeted, so
  ``None`` requires ``on_decision``; a callback that raises is logged as an error naming the identity.

In both speaking modes the greeting waits, at most ``ready_timeout`` from the room callback, until the
participant can hear it (the controller sets the readiness event).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from livekit.agents import AgentSession, llm

from lkpersist.agent.greetings import GreetingTemplates
from lkpersist.exceptions import InvalidInputError
from lkpersist.logsafe import get_logger

log = get_logger("lkpersist.agent")

GreetingMode = Literal["template", "llm"] | None
GREETING_MODES: tuple[GreetingMode, ...] = ("template", "llm", None)
GREETING_LEAD = "Greet the participant now"
"""How the instructions of an LLM greeting begin (the scripted model recognises a greeting by it)."""


@dataclass(frozen=True, slots=True)
class GreetingDecision:
    """What the agent decided when a participant arrived (``elapsed``: seconds since the room callback).

    ``greet``: this agent holds the visit's greeting claim (with ``greeting=None``: your code must greet).
    ``text``: the template to say (``"template"`` mode); ``instructions``: what the LLM is told to greet
    with (``"llm"`` mode); both None otherwise. ``switched``: the participant moved to another device
    within the visit (no greeting; the controller's ``switch_line``, if any, is said instead).
    """

    identity: str
    returning: bool
    visit: int
    greet: bool
    text: str | None
    language: str | None
    restored_turns: int
    store_ok: bool
    elapsed: float
    instructions: str | None = None
    switched: bool = False


def llm_instructions(
    *, returning: bool, visit: int, name: str, language: str | None, restored: int, summary: bool
) -> str:
    """What the model is told to greet with: first visit or return, and what it can refer to."""
    who = f" Their name is {name}." if name else ""
    if not returning:
        body = f"This is their first visit.{who} Welcome them in your own words and ask how you can help."
    elif restored or summary:
        turns = f"{restored} earlier messages" if restored else ""
        kept = " and ".join(
            part for part in (turns, "a summary of what came before" if summary else "") if part
        )
        body = (
            f"They are coming back: this is visit number {visit}.{who} Your earlier conversation with them "
            f"is restored above ({kept}). Welcome them back in your own words, say in a few words what you "
            "were talking about, and offer to continue."
        )
    else:
        body = (
            f"They are coming back: this is visit number {visit}.{who} Nothing of your earlier conversation "
            "could be restored, so welcome them back without claiming to remember details."
        )
    speak = f" Speak the language with the tag {language!r}." if language else ""
    return f"{GREETING_LEAD}, in one or two short sentences. {body}{speak}"


class Greeter:
    """Composes and speaks one controller's greetings in its mode; see the module docstring."""

    def __init__(
        self,
        mode: GreetingMode,
        templates: GreetingTemplates,
        ready_timeout: float,
        on_decision: Callable[[GreetingDecision], None] | None,
    ) -> None:
        if mode not in GREETING_MODES:
            raise InvalidInputError(f"greeting must be 'template', 'llm' or None, not {mode!r}")
        if mode is None and on_decision is None:
            raise InvalidInputError(
                "greeting=None leaves the greeting to your code: pass on_decision, which gets greet=True "
                "on the one agent that must greet each visit"
            )
        self.mode = mode
        self.templates = templates
        self.ready_timeout = ready_timeout
        self.on_decision = on_decision

    def report(self, decision: GreetingDecision) -> None:
        """Hand the decision to ``on_decision``; its failure is logged, never raised into the controller."""
        if self.on_decision is None:
            return
        try:
            self.on_decision(decision)
        except Exception:
            claimed = " (it held this visit's greeting, which may now go unsaid)" if decision.greet else ""
            log.exception("on_decision failed for %r%s", decision.identity, claimed)

    def compose(
        self, *, returning: bool, language: str | None, visit: int, name: str, restored: int, summary: bool
    ) -> tuple[str | None, str | None]:
        """The template text to say and the LLM instructions to give (one of them, or neither for None)."""
        if self.mode == "template":
            return self.templates.render(returning=returning, language=language, visit=visit, name=name), None
        if self.mode == "llm":
            facts: dict[str, Any] = {"visit": visit, "name": name, "language": language}
            return None, llm_instructions(returning=returning, restored=restored, summary=summary, **facts)
        return None, None

    async def speak(
        self,
        session: AgentSession[Any],
        ready: asyncio.Event,
        arrived: float,
        decision: GreetingDecision,
        name: str,
    ) -> None:
        """Say the decided greeting once the participant can hear it (the template if the LLM fails)."""
        await self._until_ready(ready, arrived, decision.identity)
        if decision.text is not None:
            await session.say(decision.text)
        if decision.instructions is None:
            return
        handle = await session.generate_reply(instructions=decision.instructions)
        error = handle.exception()
        if error is None and any(_spoken(item) for item in handle.chat_items):
            return
        log.warning(
            "the LLM greeting for %r failed (%s); saying the template instead",
            decision.identity,
            error or "nothing was said",
        )
        fallback = self.templates.render(
            returning=decision.returning, language=decision.language, visit=decision.visit, name=name
        )
        await session.say(fallback)

    async def say_when_ready(
        self, session: AgentSession[Any], ready: asyncio.Event, arrived: float, identity: str, text: str
    ) -> None:
        """Say fixed ``text`` once the participant can hear it (at most ``ready_timeout`` after ``arrived``)."""
        await self._until_ready(ready, arrived, identity)
        await session.say(text)

    async def _until_ready(self, ready: asyncio.Event, arrived: float, identity: str) -> None:
        wait = self.ready_timeout - (time.perf_counter() - arrived)
        try:
            await asyncio.wait_for(ready.wait(), timeout=max(wait, 0.0))
        except TimeoutError:
            log.info(
                "no readiness signal from %r within %.1fs; greeting anyway", identity, self.ready_timeout
            )


def _spoken(item: llm.ChatItem) -> bool:
    return (
        isinstance(item, llm.ChatMessage)
        and item.role == "assistant"
        and bool((item.text_content or "").strip())
    )


__all__ = [
    "GREETING_LEAD",
    "GREETING_MODES",
    "Greeter",
    "GreetingDecision",
    "GreetingMode",
    "llm_instructions",
]
