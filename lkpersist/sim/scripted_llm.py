"""A small deterministic ``llm.LLM`` for ``lkpersist simulate`` and tests: no network, no key.

It answers from a script (a list of replies, used in order, or a function of the chat context) and keeps
a copy of every chat context it was given, so a caller can check what the model actually received —
for example that turns restored from an earlier visit reached it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from livekit.agents import APIConnectOptions, llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS

from lkpersist.agent.history import RESTORED_MARK

Reply = Callable[[llm.ChatContext], str]


def default_reply(chat_ctx: llm.ChatContext) -> str:
    """Answer the last user message, and show what was remembered from an earlier visit."""
    messages = chat_ctx.messages()
    user_texts = [m.text_content or "" for m in messages if m.role == "user"]
    remembered = [m.text_content or "" for m in messages if m.role == "user" and m.extra.get(RESTORED_MARK)]
    last = user_texts[-1] if user_texts else ""
    if remembered:
        return f'I remember you said: "{remembered[-1]}". About "{last}": noted.'
    return f'You said: "{last}". Noted.'


class ScriptedLLM(llm.LLM[Any]):
    """Replies from ``script`` (a list, cycled, or a function); records every chat context received."""

    def __init__(self, script: Sequence[str] | Reply | None = None) -> None:
        super().__init__()
        self._script = script if script is not None else default_reply
        self._next = 0
        self.calls: list[llm.ChatContext] = []

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
        self.calls.append(chat_ctx.copy())
        return _ScriptedStream(
            self,
            reply=self._reply_for(chat_ctx),
            chat_ctx=chat_ctx,
            tools=tools or [],
            conn_options=conn_options,
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


class _ScriptedStream(llm.LLMStream):
    def __init__(self, owner: ScriptedLLM, *, reply: str, **kwargs: Any) -> None:
        super().__init__(owner, **kwargs)
        self._reply = reply

    async def _run(self) -> None:
        words = self._reply.split(" ")
        for index, word in enumerate(words):
            piece = word if index == 0 else " " + word
            self._event_ch.send_nowait(
                llm.ChatChunk(id="scripted", delta=llm.ChoiceDelta(role="assistant", content=piece))
            )


__all__ = ["ScriptedLLM", "default_reply"]
