"""``SessionPersistence``: makes a LiveKit agent remember who came back and what was said.

Wiring, in a job entrypoint::

    await session.start(agent, room=ctx.room, room_options=RoomOptions(close_on_disconnect=False))
    persistence = SessionPersistence()          # the configured store: --store / LKPERSIST_STORE / default
    persistence.attach(session, ctx.room)
    ctx.add_shutdown_callback(persistence.aclose)   # also closes the store it opened

What it does, and why it is shaped this way:

- ``rtc.Room.on`` refuses coroutines, so every room/session handler here is synchronous and schedules
  the store work as a task (:mod:`lkpersist.agent._tasks`: references kept, exceptions logged).
- Events of one identity are applied to the store in arrival order (a per-identity chain), so a refresh
  (leave + join within a second) can never record the join before the leave.
- A repeated ``participant_connected`` for someone already present is ignored locally (it must not
  count as a return). Across jobs, restarts and agents, ``store.claim_greeting`` decides who greets:
  exactly one caller per return.
- The greeting path (connect, claim, recent turns) shares one time budget, ``store_timeout``, counted
  from the room callback. A dead or slow store costs at most that much; the agent then greets as new,
  without history, logs it and counts it in :attr:`SessionPersistence.store_failures`.
- Earlier turns go into the agent's chat context before the greeting is spoken (see
  :mod:`lkpersist.agent.history`), and the greeting waits (at most ``ready_timeout``) until the
  participant can hear it: the agent's audio track subscribed, or, without audio, the participant active.
- Who greets, summaries of long conversations and ``session.userdata`` are
  :mod:`lkpersist.agent.conversation`, reached through one-line hooks marked ``# conversation``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from livekit import rtc
from livekit.agents import AgentSession, CloseEvent, ConversationItemAddedEvent
from livekit.agents.job import DEFAULT_PARTICIPANT_KINDS
from livekit.agents.types import ATTRIBUTE_PUBLISH_ON_BEHALF

from lkpersist import audit
from lkpersist.agent import _participants
from lkpersist.agent._store_calls import FAILED, BoundedCalls
from lkpersist.agent._tasks import AgentTasks
from lkpersist.agent.conversation import Conversation
from lkpersist.agent.greeter import GreetingDecision, GreetingMode
from lkpersist.agent.greetings import DEFAULT_GREETINGS, GreetingTemplates
from lkpersist.agent.history import restored_chat_ctx, turn_from_item
from lkpersist.agent.metrics import ArrivalLog, agent_metrics
from lkpersist.agent.summaries import Summaries
from lkpersist.exceptions import InvalidInputError
from lkpersist.logsafe import PERSONAL, get_logger
from lkpersist.model.results import ConnectResult
from lkpersist.model.session import Turn
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore
from lkpersist.stores.fallback import FallbackStore

log = get_logger("lkpersist.agent")
T = TypeVar("T")


@dataclass(eq=False)
class _Visit:
    """One presence of one identity in this room, from its join to its leave."""

    participant: rtc.RemoteParticipant
    arrived: float
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)


class SessionPersistence:
    """Connects one room's participants and one ``AgentSession`` to a :class:`SessionStore`.

    ``store_timeout``: time budget of the store calls on the greeting path (seconds).
    ``ready_timeout``: longest wait for the participant to be able to hear the greeting.
    ``heartbeat_interval``: how often a present participant's session is refreshed; keep it well under
    the shortest TTL. ``restore_turns``: how many recent turns go back into the chat context.
    ``participant_identity``: follow only this identity (as ``RoomOptions.participant_identity``).
    ``on_decision``: called with each :class:`GreetingDecision` (for metrics, tests, the simulation).
    ``fallback``: wrap ``store`` in a :class:`~lkpersist.stores.fallback.FallbackStore` (memory while it
    is unreachable, merged back when it answers; :attr:`fallback` shows its state). Closed by :meth:`aclose`.
    ``store``: the store to use, which stays the caller's to close; None (the default) opens the configured
    one (``open_store()``: ``LKPERSIST_STORE`` or the default SQLite file), which :meth:`aclose` closes.
    ``greeting``: who speaks it, ``"template"``, ``"llm"`` or None (your code, via ``on_decision``).
    ``summaries``: when the oldest turns are summarised (None: never). ``userdata``: the dataclass or
    pydantic model kept in ``session.userdata`` with the session (None: not kept). See
    :mod:`lkpersist.agent.conversation`; its parts are :attr:`conversation`.
    """

    def __init__(
        self,
        store: SessionStore | None = None,
        *,
        greetings: GreetingTemplates = DEFAULT_GREETINGS,
        store_timeout: float = 0.5,
        ready_timeout: float = 3.0,
        heartbeat_interval: float = 30.0,
        restore_turns: int = 20,
        participant_identity: str | None = None,
        on_decision: Callable[[GreetingDecision], None] | None = None,
        fallback: bool = False,
        greeting: GreetingMode = "template",
        summaries: Summaries | None = Summaries(),  # noqa: B008 -- frozen, so one shared default is safe
        userdata: type[Any] | None = None,
    ) -> None:
        if min(store_timeout, ready_timeout, heartbeat_interval) <= 0 or restore_turns < 1:
            raise InvalidInputError("timeouts and heartbeat_interval must be positive, restore_turns >= 1")
        owned = store is None
        store = open_store() if store is None else store
        self._owned_store = store if owned else None
        wrap = fallback or isinstance(store, FallbackStore)
        self.fallback = _fallback_for(store, store_timeout) if wrap else None
        self.store: SessionStore = self.fallback or store
        self._owns_fallback = self.fallback is not None and self.fallback is not store
        self.greetings = greetings
        self.store_timeout = store_timeout
        self.ready_timeout = ready_timeout
        self.heartbeat_interval = heartbeat_interval
        self.restore_turns = restore_turns
        self.participant_identity = participant_identity
        self.metrics = agent_metrics()  # metrics: NO_METRICS unless Prometheus is in use
        self._bounded = BoundedCalls(store_timeout, self.metrics, self.store)
        self._arrivals = ArrivalLog(lambda: self._bounded(self.store.count(), "count"))  # debug logging
        self.last_decision: GreetingDecision | None = None
        self._session: AgentSession[Any] | None = None
        self._room: rtc.Room | None = None
        self._visits: dict[str, _Visit] = {}
        self._tasks = AgentTasks()
        self._speaker: str | None = None
        self._closed = False
        self.conversation = Conversation(  # conversation
            self.store, self._bounded, greeting=greeting, greetings=greetings, ready_timeout=ready_timeout,
            on_decision=on_decision, summaries=summaries, userdata=userdata,
        )

    @property
    def store_failures(self) -> int:
        """Store calls that failed or timed out so far (each logged; the agent carried on without them)."""
        return self._bounded.failures

    # --- wiring -----------------------------------------------------------------------------------

    def attach(self, session: AgentSession[Any], room: rtc.Room | None = None) -> None:
        """Listen to ``session`` (and ``room``); participants already in the room are handled at once."""
        self.conversation.attach(session)  # conversation: a userdata that cannot round-trip fails here
        self._session = session
        session.on("conversation_item_added", self._on_conversation_item_added)
        session.on("close", self._on_session_close)
        if room is None:
            return
        self._room = room
        for event, handler in self._room_handlers().items():
            room.on(event, handler)
        for participant in list(room.remote_participants.values()):
            self._on_participant_connected(participant)

    async def wait_idle(self, *, summaries: bool = True) -> None:
        """Wait until every scheduled store call, pending greeting and (unless told) summary has finished."""
        await self._tasks.wait_idle(except_what="heartbeat")  # heartbeats never finish
        if summaries:
            await self.conversation.wait_idle()  # conversation

    async def aclose(self) -> None:
        """Record everyone still present as gone, stop listening, and wait for the store calls to finish."""
        await self.conversation.aclose()  # conversation: a summary in flight is abandoned, its turns stay
        for identity in list(self._visits):
            self._leave(identity, "agent closed")
        self._closed = True
        self._detach()
        await self.wait_idle()
        await self._tasks.cancel_all()
        if self.fallback is not None and self._owns_fallback:
            await self.fallback.close()
        if self._owned_store is not None:
            await self._owned_store.close()

    def _room_handlers(self) -> dict[Any, Callable[..., None]]:  # keys: rtc.Room event names
        return {
            "participant_connected": self._on_participant_connected,
            "participant_disconnected": self._on_participant_disconnected,
            "participant_active": self._on_participant_active,
            "local_track_subscribed": self._on_local_track_subscribed,
            "participant_attributes_changed": self._on_attributes_changed,
        }

    def _detach(self) -> None:
        if self._session is not None:
            self._session.off("conversation_item_added", self._on_conversation_item_added)
            self._session.off("close", self._on_session_close)
        if self._room is not None:
            for event, handler in self._room_handlers().items():
                self._room.off(event, handler)

    # --- room and session callbacks (synchronous, as rtc.Room requires) --------------------------

    def _on_participant_connected(self, participant: rtc.RemoteParticipant) -> None:
        identity = participant.identity
        if self._closed or not self._follows(participant):
            return
        if identity in self._visits:
            log.debug("repeated participant_connected for %r ignored", identity)
            return
        visit = _Visit(participant=participant, arrived=time.perf_counter())
        if not self._needs_audio() and participant.state == rtc.ParticipantState.PARTICIPANT_STATE_ACTIVE:
            visit.ready.set()
        self._visits[identity] = visit
        self._speaker = identity
        self._tasks.enqueue(identity, "join", lambda: self._join(identity, visit))

    def _on_participant_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        reason = rtc.DisconnectReason.Name(
            participant.disconnect_reason or rtc.DisconnectReason.UNKNOWN_REASON
        )
        self._leave(participant.identity, reason)

    def _on_participant_active(self, participant: rtc.RemoteParticipant) -> None:
        visit = self._visits.get(participant.identity)
        if visit is not None and not self._needs_audio():
            visit.ready.set()

    def _on_local_track_subscribed(self, track: rtc.Track) -> None:
        # the event does not say who subscribed; in the 1:1 rooms agents serve it is the participant
        for visit in self._visits.values():
            visit.ready.set()

    def _on_attributes_changed(self, changed: dict[str, str], participant: rtc.Participant) -> None:
        if participant.identity in self._visits:
            self._tasks.enqueue(participant.identity, "attributes", lambda: self._record_participant(participant))

    def _on_conversation_item_added(self, event: ConversationItemAddedEvent) -> None:
        turn = turn_from_item(event.item)
        identity = self._speaker
        if turn is None or identity is None or self._closed:
            return
        self._tasks.enqueue(identity, "turn", lambda: self._append(identity, turn))

    def _on_session_close(self, event: CloseEvent) -> None:
        for identity in list(self._visits):
            self._leave(identity, f"session closed ({event.reason.value})")

    def _follows(self, participant: rtc.RemoteParticipant) -> bool:
        if self.participant_identity is not None:
            return participant.identity == self.participant_identity
        if participant.kind not in DEFAULT_PARTICIPANT_KINDS:
            return False
        on_behalf = participant.attributes.get(ATTRIBUTE_PUBLISH_ON_BEHALF)
        return not (
            on_behalf and self._room is not None and on_behalf == self._room.local_participant.identity
        )

    def _needs_audio(self) -> bool:
        return self._session is not None and self._session.output.audio is not None

    def _leave(self, identity: str, reason: str) -> None:
        visit = self._visits.pop(identity, None)
        if visit is None:
            return
        self.metrics.visit_ended(time.perf_counter() - visit.arrived)  # metrics
        for task in visit.tasks:
            task.cancel()
        self._tasks.enqueue(identity, "leave", lambda: self._disconnect(identity, reason))

    # --- the work, in per-identity order ---------------------------------------------------------

    async def _join(self, identity: str, visit: _Visit) -> None:
        decision = await self._decide(identity, visit)
        self.last_decision = decision
        self.metrics.decided(decision, self.conversation.greeter.mode)  # metrics
        log.info(
            "participant %r: %s, visit %d, greet=%s, restored %d turns, store %s, %.1f ms",
            identity,
            "returning" if decision.returning else "new",
            decision.visit,
            decision.greet,
            decision.restored_turns,
            "ok" if decision.store_ok else "FAILED",
            decision.elapsed * 1000,
        )
        self.conversation.decided(decision, self.restore_turns)  # conversation: on_decision, then summaries
        if self._visits.get(identity) is not visit:
            return  # left while we were deciding: nobody to greet
        visit.tasks.append(self._tasks.spawn(self._heartbeat(identity), "heartbeat"))
        if decision.store_ok:
            self._tasks.enqueue(identity, "metadata", lambda: self._record_participant(visit.participant))
        speech = self.conversation.greeting(visit.ready, visit.arrived, decision, visit.participant.name)
        if speech is not None:  # conversation: a template, the LLM's own words, or nothing (greeting=None)
            visit.tasks.append(self._tasks.spawn(speech, "greeting"))
        await self._arrivals.arrived(decision)  # debug logging: at DEBUG only, the store counted once a minute

    async def _decide(self, identity: str, visit: _Visit) -> GreetingDecision:
        deadline = (
            asyncio.get_running_loop().time() + self.store_timeout - (time.perf_counter() - visit.arrived)
        )
        connected = await self._bounded(self.store.connect(identity), "connect", deadline)
        language = _participants.language_of(visit.participant)
        if connected is FAILED:
            return self._decision(identity, visit, None, True, language, 0, store_ok=False)
        claim, turns = await asyncio.gather(
            self._bounded(self.store.claim_greeting(identity), "claim_greeting", deadline),
            self._recent_turns(identity, connected, deadline),
        )
        language = language or connected.session.language
        self.metrics.connected(connected.returning)  # metrics
        self.conversation.arrived(identity, connected.session, connected.returning)  # conversation: userdata
        restored = await self._restore(identity, connected, turns)
        greet = claim is not False  # a failed claim greets: silence is worse than a rare repeat
        return self._decision(identity, visit, connected, greet, language, restored, claim is not FAILED)

    def _decision(
        self,
        identity: str,
        visit: _Visit,
        connected: ConnectResult | None,
        greet: bool,
        language: str | None,
        restored: int,
        store_ok: bool,
    ) -> GreetingDecision:
        session = None if connected is None else connected.session
        number = 1 + (session.reconnect_count if session is not None else 0)
        return self.conversation.decision(  # conversation: the template or the LLM's instructions
            identity, session, arrived=visit.arrived, name=visit.participant.name or "", greet=greet,
            returning=connected is not None and connected.returning, visit=number, language=language,
            restored=restored, store_ok=store_ok,
        )

    async def _recent_turns(self, identity: str, connected: ConnectResult, deadline: float) -> list[Turn]:
        if not connected.returning:
            return []
        turns = await self._bounded(
            self.store.recent_turns(identity, self.restore_turns), "recent_turns", deadline
        )
        return [] if turns is FAILED else turns

    async def _restore(self, identity: str, connected: ConnectResult, turns: list[Turn]) -> int:
        summary = connected.session.context.get("summary") if connected.returning else None
        if self._session is None or (not turns and not summary):
            return 0
        try:
            agent = self._session.current_agent
            chat_ctx, added = restored_chat_ctx(
                agent.chat_ctx, turns, summary=summary if isinstance(summary, str) else None
            )
            await agent.update_chat_ctx(chat_ctx)
            audit.record_restore(identity, added)
            return added
        except Exception:
            log.exception("could not restore earlier conversation for %r", identity)
            return 0

    async def _heartbeat(self, identity: str) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            alive = await self._bounded(self.store.heartbeat(identity), "heartbeat")
            if alive is False:  # expired or removed meanwhile (e.g. the store was down past the TTL)
                await self._bounded(self.store.connect(identity), "connect after expiry")

    async def _disconnect(self, identity: str, reason: str) -> None:
        await self.conversation.leaving(identity, self._speaker)  # conversation: save the userdata
        await self._bounded(self.store.disconnect(identity), "disconnect")
        self.conversation.left(identity)  # conversation: summarise what the visit added, if due
        log.info("participant %r left (%s)", identity, reason)

    async def _append(self, identity: str, turn: Turn) -> None:
        stored = await self._bounded(self.store.append_turn(identity, turn), "append_turn")
        self.metrics.turn_recorded(stored)  # metrics
        self.conversation.recorded(identity, stored)  # conversation: summaries count the turns
        log.debug("recorded %s turn for %r: %s", turn.role, identity, turn.text, extra=PERSONAL)

    async def save_userdata(self) -> bool:
        """Save ``session.userdata`` for the participant being served now; False when nothing was saved."""
        return self._speaker is not None and await self.conversation.save_userdata(self._speaker)

    async def _record_participant(self, participant: rtc.Participant) -> None:
        language = _participants.language_of(participant)
        metadata = _participants.metadata_of(participant)
        await self._bounded(
            self.store.update(participant.identity, language=language, metadata=metadata), "update"
        )


def _fallback_for(store: SessionStore, store_timeout: float) -> FallbackStore:
    """The caller's FallbackStore as it is, or one around ``store`` that answers within the greeting budget."""
    if isinstance(store, FallbackStore):
        return store
    return FallbackStore(store, operation_timeout=store_timeout / 2, close_primary=False)


__all__ = ["GreetingDecision", "SessionPersistence"]
