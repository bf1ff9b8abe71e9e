"""Who speaks the greeting: templates, the agent's own LLM, or the agent's code (``greeting=None``)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from livekit.agents import llm

from lkpersist.agent.greeter import GREETING_LEAD, GreetingDecision
from lkpersist.agent.greetings import DEFAULT_NEW, DEFAULT_RETURNING
from lkpersist.clock import VirtualClock
from lkpersist.exceptions import InvalidInputError
from lkpersist.sim.scripted_llm import ScriptedLLM, default_reply
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore
from tests.agent.conftest import JobFactory


@pytest.fixture
async def memory(clock: VirtualClock) -> SessionStore:
    return open_store("memory://", clock=clock)


def _greeting_instructions(model: ScriptedLLM) -> list[str]:
    """The greeting instructions each call of the model carried (the last system message of the call)."""
    found = []
    for call in model.calls:
        systems = [m.text_content or "" for m in call.messages() if m.role == "system"]
        if systems and systems[-1].startswith(GREETING_LEAD):
            found.append(systems[-1])
    return found


async def test_llm_greeting_on_a_first_visit_is_the_models_own_words(
    memory: SessionStore, make_job: JobFactory
) -> None:
    job = await make_job(memory, greeting="llm")
    await job.arrive("ada", name="Ada")
    (instructions,) = _greeting_instructions(job.llm)
    assert "first visit" in instructions and "Their name is Ada." in instructions
    assert job.said == ["Hello! Nice to meet you. How can I help you today?"]
    assert job.decisions[0].text is None and job.decisions[0].instructions == instructions
    recorded = await memory.recent_turns("ada")
    assert [(t.role, t.text) for t in recorded] == [("assistant", job.said[0])]  # instructions are no turn


async def test_llm_greeting_on_a_return_refers_to_what_was_said(
    memory: SessionStore, clock: VirtualClock, make_job: JobFactory
) -> None:
    first = await make_job(memory, greeting="llm")
    await first.arrive("bo")
    await first.say_user("Book the table by the window.")
    await first.leave("bo")
    clock.advance(30)
    second = await make_job(memory, greeting="llm")
    await second.arrive("bo")
    second.events.repeat_join("bo")  # a repeated event greets nobody twice
    await second.persistence.wait_idle()
    (instructions,) = _greeting_instructions(second.llm)
    assert "visit number 2" in instructions and "restored above (3 earlier messages)" in instructions
    recalled = 'Last time you said: "Book the table by the window.".'
    assert second.said == [f"Welcome back for visit 2! {recalled} Shall we continue?"]
    history = second.session.history.messages()
    assert not any(GREETING_LEAD in (m.text_content or "") for m in history)  # not stored in history


async def test_llm_greeting_names_a_summary_and_the_language(
    memory: SessionStore, clock: VirtualClock, make_job: JobFactory
) -> None:
    await memory.connect("cy")
    await memory.update("cy", language="es", context={"summary": "They booked a table."})
    await memory.disconnect("cy")
    clock.advance(10)
    job = await make_job(memory, greeting="llm")
    await job.arrive("cy")
    (instructions,) = _greeting_instructions(job.llm)
    assert "restored above (a summary of what came before)" in instructions
    assert "Speak the language with the tag 'es'." in instructions


async def test_a_failing_llm_greeting_falls_back_to_the_template(
    memory: SessionStore, make_job: JobFactory, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(chat_ctx: llm.ChatContext) -> str:
        if any(GREETING_LEAD in (m.text_content or "") for m in chat_ctx.messages()):
            return ""  # the model says nothing
        return default_reply(chat_ctx)

    job = await make_job(memory, greeting="llm", llm=ScriptedLLM(broken))
    with caplog.at_level(logging.WARNING, logger="lkpersist.agent"):
        await job.arrive("dee")
    assert job.said == [DEFAULT_NEW["en"]]
    assert "the LLM greeting for 'dee' failed" in caplog.text


async def test_greeting_none_requires_on_decision(memory: SessionStore) -> None:
    from lkpersist.agent.controller import SessionPersistence

    with pytest.raises(InvalidInputError, match="on_decision"):
        SessionPersistence(memory, greeting=None)
    with pytest.raises(InvalidInputError, match="'template', 'llm' or None"):
        SessionPersistence(memory, greeting="loud")  # type: ignore[arg-type]


async def test_greeting_none_restores_and_hands_the_one_claim_to_the_agent(
    memory: SessionStore, clock: VirtualClock, make_job: JobFactory
) -> None:
    """Two agents share the store; exactly one is told to greet each visit, and lkpersist says nothing."""
    calls: list[GreetingDecision] = []
    first = await make_job(memory, greeting=None, on_decision=calls.append)
    await first.arrive("eve")
    assert first.said == []
    await first.say_user("My name is Eve.")
    await first.leave("eve")
    clock.advance(20)
    a = await make_job(memory, greeting=None, on_decision=calls.append)
    b = await make_job(memory, greeting=None, on_decision=calls.append)
    await a.arrive("eve")
    await b.arrive("eve")
    assert a.said == [] and b.said == []
    returns = calls[1:]
    assert [d.greet for d in returns].count(True) == 1
    assert all(d.text is None and d.instructions is None and d.returning for d in returns)
    await a.say_user("Where were we?")
    assert ("user", "My name is Eve.") in a.llm.received_texts()  # the context was restored


async def test_a_raising_on_decision_is_logged_and_the_visit_goes_on(
    memory: SessionStore, make_job: JobFactory, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(decision: GreetingDecision) -> Any:
        raise RuntimeError("boom")

    job = await make_job(memory, greeting=None, on_decision=explode)
    with caplog.at_level(logging.ERROR, logger="lkpersist.agent"):
        await job.arrive("fay", name="Fay")
    assert "on_decision failed for 'fay' (it held this visit's greeting" in caplog.text
    assert (await memory.require("fay")).metadata["name"] == "Fay"  # the rest of the arrival still ran


async def test_template_stays_the_default(
    memory: SessionStore, clock: VirtualClock, make_job: JobFactory
) -> None:
    job = await make_job(memory)
    await job.arrive("gus")
    await job.leave("gus")
    clock.advance(5)
    again = await make_job(memory)
    await again.arrive("gus")
    assert job.said == [DEFAULT_NEW["en"]] and again.said == [DEFAULT_RETURNING["en"].format(visit=2)]
    assert again.decisions[0].instructions is None


async def test_a_raising_llm_greeting_falls_back_to_the_template(
    memory: SessionStore, make_job: JobFactory
) -> None:
    def raising(chat_ctx: llm.ChatContext) -> str:
        raise RuntimeError("provider down")

    job = await make_job(memory, greeting="llm", llm=ScriptedLLM(raising))
    await job.arrive("hal")
    assert job.said == [DEFAULT_NEW["en"]]


async def test_a_fixed_line_waits_until_the_participant_can_hear_it(memory: SessionStore, make_job: JobFactory) -> None:
    import asyncio
    import time

    job = await make_job(memory)
    ready = asyncio.Event()
    line = job.persistence.conversation.greeter.say_when_ready(
        job.session, ready, time.perf_counter(), "ivy", "You are on your phone now."
    )
    speaking = asyncio.ensure_future(line)
    await asyncio.sleep(0.01)
    assert job.said == []  # not yet ready
    ready.set()
    await speaking
    assert job.said == ["You are on your phone now."]
