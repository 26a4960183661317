"""`elevtts speak` under faults: a server restarted mid-stream, signals, and whom the key goes to
(issue 11 items 2 and 4, issue 10 item 20). Real `elevtts serve` and `speak` processes."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from elevtts.cli.exit_codes import ExitCode

TEXT = " ".join(f"Sentence number {n} is spoken exactly once after the restart." for n in range(40))


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("ELEVENLABS", "ELEVTTS"))}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_serve(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """`elevtts serve` with the espeak voice, once it accepts connections."""
    process = subprocess.Popen(
        [sys.executable, "-m", "elevtts", "serve", "--port", str(port), "--voice", "espeak"],
        cwd=workdir,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError("elevtts serve did not start")


def wait_for(path: Path, size: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and path.stat().st_size > size:
            return
        time.sleep(0.01)
    raise AssertionError(f"{path} never passed {size} bytes")


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def speak_process(port: int, workdir: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "elevtts", "speak", "--url", f"ws://127.0.0.1:{port}", "-v", "espeak",
         "--output-format", "pcm_16000", "--subtitles", "json", "--name", "long", "--json", *args, TEXT],
        cwd=workdir, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def test_a_server_killed_mid_stream_and_back_within_a_second_is_waited_for(workdir: Path) -> None:
    port = free_port()
    server = start_serve(port, workdir)
    restarted = None
    try:
        speak = speak_process(port, workdir)
        wait_for(workdir / "output/long.pcm.part", 64_000, speak)  # 2 s of audio in, much more to come
        server.kill()
        server.wait()
        time.sleep(0.8)
        restarted = start_serve(port, workdir)
        stdout, stderr = speak.communicate(timeout=180)
    finally:
        for process in (server, restarted):
            if process is not None:
                process.kill()
                process.wait()
    assert speak.returncode == 0, stderr.decode()
    assert b"reconnecting" in stderr
    assert json.loads(stdout)["reconnects"] >= 1
    words = [w["text"] for w in json.loads((workdir / "output/long.words.json").read_text())["words"]]
    assert words == TEXT.split()  # every word, once


def test_a_drop_that_cannot_be_resumed_is_exit_8_after_the_retries(workdir: Path) -> None:
    port = free_port()
    server = start_serve(port, workdir)
    try:
        speak = speak_process(port, workdir, "--retries", "2")
        wait_for(workdir / "output/long.pcm.part", 64_000, speak)
        server.kill()
        server.wait()
        _, stderr = speak.communicate(timeout=180)
    finally:
        server.kill()
        server.wait()
    message = stderr.decode()
    assert speak.returncode == ExitCode.DROPPED, message
    assert "gave up after 2 reconnection attempts" in message and "long.pcm.part" in message
    assert message.count("attempt ") == 2  # one note per attempt, then the error
    assert "Traceback" not in message


def test_sigterm_is_a_clean_interrupt_that_keeps_the_part(workdir: Path) -> None:
    port = free_port()
    server = start_serve(port, workdir)
    try:
        speak = speak_process(port, workdir)
        wait_for(workdir / "output/long.pcm.part", 16_000, speak)
        speak.send_signal(signal.SIGTERM)
        _, stderr = speak.communicate(timeout=60)
    finally:
        server.kill()
        server.wait()
    message = stderr.decode()
    assert speak.returncode == ExitCode.INTERRUPTED, message
    assert "interrupted" in message and "output/long.pcm.part" in message and "kept" in message
    assert "Traceback" not in message
    assert (workdir / "output/long.pcm.part").stat().st_size > 16_000


# -- issue 11 item 4: a .env file cannot take the key elsewhere ----------------------------------------


class HeaderRecorder:
    """A server that records each handshake's headers and speaks one silent frame per stream."""

    def __init__(self) -> None:
        self.keys: list[str | None] = []

    async def handle(self, ws: Any) -> None:
        self.keys.append(ws.request.headers.get("xi-api-key"))
        async for raw in ws:
            if json.loads(raw).get("text") == "":
                audio = base64.b64encode(b"\xff\xf3\x14\xc4" + b"\x00" * 100).decode()
                alignment = {"chars": ["a"], "charStartTimesMs": [0], "charDurationsMs": [10]}
                await ws.send(json.dumps({"audio": audio, "alignment": alignment}))
                await ws.send(json.dumps({"isFinal": True}))
                await ws.close()
                return


@pytest.fixture
def recorder() -> Iterator[tuple[HeaderRecorder, str]]:
    from conftest import ServerThread
    from websockets.asyncio.server import serve

    server = HeaderRecorder()

    async def factory() -> tuple[Any, str]:
        ws_server = await serve(server.handle, "127.0.0.1", 0)
        return ws_server, f"ws://127.0.0.1:{next(iter(ws_server.sockets)).getsockname()[1]}"

    thread = ServerThread(factory)
    url = thread.start()
    yield server, url
    thread.stop()


KEY = "sk-user-key-from-the-environment-0123456789"


@pytest.mark.parametrize(
    ("dotenv", "environment", "flags", "sent"),
    [
        ("ELEVTTS_URL={url}\n", {"ELEVENLABS_API_KEY": KEY}, [], None),  # the attack: key withheld
        ("ELEVTTS_URL={url}\n", {}, ["--api-key", KEY], None),
        ("ELEVTTS_URL={url}\nELEVENLABS_API_KEY=" + KEY + "\n", {}, [], KEY),  # the .env's own key
        ("", {"ELEVTTS_URL": "{url}", "ELEVENLABS_API_KEY": KEY}, [], KEY),  # all from the environment
        ("", {"ELEVENLABS_API_KEY": KEY}, ["--url", "{url}"], KEY),
        ("ELEVTTS_URL=ws://127.0.0.1:9\n", {"ELEVENLABS_API_KEY": KEY}, ["--url", "{url}"], KEY),
    ],
    ids=[
        "env-key-dotenv-url",
        "flag-key-dotenv-url",
        "dotenv-both",
        "env-both",
        "flag-url",
        "flag-over-dotenv",
    ],
)
def test_a_key_never_goes_to_a_url_only_a_dotenv_named(
    recorder: tuple[HeaderRecorder, str],
    tmp_path: Path,
    dotenv: str,
    environment: dict[str, str],
    flags: list[str],
    sent: str | None,
) -> None:
    server, url = recorder
    (tmp_path / ".env").write_text(dotenv.format(url=url))
    env = {**clean_env(), **{k: v.format(url=url) for k, v in environment.items()}}
    done = subprocess.run(
        [sys.executable, "-m", "elevtts", "speak", *(f.format(url=url) for f in flags), "-q", "Hi."],
        cwd=tmp_path, env=env, capture_output=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert server.keys == [sent]
    assert (b"not sending the API key" in done.stderr) == (sent is None)
    assert KEY.encode() not in done.stderr


def test_batch_keeps_the_key_from_a_url_only_a_dotenv_named(
    recorder: tuple[HeaderRecorder, str], tmp_path: Path
) -> None:
    server, url = recorder
    (tmp_path / ".env").write_text(f"ELEVTTS_URL={url}\n")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("One file.")
    env = {**clean_env(), "ELEVENLABS_API_KEY": KEY}
    done = subprocess.run(
        [sys.executable, "-m", "elevtts", "batch", "in", "-q"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert server.keys == [None]
    assert b"not sending the API key" in done.stderr
