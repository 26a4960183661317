"""No input a user can type ends in a traceback: a table of bad values, each with its message and exit code.

Every bad value is refused before anything connects: the URL points at a port nobody listens on,
so a value checked only after connecting would show up as exit 5 instead of 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from elevtts.cli import app
from elevtts.cli.exit_codes import ExitCode

REPO = Path(__file__).resolve().parents[1]
NOBODY = "ws://127.0.0.1:9"  # the discard port: nothing answers a WebSocket there


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("ELEVTTS_", "ELEVENLABS_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _invoke(*args: str) -> tuple[int, str]:
    # catch_exceptions=False: a traceback fails the test instead of turning into exit 1
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stderr


def _assert_one_line_error(stderr: str, *, expect: str) -> None:
    assert "Traceback" not in stderr
    if "Usage:" in stderr:  # Typer's own usage error box names the option
        assert expect.lower() in stderr.lower(), stderr
        return
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("elevtts: error: ")]
    assert len(errors) == 1, stderr
    assert expect.lower() in errors[0].lower(), stderr


SHARED_BAD_VALUES = [
    # (arguments, exit code, a word the message must hold)
    (["--output-format", "wav_44100"], ExitCode.USAGE, "wav_44100"),
    (["--output-format", "pcm"], ExitCode.USAGE, "output_format"),
    (["--output-format", ""], ExitCode.USAGE, "output_format"),
    (["--output-format", "foo_1"], ExitCode.USAGE, "foo_1"),
    (["--output-format", "mp3_1_2"], ExitCode.USAGE, "mp3_1_2"),
    (["--chunk-length-schedule", "120,,160"], ExitCode.USAGE, "--chunk-length-schedule"),
    (["--chunk-length-schedule", "120.5,160"], ExitCode.USAGE, "--chunk-length-schedule"),
    (["--chunk-length-schedule", "fast"], ExitCode.USAGE, "--chunk-length-schedule"),
    (["--chunk-length-schedule", "10,20"], ExitCode.USAGE, "--chunk-length-schedule"),
    (["--flush", "sometimes"], ExitCode.USAGE, "--flush"),
    (["--apply-text-normalization", "maybe"], ExitCode.USAGE, "--apply-text-normalization"),
    (["--subtitles", "srt,ass"], ExitCode.USAGE, "--subtitles"),
    (["--speed", "3"], ExitCode.USAGE, "--speed"),
    (["--stability", "-1"], ExitCode.USAGE, "--stability"),
    (["--inactivity-timeout", "0"], ExitCode.USAGE, "--inactivity-timeout"),
    (["--inactivity-timeout", "999"], ExitCode.USAGE, "--inactivity-timeout"),
    (["--pronunciation-dictionary", ":v1"], ExitCode.USAGE, "--pronunciation-dictionary"),
    (["--seed", "-1"], ExitCode.USAGE, "--seed"),
    (["--idle-flush", "-5"], ExitCode.USAGE, "--idle-flush"),
]


@pytest.mark.parametrize(("args", "code", "expect"), SHARED_BAD_VALUES, ids=lambda v: repr(v))
@pytest.mark.parametrize("command", ["speak", "batch"])
def test_bad_shared_values_are_refused_before_connecting(
    command: str, args: list[str], code: int, expect: str, tmp_path: Path
) -> None:
    source = tmp_path / "a.txt"
    source.write_text("Hello.")
    what = ["-f", str(source)] if command == "speak" else [str(source)]
    exit_code, stderr = _invoke(command, "--url", NOBODY, *args, *what)
    assert exit_code == code, stderr
    _assert_one_line_error(stderr, expect=expect)


@pytest.mark.parametrize("command", ["speak", "batch", "voices"])
def test_unknown_region_is_refused_even_without_a_key(command: str, tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_text("Hello.")
    what = {"speak": ["-f", str(source)], "batch": [str(source)], "voices": []}[command]
    exit_code, stderr = _invoke(command, "--region", "mars", *what)
    assert exit_code == ExitCode.USAGE, stderr
    _assert_one_line_error(stderr, expect="--region")
    assert "global" in stderr  # the values are listed


@pytest.mark.parametrize(
    ("command", "args", "code", "expect"),
    [
        ("speak", ["--url", "http://example.com", "Hi."], ExitCode.USAGE, "--url"),
        ("speak", ["--url", "ws://user:pw@example.com", "Hi."], ExitCode.USAGE, "--url"),
        ("speak", ["--url", NOBODY, "-f", "missing.txt"], ExitCode.INPUT, "missing.txt"),
        ("speak", ["--url", NOBODY, "-o", "-", "--subtitles", "vtt,vtt,x", "Hi."], ExitCode.USAGE, "x"),
        ("speak", ["--url", NOBODY, "--bogus", "Hi."], ExitCode.USAGE, "--bogus"),
        ("batch", ["--url", NOBODY, "--jobs", "0", "."], ExitCode.USAGE, "--jobs"),
        ("batch", ["--url", NOBODY, "--retries", "99", "."], ExitCode.USAGE, "--retries"),
        ("batch", ["--url", NOBODY, "missing-dir"], ExitCode.INPUT, "missing-dir"),
        ("voices", ["--url", "ftp://example.com"], ExitCode.USAGE, "--url"),
    ],
)
def test_bad_values_of_each_command(command: str, args: list[str], code: int, expect: str) -> None:
    exit_code, stderr = _invoke(command, *args)
    assert exit_code == code, stderr
    _assert_one_line_error(stderr, expect=expect)


def _elevtts(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ELEVTTS_", "ELEVENLABS_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "elevtts", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,  # a value accepted by mistake would start serving: the timeout fails the test
    )


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--log-level", "chatty"], "--log-level"),
        (["--api-key", ""], "--api-key"),
        (["--port", "70000"], "--port"),
        (["--slots", "0"], "--slots"),
        (["--certfile", "missing.pem", "--keyfile", "missing.pem"], "--certfile"),
    ],
)
def test_serve_refuses_bad_values_with_exit_2(args: list[str], expect: str, tmp_path: Path) -> None:
    done = _elevtts("serve", "--port", "0", *args, cwd=tmp_path)
    assert done.returncode == ExitCode.USAGE, done.stderr
    _assert_one_line_error(done.stderr, expect=expect)
    assert done.stdout == ""  # no URL: it never listened


def test_log_level_lists_its_values(tmp_path: Path) -> None:
    done = _elevtts("serve", "--log-level", "chatty", cwd=tmp_path)
    assert done.returncode == ExitCode.USAGE
    for level in ("debug", "info", "warning", "error"):
        assert level in done.stderr


def test_output_format_refused_in_a_real_process_without_traceback(tmp_path: Path) -> None:
    done = _elevtts("speak", "--url", NOBODY, "--output-format", "wav_44100", "x", cwd=tmp_path)
    assert done.returncode == ExitCode.USAGE and "Traceback" not in done.stderr
    assert done.stderr.startswith("elevtts: error: ") and len(done.stderr.strip().splitlines()) == 1
