"""`elevtts speak` as a new user meets it: Markdown per file, empty input, -o PATH, streams as files,
--debug, and failures that end in one line and a documented code (issue 10; issue 11 item 7)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_speech, decode_mp3
from test_speak import clean_env, speak  # noqa: F401  (clean_env: autouse here too)
from typer.testing import CliRunner

from elevtts.cli import app
from elevtts.cli.exit_codes import ExitCode

SECRET = "sk-debug-secret-never-print-me-0123456789"


def elevtts(
    *args: str, env_extra: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[bytes]:
    """A real process: what a shell runs (stdin, stdout and signals are real)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ELEVENLABS", "ELEVTTS"))}
    env.update(env_extra or {})
    kwargs.setdefault("stdout", subprocess.PIPE)
    return subprocess.run(
        [sys.executable, "-m", "elevtts", *args], stderr=subprocess.PIPE, env=env, timeout=120, **kwargs
    )


def spoken_words(path: Path) -> list[str]:
    return [w["text"] for w in json.loads(path.read_text())["words"]]


def no_audio_left(directory: Path = Path("output")) -> bool:
    return not directory.exists() or not [p for p in directory.iterdir() if p.suffix in (".mp3", ".part")]


# -- item 1: Markdown stripped per file, by each file's type -----


MARKDOWN = (
    "# The Heading\n\nSome **bold** words and a [link](https://example.com/a_(b)).\n\n"
    "```python\nprint('code is not read')\n```\n\nThe end.\n"
)


def test_markdown_is_stripped_per_file_by_its_type(local_server: str, tmp_path: Path) -> None:
    (tmp_path / "chapter1.txt").write_text("Plain text keeps its *stars* here.\n")
    (tmp_path / "chapter2.md").write_text(MARKDOWN)
    args = ("--url", local_server, "-v", "espeak", "--subtitles", "json", "-q")
    result = speak(*args, "--name", "mixed", "-f", "chapter1.txt", "-f", "chapter2.md")
    assert result.exit_code == 0, result.output
    text = " ".join(spoken_words(Path("output/mixed.words.json")))
    assert "*stars*" in text  # a .txt file is spoken as it is
    for markup in ("#", "**", "https", "example.com", "print", "code", "(", ")"):
        assert markup not in text, (markup, text)
    assert "Heading" in text and "bold" in text and "link" in text and "end." in text
    kept = speak(*args, "--name", "kept", "--keep-markdown", "-f", "chapter1.txt", "-f", "chapter2.md")
    assert kept.exit_code == 0, kept.output
    assert "**bold**" in " ".join(spoken_words(Path("output/kept.words.json")))
    stripped = speak(*args, "--name", "stripped", "--strip-markdown", "-f", "chapter1.txt")
    assert stripped.exit_code == 0, stripped.output
    assert "*stars*" not in " ".join(spoken_words(Path("output/stripped.words.json")))


# -- item 3: empty or unspeakable input is exit 3, no audio file -----


@pytest.mark.parametrize(
    ("args", "stdin", "content"),
    [
        (["-"], "", None),
        (["-f", "empty.txt"], None, ""),
        (["-f", "dots.txt"], None, "... !!\n\n  ?\n"),
        (["..."], None, None),
        (["-"], "  ...\n", None),
    ],
    ids=["stdin-empty", "empty-file", "punctuation-file", "punctuation-argument", "stdin-punctuation"],
)
def test_nothing_to_speak_is_exit_3_and_leaves_no_audio(
    local_server: str, tmp_path: Path, args: list[str], stdin: str | None, content: str | None
) -> None:
    if content is not None:
        (tmp_path / args[1]).write_text(content)
    done = elevtts("speak", "--url", local_server, "-v", "espeak", *args, input=(stdin or "").encode())
    assert done.returncode == ExitCode.INPUT, done.stderr
    stderr = done.stderr.decode()
    assert "nothing to speak" in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert no_audio_left(), list(Path("output").iterdir())


# -- item 12: -o PATH -----


def test_output_path_wav_is_a_real_riff_wave_file(local_server: str, tmp_path: Path) -> None:
    result = speak("--url", local_server, "-v", "espeak", "-o", "out/hello.wav", "Hello there, my friend.")
    assert result.exit_code == 0, result.output
    path = Path("out/hello.wav")
    assert path.read_bytes()[:4] == b"RIFF" and path.read_bytes()[8:12] == b"WAVE"
    with wave.open(str(path), "rb") as audio:
        assert (audio.getnchannels(), audio.getsampwidth(), audio.getframerate()) == (1, 2, 22050)
        frames = audio.getnframes()
        assert frames * 2 + 44 == path.stat().st_size  # the header was completed with the real sizes
        samples = audio.readframes(frames)
    import numpy as np

    assert_speech(np.frombuffer(samples, dtype=np.int16), 22050, words=4)
    assert sorted(p.name for p in Path("out").iterdir()) == ["hello.wav"]  # no .part, no sidecar


@pytest.mark.parametrize(
    ("name", "extra", "check"),
    [
        ("a.mp3", [], "mp3"),
        ("b.wav", ["--output-format", "pcm_16000"], "wav16"),
        ("c.pcm", ["--output-format", "pcm_16000"], "pcm"),
        ("d.ulaw", [], "g711"),
        ("e.ALAW", [], "g711"),
    ],
)
def test_output_path_format_follows_the_extension(
    local_server: str, name: str, extra: list[str], check: str
) -> None:
    result = speak("--url", local_server, "-v", "espeak", "-o", name, *extra, "--json", "Two words.")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["files"] == {"audio": name}
    data = Path(name).read_bytes()
    if check == "mp3":
        samples, rate = decode_mp3(data)
        assert_speech(samples, rate, words=2)
    elif check == "wav16":
        with wave.open(name, "rb") as audio:
            assert audio.getframerate() == 16000 and audio.getnframes() > 8000
    elif check == "pcm":
        assert stats["settings"]["output_format"] == "pcm_16000" and len(data) > 16000
    else:
        assert stats["settings"]["output_format"] in ("ulaw_8000", "alaw_8000") and len(data) > 4000


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-o", "x.wav", "--output-format", "mp3_44100_128"], "--output-format"),
        (["-o", "x.mp3", "--output-format", "pcm_16000"], "--output-format"),
        (["-o", "x.ogg"], "cannot tell the audio format"),
        (["-o", "noextension"], "cannot tell the audio format"),
        (["-o", "x.mp3", "--name", "y"], "-o PATH"),
        (["-o", "x.mp3", "-d", "elsewhere"], "-o PATH"),
    ],
)
def test_output_path_mismatch_is_exit_2(args: list[str], needle: str) -> None:
    result = speak(*args, "Hi.")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert needle in result.stderr
    assert not Path("x.wav").exists() and not Path("x.mp3").exists()


def test_output_dash_to_a_terminal_is_refused() -> None:
    leader, follower = pty.openpty()
    try:
        done = elevtts("speak", "-o", "-", "Hi.", stdout=follower)
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert b"terminal" in done.stderr and b"Traceback" not in done.stderr


# -- item 14: -f -, -f /dev/stdin, -f <(cmd) -----


@pytest.mark.parametrize("how", ["-f -", "-f /dev/stdin", "-f <(cmd)"])
def test_a_stream_given_as_a_file_is_read(local_server: str, tmp_path: Path, how: str) -> None:
    words = "Read from a stream, not a file."
    common = f"--url {local_server} -v espeak -q --subtitles json --name streamed"
    if how == "-f <(cmd)":
        command = f"{sys.executable} -m elevtts speak {common} -f <(echo '{words}')"
        done = subprocess.run(["bash", "-c", command], capture_output=True, timeout=120)
    else:
        done = elevtts("speak", *common.split(), *how.split(), input=words.encode())
    assert done.returncode == 0, done.stderr
    assert spoken_words(Path("output/streamed.words.json")) == words.split()


# -- item 17: --debug / --log-level: a redacted wire log on stderr -----


def test_debug_logs_the_wire_on_stderr_without_the_key(keyed_server: str, tmp_path: Path) -> None:
    result = speak("--url", keyed_server, "-v", "espeak", "--api-key", "sesame", "--debug", "-q", "Hi there.")
    assert result.exit_code == 0, result.output
    assert "websockets" in result.stderr and "TEXT" in result.stderr  # frames are logged
    assert "sesame" not in result.stderr and "***" in result.stderr
    info = speak(
        "--url", keyed_server, "-v", "espeak", "--api-key", "sesame", "--log-level", "warning", "Hi."
    )
    assert info.exit_code == 0 and "TEXT" not in info.stderr


def test_debug_on_batch_and_voices(keyed_server: str, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "one.txt").write_text("One file.")
    runner = CliRunner()
    batch = runner.invoke(
        app, ["batch", "in", "--url", keyed_server, "-v", "espeak", "--api-key", "sesame", "--debug"]
    )
    assert batch.exit_code == 0, batch.output
    assert "TEXT" in batch.stderr and "sesame" not in batch.stderr
    voices = runner.invoke(app, ["voices", "--url", keyed_server, "--api-key", "sesame", "--debug"])
    assert "GET" in voices.stderr and "sesame" not in voices.stderr


# -- issue 11 item 7: write failures and names too long: exit 4, one line -----


def test_stdout_to_a_full_device_is_exit_4_without_a_traceback(local_server: str) -> None:
    with open("/dev/full", "wb") as full:
        done = elevtts("speak", "--url", local_server, "-v", "espeak", "-o", "-", "Hello.", stdout=full)
    assert done.returncode == ExitCode.OUTPUT, done.stderr
    stderr = done.stderr.decode()
    assert "No space left on device" in stderr and "Traceback" not in stderr and "Exception" not in stderr


@pytest.mark.parametrize("name", ["n" * 300, "é" * 130])
def test_a_name_too_long_for_a_file_is_exit_4(local_server: str, name: str) -> None:
    done = elevtts("speak", "--url", local_server, "-v", "espeak", "--name", name, "Hello.")
    assert done.returncode == ExitCode.OUTPUT, done.stderr
    stderr = done.stderr.decode()
    assert "too long" in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1


# -- item 21: --json file keys, -d onto a file -----


def test_json_files_are_keyed_by_kind(local_server: str) -> None:
    result = speak(
        "--url", local_server, "-v", "espeak", "--name", "k", "--subtitles", "srt,vtt", "--json", "Hi."
    )
    assert result.exit_code == 0, result.output
    files = json.loads(result.stdout)["files"]
    assert files == {
        "audio": str(Path("output/k.mp3")),
        "srt": str(Path("output/k.srt")),
        "vtt": str(Path("output/k.vtt")),
        "stats": str(Path("output/k.json")),
    }
    assert all(Path(p).exists() for p in files.values())


def test_output_dir_that_is_a_file_says_not_a_directory(tmp_path: Path) -> None:
    Path("afile").write_text("x")
    result = speak("-d", "afile", "Hi.")
    assert result.exit_code == ExitCode.OUTPUT
    assert "not a directory" in result.stderr


# -- item 19: a status line while the voice loads; the table's total is the command's ------------------


def test_the_voice_load_is_announced_and_the_total_is_the_whole_command() -> None:
    started = time.monotonic()
    done = elevtts("speak", "-v", "espeak", "--json", "Loaded first.")
    wall_ms = (time.monotonic() - started) * 1000
    assert done.returncode == 0, done.stderr
    stderr = done.stderr.decode()
    assert stderr.startswith("elevtts: loading voice espeak...")
    stats = json.loads(done.stdout)
    assert stats["voice_load_ms"] > 0 and stats["input"] == "text"
    assert stats["elapsed_ms"] > stats["voice_load_ms"] + stats["total_ms"]
    # the command's own clock starts with the process: only the exit is missing from it
    assert wall_ms - 1500 < stats["elapsed_ms"] <= wall_ms
    assert "total (the whole command)" in stderr and "voice load" in stderr


def test_the_total_does_not_count_what_a_shell_ran_before(tmp_path: Path) -> None:
    """`a && elevtts speak ...`: bash execs into elevtts, so the process began with `a`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ELEVENLABS", "ELEVTTS"))}
    command = f"sleep 2 && exec {sys.executable} -m elevtts speak -v espeak --json 'After a pause.'"
    started = time.monotonic()
    done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, timeout=120)
    wall_ms = (time.monotonic() - started) * 1000
    assert done.returncode == 0, done.stderr
    assert 0 < json.loads(done.stdout)["elapsed_ms"] <= wall_ms - 2000  # the sleep is not elevtts's


def test_the_table_and_live_line_read_well() -> None:
    from rich.console import Console

    from elevtts.display import RichDisplay, stats_table

    console = Console(record=True, width=100, force_terminal=True)
    console.print(stats_table({"chars_sent": 1, "messages_sent": 1, "audio_chunks": 1, "audio_bytes": 2}))
    table = console.export_text()
    assert "1 char in 1 message" in table and "2 bytes in 1 chunk" in table
    streamed = Console(record=True, width=100)
    streamed.print(stats_table({"input": "stream", "real_time_factor": 1.5}))
    assert "input pauses included" in streamed.export_text()
    display = RichDisplay(Console(record=True, width=100))
    display.status("loading voice joe...")
    assert "loading voice joe..." in display.__rich__().plain
    display.start("speak", "embedded local server")
    display.update(state="sending")
    assert "waiting for input" in display.__rich__().plain
    display.update(chars_sent=12)
    assert "sent 12 chars" in display.__rich__().plain
    display.stop()


# -- batch: empty files skipped (item 3), plurals and no voice load for nothing to do (item 21) -----------


def test_batch_skips_empty_files_and_a_rerun_with_nothing_to_do_loads_no_voice(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "words.txt").write_text("Some words.")
    (tmp_path / "in" / "empty.txt").write_text("")
    (tmp_path / "in" / "dots.md").write_text("...\n\n---\n")
    runner = CliRunner()
    first = runner.invoke(app, ["batch", "in", "-v", "espeak", "--json"])
    assert first.exit_code == 0, first.output
    assert "loading voice espeak" in first.stderr
    report = {Path(f["input"]).name: f for f in json.loads(first.stdout)["files"]}
    assert report["words.txt"]["status"] == "done"
    for name in ("empty.txt", "dots.md"):
        assert (report[name]["status"], report[name]["reason"]) == ("skipped", "nothing to speak")
    assert sorted(p.name for p in Path("output").glob("*.mp3")) == ["words.mp3"]
    again = runner.invoke(app, ["batch", "in/words.txt", "-v", "espeak"])
    assert again.exit_code == 0, again.output
    assert "loading voice" not in again.stderr
    assert "batch: 1 file, 0 to speak (0 chars)" in again.stderr


# -- item 21: ws:// to a TLS server hints at wss:// -------------------------------------------------------


def test_plain_ws_to_a_tls_server_hints_at_wss(tmp_path: Path) -> None:
    import ssl

    from conftest import run_local_server
    from test_sdk import self_signed_cert

    from elevtts.server.app import ServerConfig

    cert, key = self_signed_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    thread, url = run_local_server(ServerConfig(port=0, voices=("espeak",), ssl_context=context))
    try:
        result = speak("--url", url.replace("wss://", "ws://"), "-v", "espeak", "Hi.")
    finally:
        thread.stop()
    assert result.exit_code == ExitCode.CONNECT, result.output
    assert "wss://" in result.stderr and "TLS" in result.stderr


def test_batch_result_lines_fit_an_80_column_terminal() -> None:
    from rich.console import Console

    from elevtts.batch.progress import BatchReport, FileReport, RichBatchProgress

    console = Console(record=True, width=80, force_terminal=True)
    progress = RichBatchProgress(console)
    file = FileReport(
        input="chapters/part-one/the-long-chapter-name.txt", output="out/the-long-chapter-name.mp3"
    )
    report = BatchReport(files=[file])
    progress.begin(report, to_run=1, chars=100, target="embedded local server")
    progress.file_started(file)
    file.status, file.audio_seconds, file.ttfb_ms, file.real_time_factor = "done", 12.3, 456.0, 0.12
    progress.file_finished(file)
    progress.end(report)
    lines = [line for line in console.export_text().splitlines() if line.strip()]
    done = [line for line in lines if "chapter" in line]
    assert len(done) == 1 and len(done[0]) <= 80 and done[0].startswith("[1/1] done"), lines


def test_ssl_cert_file_makes_speak_trust_a_self_signed_server(tmp_path: Path) -> None:
    import ssl

    from conftest import run_local_server
    from test_sdk import self_signed_cert

    from elevtts.server.app import ServerConfig

    cert, key = self_signed_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    thread, url = run_local_server(ServerConfig(port=0, voices=("espeak",), ssl_context=context))
    try:
        untrusted = elevtts("speak", "--url", url, "-v", "espeak", "-o", "no.mp3", "Hi.")
        trusted = elevtts(
            "speak",
            "--url",
            url,
            "-v",
            "espeak",
            "-o",
            "yes.mp3",
            "Trusted.",
            env_extra={"SSL_CERT_FILE": str(cert)},
        )
    finally:
        thread.stop()
    assert untrusted.returncode == ExitCode.CONNECT and b"certificate" in untrusted.stderr
    assert trusted.returncode == 0, trusted.stderr
    samples, rate = decode_mp3(Path("yes.mp3").read_bytes())
    assert_speech(samples, rate, words=1)


def test_batch_live_counts_reach_the_total(local_server: str, tmp_path: Path) -> None:
    import asyncio

    from elevtts.batch import BatchPlan, discover_inputs, run_batch
    from elevtts.batch.progress import FileReport, SilentBatchProgress
    from elevtts.client import Endpoint, StreamOptions
    from elevtts.speak import INPUT_SENT, SendPolicy

    class Recorder(SilentBatchProgress):  # a BatchProgress: the library's own extension point
        def __init__(self) -> None:
            self.states: list[str] = []

        def file_update(self, file: FileReport, *, state: str | None = None, **_: Any) -> None:
            if state is not None:
                self.states.append(state)

    # Markdown stripped and spaces folded: the text sent is shorter than the file
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.md").write_text("# Title\n\nSome **bold**   words,   spaced   out.\n")
    recorder = Recorder()
    asyncio.run(
        run_batch(
            discover_inputs([str(tmp_path / "in")]),
            endpoint=Endpoint(local_server),
            options=StreamOptions(voice_id="espeak"),
            text_policy=SendPolicy(),
            markdown_policy=SendPolicy(strip_markdown=True),
            plan=BatchPlan(output_dir=tmp_path / "out"),
            progress=recorder,
        )
    )
    assert INPUT_SENT in recorder.states

    from rich.console import Console

    from elevtts.batch.progress import BatchReport, RichBatchProgress

    progress = RichBatchProgress(Console(record=True, width=120, force_terminal=True))
    file = FileReport(input="a.md", output="out/a.mp3", chars=880)
    progress.begin(BatchReport(files=[file]), to_run=1, chars=880, target="here")
    progress.file_started(file)
    progress.file_update(file, state="sending", chars_sent=878)
    assert "878/880 chars" in progress._line(progress._active[id(file)]).plain
    progress.file_update(file, state=INPUT_SENT)
    assert "880/880 chars" in progress._line(progress._active[id(file)]).plain
    progress.end(BatchReport(files=[file]))
