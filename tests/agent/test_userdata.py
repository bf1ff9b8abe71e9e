"""``AgentSession.userdata`` kept with the session: declared, checked, saved, restored after a restart."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from pydantic import BaseModel

from lkpersist.agent.controller import SessionPersistence
from lkpersist.agent.userdata import USERDATA_KEY
from lkpersist.clock import VirtualClock
from lkpersist.exceptions import InvalidInputError
from lkpersist.stores import open_store
from lkpersist.stores.base import SessionStore
from tests.agent.conftest import JobFactory


class Seat(enum.Enum):
    WINDOW = "window"
    BAR = "bar"


@dataclass
class Booking:
    day: str
    guests: int
    seat: Seat = Seat.BAR


@dataclass
class Prefs:
    name: str = ""
    bookings: list[Booking] = field(default_factory=list)
    allergies: set[str] = field(default_factory=set)
    budget: float | None = None
    tags: dict[str, int] = field(default_factory=dict)
    slot: tuple[int, int] = (19, 0)


@dataclass
class PrefsRenamed:  # Prefs after a code change: `name` became `full_name`
    full_name: str = ""
    bookings: list[Booking] = field(default_factory=list)
    allergies: set[str] = field(default_factory=set)
    budget: float | None = None
    tags: dict[str, int] = field(default_factory=dict)
    slot: tuple[int, int] = (19, 0)


class Profile(BaseModel):
    name: str
    visits: list[datetime] = []


@pytest.fixture
async def memory(clock: VirtualClock) -> SessionStore:
    return open_store("memory://", clock=clock)


async def test_typed_userdata_survives_a_worker_restart(
    shared_url: str, clock: VirtualClock, make_job: JobFactory
) -> None:
    store = open_store(shared_url, clock=clock)
    job = await make_job(store, initial_userdata=Prefs(), userdata=Prefs)
    await job.arrive("ana")
    prefs: Prefs = job.session.userdata
    prefs.name = "Ana Lía 🎧"
    prefs.bookings.append(Booking("Friday", 2, Seat.WINDOW))
    prefs.allergies |= {"nuts", "gluten"}
    prefs.budget = 80.5
    prefs.tags["birthday"] = 1
    prefs.slot = (20, 30)
    await job.leave("ana")  # saved on leave
    await job.close()
    await store.close()
    clock.advance(60)
    restarted = open_store(shared_url, clock=clock)  # a new worker: new store handle, controller, session
    try:
        again = await make_job(restarted, initial_userdata=Prefs(), userdata=Prefs)
        await again.arrive("ana")
        restored = again.session.userdata
        assert isinstance(restored, Prefs) and isinstance(restored.bookings[0], Booking)
        expected = Prefs(
            "Ana Lía 🎧", [Booking("Friday", 2, Seat.WINDOW)], {"nuts", "gluten"}, 80.5, {"birthday": 1}
        )
        assert restored == Prefs(**{**expected.__dict__, "slot": (20, 30)})
    finally:
        await restarted.close()


async def test_save_userdata_keeps_what_a_crash_would_lose(
    memory: SessionStore, clock: VirtualClock, make_job: JobFactory
) -> None:
    job = await make_job(memory, initial_userdata=Prefs(), userdata=Prefs)
    await job.arrive("bo")
    job.session.userdata.name = "Bo"
    assert await job.persistence.save_userdata() is True
    job.session.userdata.name = "changed after the save"
    clock.advance(120)  # the worker was SIGKILLed: no leave, no close; its presence goes stale
    again = await make_job(memory, initial_userdata=Prefs(), userdata=Prefs)
    await again.arrive("bo")
    assert again.session.userdata.name == "Bo"


async def test_a_renamed_field_is_logged_and_the_agent_starts_fresh(
    memory: SessionStore, clock: VirtualClock, make_job: JobFactory, caplog: pytest.LogCaptureFixture
) -> None:
    old = await make_job(memory, initial_userdata=Prefs(name="Secret Name"), userdata=Prefs)
    await old.arrive("cy")
    await old.leave("cy")
    clock.advance(10)
    new = await make_job(memory, initial_userdata=PrefsRenamed(), userdata=PrefsRenamed)  # after a deploy
    with caplog.at_level(logging.WARNING, logger="lkpersist.agent"):
        await new.arrive("cy")
    assert new.session.userdata == PrefsRenamed()
    assert new.said and new.decisions[0].returning  # greeted as usual
    assert (
        "stored userdata of 'cy' does not fit" in caplog.text and "name are not in the class" in caplog.text
    )
    assert "Secret Name" not in caplog.text
    await new.leave("cy")  # the fresh value replaces the unusable one
    assert (await memory.require("cy")).context[USERDATA_KEY]["data"]["full_name"] == ""


async def test_pydantic_userdata_round_trips_and_a_renamed_field_is_skipped(
    memory: SessionStore, clock: VirtualClock, make_job: JobFactory, caplog: pytest.LogCaptureFixture
) -> None:
    visit = datetime(2027, 1, 15, 12, 30)
    job = await make_job(memory, initial_userdata=Profile(name="Dee", visits=[visit]), userdata=Profile)
    await job.arrive("dee")
    await job.leave("dee")
    clock.advance(10)
    again = await make_job(memory, initial_userdata=Profile(name=""), userdata=Profile)
    await again.arrive("dee")
    assert again.session.userdata == Profile(name="Dee", visits=[visit])
    await again.leave("dee")
    stored = (await memory.require("dee")).context[USERDATA_KEY]
    await memory.update("dee", context={USERDATA_KEY: {**stored, "data": {"nick": "Dee"}}})
    clock.advance(10)
    third = await make_job(memory, initial_userdata=Profile(name="fresh"), userdata=Profile)
    with caplog.at_level(logging.WARNING, logger="lkpersist.agent"):
        await third.arrive("dee")
    assert third.session.userdata == Profile(name="fresh")
    assert "stored userdata of 'dee' does not fit" in caplog.text and "'Dee'" not in caplog.text


@dataclass
class WithDatetime:
    when: datetime


@dataclass
class WithAny:
    blob: Any


@dataclass
class WithBareList:
    items: list  # type: ignore[type-arg]


@dataclass
class WithAmbiguousUnion:
    value: str | Seat


@dataclass
class WithDerived:
    total: int = field(init=False, default=0)


@dataclass
class WithNestedBytes:
    bookings: list[dict[str, bytes]]


class Opaque:
    pass


class ProfileWithOpaque(BaseModel):
    model_config = {"arbitrary_types_allowed": True}
    thing: Opaque


@pytest.mark.parametrize(
    ("declared", "named"),
    [
        (WithDatetime, "WithDatetime.when"),
        (WithAny, "WithAny.blob"),
        (WithBareList, "WithBareList.items"),
        (WithAmbiguousUnion, "WithAmbiguousUnion.value"),
        (WithDerived, "WithDerived.total"),
        (WithNestedBytes, "WithNestedBytes.bookings[][]"),
        (ProfileWithOpaque, "ProfileWithOpaque.thing"),
        (dict, "dataclass or a pydantic model"),
    ],
)
def test_types_that_cannot_round_trip_are_refused_up_front(
    memory: SessionStore, declared: Any, named: str
) -> None:
    with pytest.raises(InvalidInputError, match=named.replace("[", r"\[").replace("]", r"\]")):
        SessionPersistence(memory, userdata=declared)


async def test_a_value_that_does_not_fit_is_an_error_at_attach(
    memory: SessionStore, make_job: JobFactory
) -> None:
    with pytest.raises(InvalidInputError, match=r"Prefs.budget: a str is none of float \| None"):
        await make_job(memory, initial_userdata=Prefs(budget="cheap"), userdata=Prefs)  # type: ignore


async def test_a_value_changed_to_the_wrong_type_is_logged_not_saved(
    memory: SessionStore, make_job: JobFactory, caplog: pytest.LogCaptureFixture
) -> None:
    job = await make_job(memory, initial_userdata=Prefs(), userdata=Prefs)
    await job.arrive("eve")
    job.session.userdata.tags = {"x": "not a number"}
    with caplog.at_level(logging.ERROR, logger="lkpersist.agent"):
        assert await job.persistence.save_userdata() is False
    assert "userdata of 'eve' not saved: userdata field Prefs.tags[]: expected int, got str" in caplog.text


async def test_without_a_declaration_nothing_is_kept(memory: SessionStore, make_job: JobFactory) -> None:
    job = await make_job(memory, initial_userdata=Prefs(name="x"))
    await job.arrive("fay")
    assert await job.persistence.save_userdata() is False
    await job.leave("fay")
    assert USERDATA_KEY not in (await memory.require("fay")).context


async def test_a_refresh_in_the_same_job_keeps_the_live_object(
    memory: SessionStore, clock: VirtualClock, make_job: JobFactory
) -> None:
    job = await make_job(memory, initial_userdata=Prefs(), userdata=Prefs)
    await job.arrive("gus")
    live = job.session.userdata
    live.name = "Gus"
    await job.leave("gus")  # saved
    clock.advance(2)
    await job.arrive("gus")  # the browser refreshed: same job, same AgentSession
    assert job.session.userdata is live  # tools holding it keep working


@dataclass
class Checked:
    level: int = 0

    def __post_init__(self) -> None:
        if self.level > 10:
            raise RuntimeError("levels stop at 10 now")


async def test_a_post_init_that_refuses_the_stored_value_is_skipped(
    memory: SessionStore, clock: VirtualClock, make_job: JobFactory, caplog: pytest.LogCaptureFixture
) -> None:
    await memory.connect("hal")
    stored = {"type": "x", "data": {"level": 42}}
    await memory.update("hal", context={USERDATA_KEY: stored})
    await memory.disconnect("hal")
    clock.advance(2)
    job = await make_job(memory, initial_userdata=Checked(), userdata=Checked)
    with caplog.at_level(logging.WARNING, logger="lkpersist.agent"):
        await job.arrive("hal")
    assert job.session.userdata == Checked() and job.said  # greeted; fresh userdata
    assert "levels stop at 10 now" in caplog.text
