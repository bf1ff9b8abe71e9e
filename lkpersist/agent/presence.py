"""This controller's presence in the store: one connection id, its arrivals, heartbeats and leaves.

Each :class:`~lkpersist.agent.controller.SessionPersistence` is one *connection* of the sessions it
serves (the store's visit model, :mod:`lkpersist.model.presence`): two agents in one room, or a job
replacing another while the participant stays, are two connections of one visit, so the visit number
and the greeting are the store's, whatever the order of their joins, leaves and heartbeats.

- The connection id is ``<agent name or "agent">:<job id or "local">:<8 random hex>``: unique per
  controller, and readable in ``lkpersist sessions show``.
- The device of an arrival is the participant attribute ``lkpersist.device`` (the ``lkpersist serve``
  page sets a random id it keeps in localStorage, and ``lkpersist.device_label``), else what LiveKit
  tells about the participant: livekit-rtc exposes its kind (standard, SIP, ingress, ...), kind details
  and, for SIP callers, the phone number attribute; it exposes no SDK or OS. The store bounds and
  escapes both (a 10 KB or control-character attribute never gets through raw).
- A SIP caller's device id is a digest of the phone number, and devices are stored as they are (not
  encrypted: the presence rule reads them on every arrival). A plain digest of a phone number is
  reversed by trying every number, so when the store encrypts personal values (or
  ``LKPERSIST_IDENTITY_KEY`` is set) the digest is keyed with the identity hash key
  (:func:`number_hasher`); only an unencrypted store, which keeps every personal value readable anyway,
  gets the plain one.
- A ``DUPLICATE_IDENTITY`` leave is LiveKit kicking the old device because the same identity joined
  elsewhere: it is passed to the store as ``duplicate_identity``, which keeps the visit open for the
  new device's arrival (a device switch).
"""

from __future__ import annotations

import hashlib
import os
import uuid

from livekit import rtc
from livekit.agents import get_job_context

from lkpersist.agent._participants import DEVICE_ATTRIBUTES
from lkpersist.agent._store_calls import FAILED, BoundedCalls, StoreFailed
from lkpersist.crypto import ENV_IDENTITY_KEY
from lkpersist.crypto.fernet import FernetCodec
from lkpersist.crypto.identity import IdentityHasher
from lkpersist.logsafe import get_logger
from lkpersist.model.presence import DUPLICATE_IDENTITY, DeviceSeen
from lkpersist.model.results import Arrival
from lkpersist.model.session import Turn
from lkpersist.stores.base import SessionStore

log = get_logger("lkpersist.agent")

DEVICE_ATTRIBUTE, DEVICE_LABEL_ATTRIBUTE = DEVICE_ATTRIBUTES
"""The participant attributes a page sets: its device id (random, kept in localStorage) and a
human-readable name of that device (``Chrome on Android``)."""
SIP_NUMBER_ATTRIBUTE = "sip.phoneNumber"


def connection_id(agent_name: str | None = None) -> str:
    """A new connection id for this controller, from the LiveKit job running it when there is one."""
    context = get_job_context(required=False)  # None outside a job: tests, simulations, a hand-built room
    job = "local" if context is None else context.job.id or "local"
    name = agent_name or ("" if context is None else context.job.agent_name)
    return f"{name or 'agent'}:{job}:{uuid.uuid4().hex[:8]}"


def number_hasher(store: SessionStore) -> IdentityHasher | None:
    """The key phone numbers are digested with: ``LKPERSIST_IDENTITY_KEY``, else (an encrypted store) one
    derived from its first key; None for an unencrypted store without that key (plain digest)."""
    separate = os.environ.get(ENV_IDENTITY_KEY, "").strip()
    if separate:
        return IdentityHasher(separate)
    codec = store.codec
    return codec.identity_hasher() if isinstance(codec, FernetCodec) else None


def device_of(participant: rtc.Participant, hasher: IdentityHasher | None = None) -> DeviceSeen:
    """The device ``participant`` arrived from: the page's attribute, else LiveKit's client info (a SIP
    caller's number digested with ``hasher`` when given: see the module docstring)."""
    attributes = participant.attributes
    given = attributes.get(DEVICE_ATTRIBUTE, "").strip()
    label = attributes.get(DEVICE_LABEL_ATTRIBUTE, "").strip()
    if given:
        return DeviceSeen(given, label)
    kind = rtc.ParticipantKind.Name(participant.kind).removeprefix("PARTICIPANT_KIND_").lower()
    details = [rtc.ParticipantKindDetail.Name(d).removeprefix("PARTICIPANT_KIND_DETAIL_").lower()
               for d in participant.kind_details]
    number = attributes.get(SIP_NUMBER_ATTRIBUTE, "").strip()
    if kind == "sip" and number:  # a phone number is personal data: the device record keeps a digest of it
        if hasher is None:
            return DeviceSeen(f"sip:{hashlib.sha256(number.encode()).hexdigest()[:12]}", label or f"phone ending {number[-4:]}")
        return DeviceSeen(f"sip:k{hasher.digest(number)[:16]}", label or f"phone ending {number[-4:]}")
    derived = "+".join([kind, *details])
    return DeviceSeen(f"livekit:{derived}", label or f"LiveKit {' '.join([kind, *details])} client")


def leave_reason(reason: rtc.DisconnectReason.ValueType | None) -> str:
    """The store's leave reason for a LiveKit disconnect reason (``duplicate_identity``: a device switch)."""
    name = rtc.DisconnectReason.Name(reason or rtc.DisconnectReason.UNKNOWN_REASON)
    return DUPLICATE_IDENTITY if name == "DUPLICATE_IDENTITY" else name.lower()


class Presence:
    """One controller's connection: ``arrive`` decides the visit and the greeting in one store call."""

    def __init__(self, store: SessionStore, calls: BoundedCalls, connection: str, restore_turns: int) -> None:
        self.store, self.calls = store, calls
        self.connection = connection
        self.restore_turns = restore_turns
        self._hasher = number_hasher(store)

    async def arrive(self, participant: rtc.Participant, deadline: float) -> Arrival | StoreFailed:
        """Arrive: the visit, who greets it, and (to its greeter, on a return) the recent turns, atomically."""
        call = self.store.arrive(
            participant.identity, self.connection, device=device_of(participant, self._hasher), restore_turns=self.restore_turns
        )
        return await self.calls(call, "arrive", deadline)

    async def earlier_turns(self, identity: str, deadline: float) -> list[Turn]:
        """The recent turns for a connection that joins a visit it does not greet (a second agent, a job
        taking over): a second store call, off any greeting's path; empty when it fails."""
        turns = await self.calls(self.store.recent_turns(identity, self.restore_turns), "recent_turns", deadline)
        return [] if turns is FAILED else turns

    async def beat(self, participant: rtc.Participant) -> None:
        """Refresh this connection; when the store lost it (expired, stale, removed), arrive again."""
        identity = participant.identity
        alive = await self.calls(self.store.beat(identity, self.connection), "beat")
        if alive is not False:
            return
        call = self.store.arrive(identity, self.connection, device=device_of(participant, self._hasher))
        again = await self.calls(call, "arrive after the connection was lost")
        if isinstance(again, Arrival) and again.new_visit:  # mid-conversation: nobody is greeted
            log.info("participant %r: the store had lost the visit; it goes on as visit %d", identity, again.visit)

    async def leave(self, identity: str, reason: str | None) -> None:
        """This connection leaves; the store ends the visit when it was the last (or awaits a switch)."""
        await self.calls(self.store.leave(identity, self.connection, reason=reason), "leave")


__all__ = [
    "DEVICE_ATTRIBUTE",
    "DEVICE_LABEL_ATTRIBUTE",
    "Presence",
    "connection_id",
    "device_of",
    "leave_reason",
    "number_hasher",
]
