"""The page in a real browser (headless Chromium) against a real ``lkpersist serve`` on a loopback port.

LiveKit is not running here: LIVEKIT_URL points at a closed loopback port (or, for the first-paint
test, at a port that accepts connections and never answers). So these tests cover everything up to
``room.connect()`` and what the page does when it fails; see the README for what is not covered.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lkpersist.model.session import Turn
from lkpersist.serve.handlers import LIVEKIT_CLIENT_VERSION
from lkpersist.stores import open_store
from tests.serve._browser import CHROMIUM_ARGS, chromium_executable, sync_playwright
from tests.serve._process import closed_port, serve_process
from tests.serve.conftest import verify

CREDENTIAL_KEY = "lkpersist.resume_token"
TIMEOUT_MS = 15_000


@dataclass
class Site:
    url: str
    store_url: str
    livekit_url: str


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_executable()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """``lkpersist serve`` with LiveKit on a closed loopback port."""
    store_url = f"sqlite:///{tmp_path_factory.mktemp('page') / 'sessions.db'}"
    livekit_url = f"ws://127.0.0.1:{closed_port()}"
    with serve_process(store_url, "--rate-limit", "off", livekit_url=livekit_url) as server:
        yield Site(server.url, store_url, livekit_url)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser profile (its own localStorage) and a page in it; page errors fail the test."""
    context = browser.new_context(permissions=["microphone"])
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert errors == []


def load(page: Any, url: str | None = None) -> dict[str, Any]:
    """Open ``url`` (or reload); the token endpoint's answer to this load."""
    with page.expect_response(lambda response: response.url.endswith("/api/token")) as token:
        page.goto(url) if url else page.reload()
    answer: dict[str, Any] = token.value.json()
    page.wait_for_function("id => window.lkpersist?.identity === id", arg=answer["participant_identity"])
    return answer


def credential(page: Any) -> str | None:
    value: str | None = page.evaluate("key => localStorage.getItem(key)", CREDENTIAL_KEY)
    return value


def seed(store_url: str, identity: str, turns: list[tuple[str, str]], start: float = 1_700_000_000.0) -> None:
    async def write() -> None:
        store = open_store(store_url)
        try:
            await store.connect(identity)
            for n, (role, text) in enumerate(turns):
                await store.append_turn(identity, Turn(role, text, start + 20 * n, item_id=f"seed-{n}"))
            await store.disconnect(identity)
        finally:
            await store.close()

    # Playwright's sync API keeps an event loop running in this thread: write from another one.
    writer = threading.Thread(target=asyncio.run, args=(write(),))
    writer.start()
    writer.join(timeout=30)


def test_first_load_creates_an_identity(page: Any, site: Site) -> None:
    answer = load(page, site.url)
    identity = answer["participant_identity"]
    assert verify(answer["participant_token"]).identity == identity
    shown = page.locator("#identity")
    assert shown.get_attribute("title") == identity
    assert shown.inner_text() == f"{identity[:8]}…{identity[-4:]}"
    assert credential(page) == answer["resume_token"]
    assert page.evaluate("LivekitClient.version") == LIVEKIT_CLIENT_VERSION


def test_a_reload_keeps_the_identity(page: Any, site: Site) -> None:
    first = load(page, site.url)
    with page.expect_request(lambda request: request.url.endswith("/api/token")) as sent:
        second = load(page)
    assert sent.value.post_data_json["resume_token"] == first["resume_token"]
    assert second["participant_identity"] == first["participant_identity"]
    assert verify(second["participant_token"]).identity == first["participant_identity"]
    assert second["room_name"] == first["room_name"]


def test_clearing_local_storage_gives_a_new_identity(page: Any, site: Site) -> None:
    first = load(page, site.url)
    page.evaluate("localStorage.clear()")
    second = load(page)
    assert second["participant_identity"] != first["participant_identity"]
    assert credential(page) == second["resume_token"]


def test_a_tampered_credential_gets_a_new_identity_and_none_of_the_old_history(page: Any, site: Site) -> None:
    first = load(page, site.url)
    seed(site.store_url, first["participant_identity"], [("user", "my account number is 1234")])
    good = first["resume_token"]
    tampered = good[:-1] + ("A" if good[-1] != "A" else "B")
    page.evaluate("([key, value]) => localStorage.setItem(key, value)", [CREDENTIAL_KEY, tampered])
    with page.expect_response(lambda response: "/api/history" in response.url) as history:
        second = load(page)
    assert history.value.status == 401
    assert second["participant_identity"] != first["participant_identity"]
    assert verify(second["participant_token"]).identity == second["participant_identity"]
    assert "1234" not in page.locator("main").inner_text()


def test_an_unreachable_livekit_is_said_plainly(page: Any, site: Site) -> None:
    load(page, site.url)
    page.wait_for_selector('#state[data-state="failed"]')
    notice = page.locator("#notice")
    assert notice.is_visible()
    assert notice.inner_text().startswith(f"LiveKit cannot be reached at {site.livekit_url}.")
    assert page.locator("#reconnect").is_visible() and page.locator("#mic").is_disabled()


def test_the_earlier_conversation_appears_after_a_reload(page: Any, site: Site) -> None:
    answer = load(page, site.url)
    assert page.locator("#earlier-block").is_hidden()
    turns = [("user", "Hi, I need help with my order."), ("assistant", "Of course. What is the order number?"),
             ("user", "<img src=x onerror=\"window.injected=1\"> 4417")]
    seed(site.store_url, answer["participant_identity"], turns)
    load(page)
    items = page.locator("#earlier li")
    items.nth(2).wait_for()
    assert [items.nth(n).locator(".text").inner_text() for n in range(3)] == [text for _, text in turns]
    assert [items.nth(n).locator(".who").inner_text() for n in range(3)] == ["You", "Agent", "You"]
    assert page.evaluate("window.injected") is None  # shown as text, never run
    assert page.locator("#empty").is_hidden()


def test_forget_me_clears_the_credential_and_starts_as_someone_new(page: Any, site: Site) -> None:
    first = load(page, site.url)
    with (page.expect_request(lambda request: request.url.endswith("/api/token")) as sent,
          page.expect_response(lambda response: response.url.endswith("/api/token")) as token):
        page.click("#forget")
    assert "resume_token" not in (sent.value.post_data_json or {})
    second = token.value.json()
    assert second["participant_identity"] != first["participant_identity"]
    # the page handles the response after Playwright sees it: wait for what it does, then check it
    page.wait_for_function("id => window.lkpersist.identity === id", arg=second["participant_identity"])
    page.wait_for_selector("#info:has-text('no longer remembers you')")
    assert credential(page) == second["resume_token"]


def test_the_forgotten_notice_survives_the_rooms_audio_events(page: Any, site: Site) -> None:
    load(page, site.url)
    with page.expect_response(lambda response: response.url.endswith("/api/token")):
        page.click("#forget")
    page.wait_for_selector("#info:has-text('no longer remembers you')")
    page.wait_for_selector('#state[data-state="failed"]')
    page.evaluate("lkpersist.room.emit(LivekitClient.RoomEvent.AudioPlaybackStatusChanged, true)")
    assert "no longer remembers you" in page.locator("#info").inner_text()  # not the audio sentence's to clear


def test_room_events_drive_the_connection_state(page: Any, site: Site) -> None:
    """The page's Room is livekit-client's own; its events (emitted here) are what LiveKit would cause."""
    load(page, site.url)
    page.wait_for_selector('#state[data-state="failed"]')
    state = page.locator("#state")
    page.evaluate("lkpersist.room.emit(LivekitClient.RoomEvent.ConnectionStateChanged, 'reconnecting')")
    assert (state.get_attribute("data-state"), state.inner_text()) == ("reconnecting", "Reconnecting…")
    page.evaluate("lkpersist.room.emit(LivekitClient.RoomEvent.ConnectionStateChanged, 'connected')")
    assert state.inner_text() == "Connected"
    page.evaluate("""lkpersist.room.emit(LivekitClient.RoomEvent.ParticipantAttributesChanged,
        {'lk.agent.state': 'thinking'}, {isAgent: true, attributes: {'lk.agent.state': 'thinking'}})""")
    assert page.locator("#agent-state").inner_text() == "· agent thinking"
    disconnected = "reason => lkpersist.room.emit(LivekitClient.RoomEvent.Disconnected, LivekitClient.DisconnectReason[reason])"
    page.evaluate(disconnected, "SERVER_SHUTDOWN")
    assert state.inner_text() == "Disconnected: the LiveKit server shut down"
    page.evaluate(disconnected, "DUPLICATE_IDENTITY")
    assert state.inner_text() == "Disconnected: you joined from another tab or device"
    assert page.locator("#reconnect").is_visible()


def test_transcription_streams_show_as_they_grow(page: Any, site: Site) -> None:
    """Readers shaped like livekit-client's TextStreamReader: deltas, then the final flag on the trailer."""
    load(page, site.url)
    page.evaluate("""async () => {
        const reader = (id, chunks, final) => ({
            info: { id, topic: 'lk.transcription', attributes: { 'lk.segment_id': id } },
            async *[Symbol.asyncIterator]() {
                for (const chunk of chunks) yield chunk;
                this.info.attributes['lk.transcription_final'] = final ? 'true' : 'false';
            },
        });
        const t = window.lkpersist.transcript;
        await t.readStream(reader('SG_user', ['Hello'], false), true);
        await t.readStream(reader('SG_user', ['Hello, who are you?'], true), true);  // a later update replaces
        await t.readStream(reader('SG_agent', ['I am ', 'your ', 'agent. <b>hi</b>'], true), false);
    }""")
    items = page.locator("#live li")
    assert items.count() == 2
    assert items.nth(0).inner_text().splitlines()[-1] == "Hello, who are you?"
    assert items.nth(1).locator(".text").inner_text() == "I am your agent. <b>hi</b>"
    assert items.nth(1).locator(".who").inner_text() == "Agent"
    assert page.locator("#live li.interim").count() == 0


class SilentServer:
    """Accepts TCP connections on loopback and never answers: what a wrong LIVEKIT_URL can look like."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        for held in self.held:
            held.close()
        self.sock.close()


def test_first_paint_does_not_wait_for_livekit_and_a_silent_server_times_out(
    page: Any, site: Site, tmp_path: Path
) -> None:
    silent = SilentServer()
    try:
        with serve_process(site.store_url, "--connect-timeout", "3s", "--rate-limit", "off",
                           livekit_url=f"ws://127.0.0.1:{silent.port}") as server:
            load(page, server.url)
            page.wait_for_selector('#state[data-state="connecting"]')
            painted = page.evaluate("performance.getEntriesByName('first-contentful-paint').length")
            assert painted == 1 and page.evaluate("lkpersist.room.state") == "connecting"
            assert page.locator("#identity").get_attribute("title") == page.evaluate("lkpersist.identity")
            page.wait_for_selector('#state[data-state="failed"]', timeout=10_000)
            assert page.locator("#notice").inner_text().startswith(
                f"LiveKit at ws://127.0.0.1:{silent.port} did not answer within 3 s.")
    finally:
        silent.close()


def test_the_page_names_its_device_and_keeps_it_across_reloads(page: Any, site: Site) -> None:
    """The ``lkpersist.device`` attribute lets the agent tell a device switch; it survives a reload, and
    "Forget me" (here: cleared storage) gives a new one, so a new person is not linked to the old."""
    def attributes_sent(reload: bool) -> dict[str, str]:
        with page.expect_request(lambda request: request.url.endswith("/api/token")) as sent:
            load(page) if reload else load(page, site.url)
        sent_attributes: dict[str, str] = sent.value.post_data_json["participant_attributes"]
        return sent_attributes

    first = attributes_sent(reload=False)
    device = first["lkpersist.device"]
    assert len(device) == 32 and int(device, 16) >= 0
    assert first["lkpersist.device_label"].startswith("Chrome on ")
    assert attributes_sent(reload=True)["lkpersist.device"] == device
    page.evaluate("localStorage.clear()")
    assert attributes_sent(reload=True)["lkpersist.device"] != device
