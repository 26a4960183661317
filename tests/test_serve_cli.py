"""`elevtts serve` and `elevtts voices` as real subprocesses: URL on stdout, signals, errors, exit codes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from conftest import assert_speech, decode_mp3, exchange, run

from elevtts.cli.exit_codes import ExitCode

REPO = Path(__file__).resolve().parents[1]
BOS = {"text": " "}
EOS = {"text": ""}
SENTENCE = "The quick brown fox jumps over the lazy dog. "
KEY = "sk-local-7f3a9c2e51"
WRONG_KEY = "sk-wrong-0b8d4e6a22"
STOP_S = 5.0  # a signalled server must be gone within this


def _env(**extra: str) -> dict[str, str]:
    """This process's environment without settings meant for elevtts, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ELEVTTS_", "ELEVENLABS_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env | extra


def elevtts(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `elevtts ARGS` to its end (for commands that exit by themselves)."""
    return subprocess.run(
        [sys.executable, "-m", "elevtts", *args],
        cwd=cwd,  # no .env from the repository is picked up
        env=env or _env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    stdout_path: Path
    stderr_path: Path

    @property
    def http(self) -> str:
        return "http" + self.url.removeprefix("ws")

    def stream_url(self, voice: str = "espeak", **query: str) -> str:
        return f"{self.url}/v1/text-to-speech/{voice}/stream-input" + (
            f"?{urlencode(query)}" if query else ""
        )

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=STOP_S)

    def logs(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")


@contextlib.contextmanager
def serving(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    """`elevtts serve --port 0 ARGS` until the block ends; output goes to files, so no pipe can fill."""
    logs = Path(tempfile.mkdtemp(dir=tmp_path, prefix="serve-"))
    stdout_path, stderr_path = logs / "stdout", logs / "stderr"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "elevtts", "serve", "--port", "0", *args],
            cwd=tmp_path,
            env=env or _env(),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 30
        while b"\n" not in stdout_path.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"elevtts serve printed no URL (exit {process.poll()}): {stderr_path.read_text()}"
                )
            time.sleep(0.02)
        url = stdout_path.read_text().splitlines()[0]
        yield Served(process, url, stdout_path, stderr_path)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


# ---------------------------------------------------------------------------------------------
# Serving and stopping


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_prints_its_url_speaks_lists_voices_and_stops_on_signal(
    tmp_path: Path, sig: signal.Signals
) -> None:
    with serving(tmp_path, "--voice", "espeak") as server:
        assert server.url.startswith("ws://127.0.0.1:") and urlsplit(server.url).port

        result = run(exchange(server.stream_url(), [BOS, {"text": SENTENCE}, EOS], timeout=20))
        assert result.close_code == 1000 and result.frames[-1] == {"isFinal": True}
        samples, rate = decode_mp3(result.audio())
        assert_speech(samples, rate, words=9)

        with urllib.request.urlopen(f"{server.http}/v1/voices", timeout=10) as response:
            assert response.status == 200
            voices = json.load(response)["voices"]
        assert [v["voice_id"] for v in voices] == ["espeak"]

        assert server.stop(sig) == 0
        stderr = server.stderr_path.read_text()
        assert "stopped" in stderr
        assert "Traceback" not in stderr


def test_serve_over_tls_with_certfile_and_keyfile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_sdk import self_signed_cert  # skips when there is no way to make a certificate

    cert, key = self_signed_cert(tmp_path)
    with serving(tmp_path, "--voice", "espeak", "--certfile", str(cert), "--keyfile", str(key)) as server:
        assert server.url.startswith("wss://127.0.0.1:")
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client's default context trusts it
        result = run(exchange(server.stream_url(), [BOS, {"text": "Hello there. "}, EOS], timeout=20))
        assert result.close_code == 1000 and result.audio()
        assert server.stop() == 0


# ---------------------------------------------------------------------------------------------
# API key


def test_api_key_from_the_environment_is_enforced_and_never_logged(tmp_path: Path) -> None:
    env = _env(ELEVTTS_SERVER_API_KEY=KEY)
    with serving(tmp_path, "--voice", "espeak", "--log-level", "debug", env=env) as server:
        url = server.stream_url()
        speak = [{"text": "Hi. "}, EOS]

        refused = [
            run(exchange(url, [BOS, *speak])),  # no key at all
            run(exchange(url, [BOS, *speak], headers={"xi-api-key": WRONG_KEY})),
            run(exchange(url, [{"text": " ", "xi_api_key": WRONG_KEY}, *speak])),
            run(exchange(server.stream_url(authorization=WRONG_KEY), [BOS, *speak])),
        ]
        for result in refused:
            assert result.close_code == 1008
            assert [e["error"] for e in result.errors] == ["invalid_api_key"]
            assert not result.audio_frames

        accepted = [
            run(exchange(url, [BOS, *speak], headers={"xi-api-key": KEY})),
            run(exchange(url, [BOS, *speak], headers={"Authorization": f"Bearer {KEY}"})),
            run(exchange(url, [{"text": " ", "xi_api_key": KEY}, *speak])),
            run(exchange(server.stream_url(authorization=KEY), [BOS, *speak])),
        ]
        for result in accepted:
            assert result.close_code == 1000 and result.audio() and not result.errors

        assert server.stop() == 0
        logs = server.logs()
    assert "DEBUG websockets" in logs  # debug logging was on: headers and frames were logged
    assert KEY not in logs
    assert WRONG_KEY not in logs


# ---------------------------------------------------------------------------------------------
# Refusing to start


def test_unknown_voice_exits_2_naming_the_listing(tmp_path: Path) -> None:
    result = elevtts("serve", "--port", "0", "--voice", "nobody", cwd=tmp_path)
    assert result.returncode == ExitCode.USAGE == 2
    assert "nobody" in result.stderr
    assert "elevtts voices" in result.stderr  # not 140+ ids
    assert result.stdout == ""


def test_certfile_without_keyfile_exits_2(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not used\n")
    result = elevtts("serve", "--port", "0", "--certfile", str(cert), cwd=tmp_path)
    assert result.returncode == 2
    assert "--keyfile" in result.stderr


def test_bad_certificate_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
    key.write_text("not a key either\n")
    result = elevtts("serve", "--port", "0", "--certfile", str(cert), "--keyfile", str(key), cwd=tmp_path)
    assert result.returncode == 2
    assert "cannot load the certificate" in result.stderr and str(cert) in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_port_in_use_exits_5_with_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = elevtts("serve", "--port", str(port), "--voice", "espeak", cwd=tmp_path)
    assert result.returncode == ExitCode.CONNECT == 5
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "address already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


# ---------------------------------------------------------------------------------------------
# Pronunciation dictionaries

PLS = """<?xml version="1.0" encoding="UTF-8"?>
<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon"
         alphabet="ipa" xml:lang="en-US">
  <lexeme><grapheme>SQL</grapheme><alias>sequel</alias></lexeme>
</lexicon>
"""


def _chars(frames: list[dict], key: str) -> str:
    return "".join("".join(f[key]["chars"]) for f in frames if f.get(key))


def test_dictionary_file_is_announced_and_applied_by_its_locator(tmp_path: Path) -> None:
    pls = tmp_path / "tech.pls"
    pls.write_text(PLS, encoding="utf-8")
    version = hashlib.sha256(pls.read_bytes()).hexdigest()[:12]
    with serving(tmp_path, "--voice", "espeak", "--dictionary", str(pls)) as server:
        assert f"--pronunciation-dictionary tech:{version}" in server.stderr_path.read_text()

        locator = {"pronunciation_dictionary_id": "tech", "version_id": version}
        opener = {"text": " ", "pronunciation_dictionary_locators": [locator]}
        result = run(exchange(server.stream_url(), [opener, {"text": "I like SQL a lot. "}, EOS], timeout=20))
        assert result.close_code == 1000 and not result.errors
        assert "sequel" in _chars(result.frames, "normalizedAlignment")
        assert "SQL" not in _chars(result.frames, "normalizedAlignment")
        assert "SQL" in _chars(result.frames, "alignment")
        assert "sequel" not in _chars(result.frames, "alignment")

        unknown = {
            "text": " ",
            "pronunciation_dictionary_locators": [{"pronunciation_dictionary_id": "nope"}],
        }
        refused = run(exchange(server.stream_url(), [unknown, {"text": "SQL. "}, EOS]))
        assert refused.close_code == 1008
        assert [e["error"] for e in refused.errors] == ["pronunciation_dictionary_not_found"]
        assert "nope" in refused.errors[0]["message"]
        assert not refused.audio_frames

        assert server.stop() == 0


# ---------------------------------------------------------------------------------------------
# elevtts voices


def test_voices_lists_joe_espeak_and_the_espeak_languages(tmp_path: Path) -> None:
    result = elevtts("voices", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["VOICE_ID", "LANGUAGE", "ENGINE", "NAME"]
    ids = [line[2:].split()[0] for line in lines[1:]]
    assert ids[:2] == ["joe", "espeak"] and "espeak-de" in ids and len(ids) > 100


def test_voices_json_lists_joe_espeak_and_the_espeak_languages(tmp_path: Path) -> None:
    result = elevtts("voices", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    voices = json.loads(result.stdout)["voices"]
    assert {"espeak", "joe", "espeak-de", "espeak-fr"} <= {v["voice_id"] for v in voices}
    assert all(v["sample_rate"] > 0 and v["name"] for v in voices)
    assert all(v["labels"]["language"] and v["labels"]["engine"] for v in voices)


def test_fallback_voice_must_be_served(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "elevtts",
            "serve",
            "--port",
            "0",
            "--voice",
            "espeak",
            "--fallback-voice",
            "joe",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 2 and "--fallback-voice joe is not among the served voices" in done.stderr
