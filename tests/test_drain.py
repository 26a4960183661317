"""Graceful drain: a real `elevtts serve` signalled while streams are open lets them finish, refuses
new sessions with 503 + Retry-After, answers /health 503 "draining", and exits 0."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import assert_speech, decode_mp3, run
from test_serve_cli import Served, _env, serving
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

BOS = {"text": " "}
EOS = {"text": ""}
FIRST = "The quick brown fox jumps over the lazy dog. "
SECOND = "Then the dog wakes up and chases the fox away. "
EXIT_S = 20.0  # a drained server must be gone within this once its streams end


def _get(url: str) -> tuple[int, dict[str, str], Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.load(error)


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.load(error)


async def _until_draining(server: Served) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        status, _, body = await asyncio.to_thread(_get, f"{server.http}/health")
        if status == 503:
            return {"status": status, "body": body}
        assert time.monotonic() < deadline, "the signalled server never started draining"
        await asyncio.sleep(0.05)


async def _read_all(ws: ClientConnection) -> tuple[list[dict[str, Any]], bytes]:
    import base64

    frames: list[dict[str, Any]] = []
    with pytest.raises(ConnectionClosed):
        while True:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
    audio = b"".join(base64.b64decode(f["audio"]) for f in frames if f.get("audio"))
    return frames, audio


def test_a_signalled_server_lets_open_streams_finish_and_refuses_new_ones(tmp_path: Path) -> None:
    with serving(tmp_path, "--voice", "espeak") as server:

        async def scenario() -> None:
            streams = [await connect(server.stream_url(), max_size=None) for _ in range(3)]
            for ws in streams:
                await ws.send(json.dumps(BOS))
                await ws.send(json.dumps({"text": FIRST}))
            readers = [asyncio.ensure_future(_read_all(ws)) for ws in streams]
            server.process.send_signal(signal.SIGTERM)

            health = await _until_draining(server)
            assert health["body"] == {"status": "draining"}
            with pytest.raises(InvalidStatus) as refused:
                await connect(server.stream_url())
            assert refused.value.response.status_code == 503
            assert refused.value.response.headers["Retry-After"] == "1"
            status, headers, body = await asyncio.to_thread(
                _post, f"{server.http}/v1/text-to-speech/espeak", {"text": "Hello."}
            )
            assert (status, headers["Retry-After"]) == (503, "1")
            assert body["detail"]["status"] == "server_draining"

            # The open streams go on untouched: more input, its synthesis, then isFinal.
            for ws in streams:
                await ws.send(json.dumps({"text": SECOND}))
                await ws.send(json.dumps(EOS))
            for ws, reader in zip(streams, readers, strict=True):
                frames, audio = await reader
                assert ws.close_code == 1000
                assert frames[-1] == {"isFinal": True}
                samples, rate = decode_mp3(audio)
                assert_speech(samples, rate, words=19)

        run(scenario())
        assert server.process.wait(timeout=EXIT_S) == 0
        stderr = server.stderr_path.read_text()
        assert "draining open_sessions=3" in stderr
        assert "stopped" in stderr and "Traceback" not in stderr


def test_at_the_drain_deadline_what_is_left_closes_with_1012(tmp_path: Path) -> None:
    with serving(tmp_path, "--voice", "espeak", "--drain-timeout", "1") as server:

        async def scenario() -> None:
            async with connect(server.stream_url(), max_size=None) as ws:
                await ws.send(json.dumps(BOS))
                await ws.send(json.dumps({"text": FIRST}))  # no end of input: it stays open
                reader = asyncio.ensure_future(_read_all(ws))
                server.process.send_signal(signal.SIGTERM)
                await _until_draining(server)
                frames, _ = await reader
                assert ws.close_code == 1012
                assert not any(f.get("isFinal") for f in frames)

        run(scenario())
        assert server.process.wait(timeout=EXIT_S) == 0
        assert "drain_deadline closing_sessions=1 close_code=1012" in server.stderr_path.read_text()


def test_a_second_signal_ends_the_drain_at_once(tmp_path: Path) -> None:
    with serving(tmp_path, "--voice", "espeak", "--drain-timeout", "600") as server:

        async def scenario() -> None:
            async with connect(server.stream_url(), max_size=None) as ws:
                await ws.send(json.dumps(BOS))
                reader = asyncio.ensure_future(_read_all(ws))
                server.process.send_signal(signal.SIGTERM)
                await _until_draining(server)
                server.process.send_signal(signal.SIGINT)
                await reader
                assert ws.close_code == 1012

        run(scenario())
        assert server.process.wait(timeout=EXIT_S) == 0


def test_a_server_without_open_sessions_stops_at_once(tmp_path: Path) -> None:
    with serving(tmp_path, "--voice", "espeak", "--drain-timeout", "600") as server:
        assert server.stop(signal.SIGTERM) == 0
        assert "draining open_sessions=0" in server.stderr_path.read_text()


# ---------------------------------------------------------------------------------------------
# The client across a rollout: a drain's deadline (1012) mid-stream, a restart on the same port


LONG_TEXT = " ".join(f"Sentence number {n} is spoken exactly once across the rollout." for n in range(30))


def _serve_on(port: int, workdir: Path, *args: str) -> subprocess.Popen[bytes]:
    """`elevtts serve` on `port` with the espeak voice, once `/health` says it is ready."""
    process = subprocess.Popen(
        [sys.executable, "-m", "elevtts", "serve", "--port", str(port), "--voice", "espeak", *args],
        cwd=workdir, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if _get(f"http://127.0.0.1:{port}/health")[0] == 200:
                return process
        time.sleep(0.05)
    process.kill()
    raise AssertionError("elevtts serve did not start")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_size(path: Path, size: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and path.stat().st_size > size:
            return
        time.sleep(0.01)
    raise AssertionError(f"{path} never passed {size} bytes")


def test_speak_resumes_a_stream_closed_by_a_drain_deadline_on_the_restarted_server(tmp_path: Path) -> None:
    port = _free_port()
    server = _serve_on(port, tmp_path, "--drain-timeout", "0")
    restarted = None
    try:
        speak = subprocess.Popen(
            [sys.executable, "-m", "elevtts", "speak", "--url", f"ws://127.0.0.1:{port}", "-v", "espeak",
             "--output-format", "pcm_16000", "--subtitles", "json", "--name", "long", "--json",
             "--retries", "6", LONG_TEXT],  # a restart on a loaded machine can take seconds
            cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        _wait_for_size(tmp_path / "output/long.pcm.part", 64_000, speak)  # 2 s in, much more to come
        server.send_signal(signal.SIGTERM)  # a rollout shorter than the stream: 1012, exit
        assert server.wait(timeout=EXIT_S) == 0
        restarted = _serve_on(port, tmp_path)
        stdout, stderr = speak.communicate(timeout=180)
    finally:
        for process in (server, restarted):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    assert speak.returncode == 0, stderr.decode()
    assert b"1012" in stderr and b"reconnecting" in stderr
    assert json.loads(stdout)["reconnects"] >= 1
    words = [w["text"] for w in json.loads((tmp_path / "output/long.words.json").read_text())["words"]]
    assert words == LONG_TEXT.split()  # every word, exactly once


def test_batch_does_not_restart_a_file_whose_stream_a_rollout_closed(tmp_path: Path) -> None:
    port = _free_port()
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    (src / "long.txt").write_text(LONG_TEXT + "\n")
    server = _serve_on(port, tmp_path, "--drain-timeout", "0")
    restarted = None
    try:
        batch = subprocess.Popen(
            [sys.executable, "-m", "elevtts", "batch", str(src), "--url", f"ws://127.0.0.1:{port}",
             "-v", "espeak", "--output-format", "pcm_16000", "--subtitles", "json", "-d", str(out), "--json",
             "--retries", "6"],
            cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        _wait_for_size(out / "long.pcm.part", 64_000, batch)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=EXIT_S) == 0
        restarted = _serve_on(port, tmp_path)
        stdout, stderr = batch.communicate(timeout=180)
    finally:
        for process in (server, restarted):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    assert batch.returncode == 0, stderr.decode()
    [file] = json.loads(stdout)["files"]
    assert file["status"] == "done" and file["attempts"] == 1  # resumed, not restarted
    words = [w["text"] for w in json.loads((out / "long.words.json").read_text())["words"]]
    assert words == LONG_TEXT.split()


def test_speak_refused_by_a_draining_server_retries_after_its_retry_after(tmp_path: Path) -> None:
    port = _free_port()
    server = _serve_on(port, tmp_path, "--drain-timeout", "600")
    restarted = None
    stderr_path = tmp_path / "speak.stderr"

    async def hold_a_session_while(step: Any) -> None:
        async with connect(f"ws://127.0.0.1:{port}/v1/text-to-speech/espeak/stream-input") as ws:
            await ws.send(json.dumps(BOS))
            server.send_signal(signal.SIGTERM)
            await asyncio.to_thread(step)
        # the last session ended: the drained server exits

    try:
        with stderr_path.open("wb") as stderr:
            speak = subprocess.Popen(
                [sys.executable, "-m", "elevtts", "speak", "--url", f"ws://127.0.0.1:{port}", "-v", "espeak",
                 "--output-format", "pcm_16000", "--name", "short", "Spoken once the new server is up."],
                cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=stderr,
            )  # fmt: skip

        def until_refused() -> None:
            deadline = time.monotonic() + 30
            while b"reconnecting" not in stderr_path.read_bytes():
                assert speak.poll() is None and time.monotonic() < deadline, stderr_path.read_text()
                time.sleep(0.02)

        run(hold_a_session_while(until_refused))
        assert server.wait(timeout=EXIT_S) == 0
        restarted = _serve_on(port, tmp_path)
        assert speak.wait(timeout=60) == 0, stderr_path.read_text()
    finally:
        for process in (server, restarted):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    text = stderr_path.read_text()
    assert "HTTP 503" in text and "to start" in text
    samples, _ = np.frombuffer((tmp_path / "output/short.pcm").read_bytes(), dtype="<i2"), 16000
    assert_speech(samples, 16000, words=6)
