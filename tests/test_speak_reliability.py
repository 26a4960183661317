"""`elevtts speak` under faults: a server restarted mid-stream, signals, and whom the key goes to
(issue 11 items 2 and 4, issue 10 item 20). Real `elevtts serve` and `speak` processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

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
