"""Security: the server key in every documented position (and refused everywhere it is wrong),
and no key in any output of `speak`: stdout, stderr, `--json`, the stats sidecar, the files.

Every server is real (loopback, port 0); `speak` runs as a real subprocess.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from conftest import Exchange, exchange, run, run_local_server

# The one place this suite names the server's module (it may move to elevtts.server.transport).
from elevtts.server.app import ServerConfig

REPO = Path(__file__).resolve().parents[1]
KEY = "sk_3f9c2a7be41d08c6f5a9e2b7d4c1a0f8e6b3d9c2a7f5e1b0"  # 51 characters, like a real key
WRONG = "sk_000000000000000000000000000000000000000000000000"
BOS = {"text": " "}
EOS = {"text": ""}


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without elevtts/ElevenLabs settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ELEVTTS_", "ELEVENLABS_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env | extra


def stream_url(base: str, voice: str = "espeak", **query: str) -> str:
    return f"{base}/v1/text-to-speech/{voice}/stream-input" + (f"?{urlencode(query)}" if query else "")


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    log_dir: Path

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=10)

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.log_dir.iterdir()))


@contextlib.contextmanager
def serving(tmp_path: Path, *args: str) -> Iterator[Served]:
    """`elevtts serve --port 0 ARGS` until the block ends; its output goes to files."""
    log_dir = Path(tempfile.mkdtemp(dir=tmp_path, prefix="serve-"))
    with (log_dir / "stdout").open("wb") as stdout, (log_dir / "stderr").open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "elevtts", "serve", "--port", "0", *args],
            cwd=tmp_path,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 30
        while b"\n" not in (log_dir / "stdout").read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"elevtts serve printed no URL: {(log_dir / 'stderr').read_text()}")
            time.sleep(0.02)
        yield Served(process, (log_dir / "stdout").read_text().splitlines()[0], log_dir)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def pieces(text: str, secret: str = KEY, *, size: int = 6) -> list[str]:
    """Every run of `size` characters of `secret` that `text` shows."""
    return [secret[i : i + size] for i in range(len(secret) - size + 1) if secret[i : i + size] in text]


@pytest.fixture(scope="module")
def keyed(request: pytest.FixtureRequest) -> Iterator[str]:
    thread, url = run_local_server(ServerConfig(port=0, api_key=KEY, voices=("espeak",)))
    yield url
    thread.stop()


def positions(key: str) -> dict[str, tuple[dict[str, str], dict[str, str], dict[str, Any]]]:
    """Every documented place for the key: name -> (query, headers, opener)."""
    return {
        "header xi-api-key": ({}, {"xi-api-key": key}, BOS),
        "header xi-api-key, leading space": ({}, {"xi-api-key": " " + key}, BOS),
        "header Authorization: Bearer": ({}, {"Authorization": f"Bearer {key}"}, BOS),
        "query authorization": ({"authorization": key}, {}, BOS),
        "query authorization, Bearer": ({"authorization": f"Bearer {key}"}, {}, BOS),
        "message xi_api_key": ({}, {}, {**BOS, "xi_api_key": key}),
        "message xi-api-key": ({}, {}, {**BOS, "xi-api-key": key}),
        "message authorization": ({}, {}, {**BOS, "authorization": f"Bearer {key}"}),
    }


def talk(url: str, query: dict[str, str], headers: dict[str, str], opener: dict[str, Any]) -> Exchange:
    return run(exchange(stream_url(url, **query), [opener, {"text": "Let me in. "}, EOS], headers=headers))


@pytest.mark.parametrize("position", positions(KEY))
def test_the_key_is_accepted_in_every_documented_position(keyed: str, position: str) -> None:
    query, headers, opener = positions(KEY)[position]
    result = run(
        exchange(stream_url(keyed, **query), [opener, {"text": "Let me in. "}, EOS], headers=headers)
    )
    assert result.close_code == 1000, result.frames
    assert result.audio_frames and result.finals


WRONG_KEYS = {
    "another key": WRONG,
    "one character short": KEY[:-1],
    "one character more": KEY + "0",
    "other case": KEY.upper(),
    "empty": "",
}


@pytest.mark.parametrize("position", positions(KEY))
@pytest.mark.parametrize("wrong", WRONG_KEYS)
def test_a_wrong_key_is_refused_in_every_position(keyed: str, position: str, wrong: str) -> None:
    query, headers, opener = positions(WRONG_KEYS[wrong])[position]
    try:
        result = run(
            exchange(stream_url(keyed, **query), [opener, {"text": "Let me in. "}, EOS], headers=headers)
        )
    except Exception as exc:  # a refused handshake is a refusal too: it must say so
        assert "401" in str(exc) or "403" in str(exc), exc
        return
    assert result.close_code == 1008, (position, result.frames)
    assert [f["error"] for f in result.errors] == ["invalid_api_key"]
    assert not result.audio_frames
    echoed = json.dumps(result.frames) + result.close_reason
    assert not pieces(echoed, WRONG_KEYS[wrong]) and not pieces(echoed)  # never echoes a key


def test_no_key_at_all_is_refused(keyed: str) -> None:
    result = run(exchange(stream_url(keyed), [BOS, {"text": "Let me in. "}, EOS]))
    assert result.close_code == 1008 and [f["error"] for f in result.errors] == ["invalid_api_key"]


# ---------------------------------------------------------------------------------------------
# No key in any output of speak

SPEAK_AT_DEBUG = """
import logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
from elevtts.cli import app
app(sys.argv[1:], prog_name="elevtts")
"""


SPEAK_FILES = [
    "--voice",
    "espeak",
    "--name",
    "spoken",
    "--subtitles",
    "srt,vtt,json",
    "--keep-chunks",
    "--json",
]


@pytest.mark.parametrize("level", ["default", "debug"])
@pytest.mark.parametrize("key", ["right", "wrong"])
def test_speak_puts_no_piece_of_the_key_in_any_output(
    tmp_path: Path, keyed: str, level: str, key: str
) -> None:
    secret = KEY if key == "right" else WRONG
    python = [sys.executable, *(["-m", "elevtts"] if level == "default" else ["-c", SPEAK_AT_DEBUG])]
    out = tmp_path / "out"
    result = subprocess.run(
        [*python, "speak", "--url", keyed, *SPEAK_FILES, "-d", str(out), "No secrets in here."],
        cwd=tmp_path,
        env=clean_env(ELEVENLABS_API_KEY=secret),
        capture_output=True,
        text=True,
        timeout=60,
    )
    files = {p.name: p.read_bytes().decode("utf-8", "replace") for p in out.rglob("*") if p.is_file()}
    if key == "right":
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["ok"] is True
        assert {"spoken.mp3", "spoken.srt", "spoken.vtt", "spoken.json"} <= set(files), files
        assert len(files) > 5  # the stats sidecar and the chunk files too
    else:
        assert result.returncode == 6, result.stderr  # ExitCode.AUTH
        assert "invalid_api_key" in result.stderr or "API key" in result.stderr
    if level == "debug":
        assert "xi-api-key: ***" in result.stderr  # websockets logged the header, hidden
    everything = result.stdout + result.stderr + "".join(files.values())
    assert pieces(everything, secret) == []


# ---------------------------------------------------------------------------------------------
# A hostile pronunciation dictionary given to `serve` (every encoding: tests/test_dictionary.py)


@pytest.mark.parametrize("encoding", ["UTF-8", "UTF-16BE", "UTF-16"])
def test_serve_refuses_a_billion_laughs_dictionary_with_one_line(tmp_path: Path, encoding: str) -> None:
    bomb = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n'
        '<!DOCTYPE lexicon [<!ENTITY a "haha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n'
        '<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon">'
        "<lexeme><grapheme>x</grapheme><alias>&b;</alias></lexeme></lexicon>"
    )
    (tmp_path / "bomb.pls").write_bytes(bomb.encode(encoding))
    result = subprocess.run(
        [sys.executable, "-m", "elevtts", "serve", "--port", "0", "--dictionary", "bomb.pls"],
        cwd=tmp_path,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3, result.stderr  # ExitCode.INPUT
    assert result.stderr.strip().splitlines() == [
        "elevtts serve: bomb.pls: bomb: DOCTYPE and ENTITY declarations are not allowed in a lexicon"
    ]
    assert result.stdout == ""  # never started, so no URL
