"""The real ``lkpersist serve`` process: it announces itself, serves, and stops cleanly on SIGTERM/Ctrl-C.

``--demo`` runs the bundled agent worker beside it; the worker is registered under the agent name the
tokens dispatch and shares the store. (No LiveKit server exists here: the worker keeps trying to reach
the closed LIVEKIT_URL port, which is enough to see that it runs and how it is configured.)
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from lkpersist.crypto.config import codec_from_env
from lkpersist.crypto.keys import generate_key
from lkpersist.model.session import Turn
from lkpersist.stores import open_store
from tests.serve._process import serve_process
from tests.serve.conftest import verify


def post_token(url: str, body: dict[str, object] | None = None) -> dict[str, object]:
    request = urllib.request.Request(f"{url}/api/token", data=json.dumps(body or {}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, object] = json.loads(response.read())
    return answer


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_server_promptly_with_exit_0(tmp_path: Path, sig: signal.Signals) -> None:
    with serve_process(f"sqlite:///{tmp_path / 's.db'}") as server:
        assert isinstance(post_token(server.url)["participant_identity"], str)
        started = time.monotonic()
        server.proc.send_signal(sig)
        assert server.proc.wait(timeout=10) == 0, server.output
        assert time.monotonic() - started < 5.0
    assert "Traceback" not in server.output


def test_the_access_log_goes_to_stderr_without_credentials(tmp_path: Path) -> None:
    with serve_process(f"sqlite:///{tmp_path / 's.db'}") as server:
        answer = post_token(server.url)
        server.wait_for(r'"POST /api/token" 200')
    for secret in (answer["participant_token"], answer["resume_token"]):
        assert str(secret) not in server.output


def test_history_reads_an_encrypted_store_with_the_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text(generate_key() + "\n")
    store_url = f"sqlite:///{tmp_path / 'encrypted.db'}"
    with serve_process(store_url, global_args=("--key-file", str(key_file))) as server:
        answer = post_token(server.url)
        identity = str(answer["participant_identity"])

        async def write() -> None:
            store = open_store(store_url, codec=codec_from_env({}, key_file=key_file))
            await store.connect(identity)
            await store.append_turn(identity, Turn("user", "encrypted at rest", 1_700_000_000.0, "i1"))
            await store.close()

        asyncio.run(write())
        request = urllib.request.Request(f"{server.url}/api/history",
                                         headers={"Authorization": f"Bearer {answer['resume_token']}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["turns"][0]["text"] == "encrypted at rest"


def test_no_access_log(tmp_path: Path) -> None:
    with serve_process(f"sqlite:///{tmp_path / 's.db'}", "--no-access-log") as server:
        post_token(server.url)
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=10) == 0
    assert "/api/token" not in server.output


def test_demo_runs_the_bundled_worker_under_the_dispatched_agent_name(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'demo.db'}"
    key_file = tmp_path / "keys"
    key_file.write_text(generate_key() + "\n")
    with serve_process(store_url, "--demo", global_args=("--key-file", str(key_file))) as server:
        pid = int(server.wait_for(r"agent worker 'lkpersist-demo' started \(pid (\d+)\)").group(1))
        environ = dict(item.split("=", 1) for item in
                       Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item)
        assert environ["LKPERSIST_AGENT_NAME"] == "lkpersist-demo"
        assert environ["LKPERSIST_STORE"] == store_url
        assert environ["LKPERSIST_ENCRYPTION_KEY_FILE"] == str(key_file)
        assert Path(f"/proc/{pid}/cmdline").read_text().split("\0")[-3:-1] == ["run", "dev"]
        claims = verify(str(post_token(server.url)["participant_token"]))
        assert claims.room_config is not None
        assert [agent.agent_name for agent in claims.room_config.agents] == ["lkpersist-demo"]
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0, server.output
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_demo_stops_when_its_worker_dies(tmp_path: Path) -> None:
    with serve_process(f"sqlite:///{tmp_path / 'demo.db'}", "--demo") as server:
        pid = int(server.wait_for(r"agent worker 'lkpersist-demo' started \(pid (\d+)\)").group(1))
        os.kill(pid, signal.SIGKILL)
        server.wait_for(r"the agent worker exited with code -9; stopping", timeout=30)
        assert server.proc.wait(timeout=20) == 1
