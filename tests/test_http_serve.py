"""`elevtts serve` configured from the environment alone (a container has no command line), and
the HTTP flags: `--voice-map`, `--cors-origin`, `--max-text-chars`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import typer.main
from conftest import assert_speech, decode_mp3
from test_serve_cli import _env, elevtts

from elevtts.cli.exit_codes import ExitCode
from elevtts.cli.serve import serve


def test_every_serve_flag_has_an_environment_variable() -> None:
    command = typer.main.get_command_from_info(
        typer.models.CommandInfo(callback=serve), pretty_exceptions_short=True, rich_markup_mode=None
    )
    missing = [p.name for p in command.params if p.name != "help" and not getattr(p, "envvar", None)]
    assert missing == []


def test_serve_from_the_environment_alone(tmp_path: Path) -> None:
    env = _env(
        ELEVTTS_PORT="0",
        ELEVTTS_SERVE_VOICE="espeak",
        ELEVTTS_VOICE_MAP="alloy=espeak",
        ELEVTTS_CORS_ORIGIN="http://page.test",
        ELEVTTS_MAX_TEXT_CHARS="40",
    )
    stdout = tmp_path / "stdout"
    with stdout.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "elevtts", "serve"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 30
        while b"\n" not in stdout.read_bytes():
            assert process.poll() is None and time.monotonic() < deadline, "no URL printed"
            time.sleep(0.02)
        http = stdout.read_text().splitlines()[0].replace("ws://", "http://")
        assert not http.endswith(":8765")  # ELEVTTS_PORT=0 picked a free port

        def speech(text: str) -> urllib.request.Request:
            body = {"model": "tts-1", "voice": "alloy", "input": text}
            return urllib.request.Request(
                f"{http}/v1/audio/speech",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json", "Origin": "http://page.test"},
            )

        with urllib.request.urlopen(speech("The quick brown fox."), timeout=30) as response:
            assert response.headers["Access-Control-Allow-Origin"] == "http://page.test"
            samples, rate = decode_mp3(response.read())
        assert_speech(samples, rate, words=4)  # alloy speaks with espeak, the only voice served
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(speech("x" * 41), timeout=30)  # over ELEVTTS_MAX_TEXT_CHARS
        with caught.value as refused:
            assert refused.code == 400 and json.load(refused)["error"]["param"] == "input"
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


@pytest.mark.parametrize("value", ["alloy", "alloy=nobody", "=espeak"])
def test_a_bad_voice_map_is_a_one_line_usage_error(tmp_path: Path, value: str) -> None:
    result = elevtts("serve", "--port", "0", "--voice", "espeak", "--voice-map", value, cwd=tmp_path)
    assert result.returncode == ExitCode.USAGE
    assert result.stderr.startswith("elevtts serve: --voice-map:") and result.stderr.count("\n") == 1
