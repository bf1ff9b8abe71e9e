"""The README's screenshots of the page: ``python -m tests.serve.screenshots`` writes docs/serve-*.png.

Both show real states of a real ``lkpersist serve`` in headless Chromium, with no LiveKit server (none
exists here): the earlier conversation restored after a refresh while LiveKit is unreachable, and the
page painted and "Connecting…" while a silent server keeps LiveKit from answering.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tests.serve._browser import CHROMIUM_ARGS, chromium_executable, sync_playwright
from tests.serve._process import closed_port, serve_process
from tests.serve.test_page import SilentServer, load, seed

DOCS = Path(__file__).resolve().parents[2] / "docs"
CONVERSATION = [
    ("assistant", "Hello! I'm your support assistant. How can I help?"),
    ("user", "My order 4417 hasn't arrived yet."),
    ("assistant", "Sorry about that. I see order 4417 left the warehouse on Monday; it should arrive tomorrow."),
    ("user", "Great, can you send me the tracking link?"),
]


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        store_url = f"sqlite:///{Path(tmp) / 'sessions.db'}"
        browser = playwright.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 760, "height": 640}, device_scale_factor=1).new_page()
        with serve_process(store_url, livekit_url=f"ws://127.0.0.1:{closed_port()}") as server:
            answer = load(page, server.url)
            seed(store_url, answer["participant_identity"], CONVERSATION, start=time.time() - 600)
            load(page)
            page.wait_for_selector('#state[data-state="failed"]')
            page.locator("#earlier li").nth(len(CONVERSATION) - 1).wait_for()
            page.screenshot(path=str(DOCS / "serve-restored.png"), full_page=True)
        silent = SilentServer()
        try:
            with serve_process(store_url, "--connect-timeout", "30s",
                               livekit_url=f"ws://127.0.0.1:{silent.port}") as server:
                load(page, server.url)
                page.wait_for_selector('#state[data-state="connecting"]')
                page.screenshot(path=str(DOCS / "serve-connecting.png"), full_page=True)
        finally:
            silent.close()
        browser.close()
    print(f"wrote {DOCS / 'serve-restored.png'} and {DOCS / 'serve-connecting.png'}")


if __name__ == "__main__":
    main()
