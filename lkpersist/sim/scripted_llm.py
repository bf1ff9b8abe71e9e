"""A small deterministic ``llm.LLM`` for ``lkpersist simulate`` and tests: no network, no key.

It answers from a script (a list of replies, used in order, or a function of the chat context) and keeps
a copy of every chat context it was given, so a caller can check what the model actually received —
for example that turns restored from an earlier visit reached it.

Two requests lkpersist itself makes get answers of their own, so that both work offline:

- a greeting (``SessionPersistence(greeting="llm")``: instructions that begin with
  :data:`~lkpersist.agent.greeter.GREETING_LEAD`) is answered by :func:`default_reply` with a welcome
  that quotes the last restored user line;
- a summary request (:mod:`lkpersist.agent.summaries`) is answered by ``summary`` (default
  :func:`scripted_summary`: the previous summary's quoted lines, then the new user lines, deduplicated,
  within the word limit), after ``summary_delay`` seconds and once ``summary_gate`` (an asyncio.Event,
  if given) is set, so a test or a benchmark can hold a summary in flight; a ``summary`` that raises
  makes the model fail the request, as a provider error would. Summary requests are kept in
  :attr:`ScriptedLLM.summary_calls`, not in :attr:`ScriptedLLM.calls`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from typing import Any

from livekit.agents import APIConnectionError, APIConnectOptions, llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS

from lkpersist.agent.greeter import GREETING_LEAD
from lkpersist.agent.history import RESTORED_MARK
from lkpersist.agent.summariser import SUMMARY_REQUEST

Reply = Callable[[llm.ChatContext], str]
SummaryReply = Callable[[dict[str, Any]], str]
"""Answers a summary request: ``{"previous": str | None, "turns": [[role, text], ...], "max_words": int}``."""


def default_reply(chat_ctx: llm.ChatContext) -> str:
    """Answer the last user message, and show what was remembered from an earlier visit (or greet)."""
    messages = chat_ctx.messages()
    user_texts = [m.text_content or "" for m in messages if m.role == "user"]
    remembered = [m.text_content or "" for m in messages if m.role == "user" and m.extra.get(RESTORED_MARK)]
    last_system = next((m.text_content or "" for m in reversed(messages) if m.role == "system"), "")
    if last_system.startswith(GREETING_LEAD):
        return _greeting(last_system, remembered)
    last = user_texts[-1] if user_texts else ""
    if remembered:
        return f'I remember you said: "{remembered[-1]}". About "{last}": noted.'
    return f'You said: "{last}". Noted.'


def _greeting(instructions: str, remembered: list[str]) -> str:
    visit = re.search(r"visit number (\d+)", instructions)
    if visit is None:
        return "Hello! Nice to meet you. How can I help you today?"
    recalled = f' Last time you said: "{remembered[-1]}".' if remembered else ""
    return f"Welcome back for visit {visit.group(1)}!{recalled} Shall we continue?"


def scripted_summary(request: dict[str, Any]) -> str:
    """A deterministic merge: the lines quoted by the previous summary, then the new user lines, once each."""
    previous = re.findall(r'"([^"]*)"', request.get("previous") or "")
    said = [text for role, text in request["turns"] if role == "user"]
    lines = list(dict.fromkeys([*previous, *(line.replace('"', "'") for line in said)]))
    words = " ".join(f'"{line}"' for line in lines).split(" ")
    return "Earlier, the user said: " + " ".join(words[: request["max_words"]])


class ScriptedLLM(llm.LLM[Any]):
    """Replies from ``script`` (a list, cycled, or a function); records every chat context received."""

    def __init__(
        self,
        script: Sequence[str] | Reply | None = None,
        *,
        summary: SummaryReply = scripted_summary,
        summary_delay: float = 0.0,
        summary_gate: asyncio.Event | None = None,
    ) -> None:
        super().__init__()
        self._script = script if script is not None else default_reply
        self._summary = summary
        self.summary_delay = summary_delay
        self.summary_gate = summary_gate
        self._next = 0
        self.calls: list[llm.ChatContext] = []
        self.summary_calls: list[llm.ChatContext] = []

    @property
    def model(self) -> str:
        return "scripted"

    @property
    def provider(self) -> str:
        return "lkpersist"

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        **_: Any,
    ) -> llm.LLMStream:
        marked = (m.extra[SUMMARY_REQUEST] for m in chat_ctx.messages() if SUMMARY_REQUEST in m.extra)
        request = next(marked, None)
        if request is not None:
            self.summary_calls.append(chat_ctx.copy())
            reply: str | BaseException = _answer(self._summary, request)
        else:
            self.calls.append(chat_ctx.copy())
            reply = self._reply_for(chat_ctx)
        hold = (self.summary_delay, self.summary_gate) if request is not None else (0.0, None)
        return _ScriptedStream(
            self, reply=reply, hold=hold, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options
        )

    def _reply_for(self, chat_ctx: llm.ChatContext) -> str:
        if callable(self._script):
            return self._script(chat_ctx)
        if not self._script:
            return ""
        reply = self._script[self._next % len(self._script)]
        self._next += 1
        return reply

    def received_texts(self, call: int = -1) -> list[tuple[str, str]]:
        """``(role, text)`` of every message the model was given in one call (the last by default)."""
        return [(m.role, m.text_content or "") for m in self.calls[call].messages()]


def _answer(summary: SummaryReply, request: dict[str, Any]) -> str | BaseException:
    try:
        return summary(request)
    except Exception as exc:  # noqa: BLE001 -- reported by the stream, as a provider's failure would be
        return exc


class _ScriptedStream(llm.LLMStream):
    def __init__(
        self,
        owner: ScriptedLLM,
        *,
        reply: str | BaseException,
        hold: tuple[float, asyncio.Event | None],
        **kwargs: Any,
    ) -> None:
        super().__init__(owner, **kwargs)
        self._reply = reply
        self._delay, self._gate = hold

    async def _run(self) -> None:
        if self._delay:
            await asyncio.sleep(self._delay)
        if self._gate is not None:
            await self._gate.wait()
        if isinstance(self._reply, BaseException):
            raise APIConnectionError(f"scripted failure: {self._reply}", retryable=False) from self._reply
        words = self._reply.split(" ")
        for index, word in enumerate(words):
            piece = word if index == 0 else " " + word
            self._event_ch.send_nowait(
                llm.ChatChunk(id="scripted", delta=llm.ChoiceDelta(role="assistant", content=piece))
            )


__all__ = ["ScriptedLLM", "SummaryReply", "default_reply", "scripted_summary"]
