"""`elevtts speak` end to end: the embedded server, --url, stdin streaming, files, errors, the wire."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ServerThread, assert_speech, decode_mp3
from typer.testing import CliRunner
from websockets.asyncio.server import ServerConnection, serve

from elevtts.cli import app
from elevtts.cli.exit_codes import ExitCode

SECRET = "sk-test-secret-never-print-me"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "ELEVENLABS_API_KEY",
        "ELEVTTS_URL",
        "ELEVTTS_VOICE",
        "ELEVTTS_OUTPUT_DIR",
        "ELEVTTS_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def speak(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, ["speak", *args], input=input, catch_exceptions=False)


def only(pattern: str, directory: Path = Path("output")) -> Path:
    found = sorted(directory.glob(pattern))
    assert len(found) == 1, found
    return found[0]


# -- the main job ---------------------------------------------------------------------------------


@pytest.mark.neural
def test_embedded_default_speaks_with_no_setup() -> None:
    result = speak("Hello, world. This is the embedded local voice.")
    assert result.exit_code == 0, result.output
    audio = only("hello-world-*.mp3")
    samples, rate = decode_mp3(audio.read_bytes())
    assert_speech(samples, rate, words=8)
    stats = json.loads(audio.with_suffix(".json").read_text())
    assert stats["ok"] and stats["settings"]["target"] == "embedded local server"
    assert stats["settings"]["voice_id"] == "joe"
    assert not list(Path("output").glob("*.part"))


def test_url_server_file_input_and_stats(local_server: str, tmp_path: Path) -> None:
    source = tmp_path / "chapter one.txt"
    source.write_text("It was a bright cold day in April. The clocks were striking thirteen.\n")
    result = speak("--url", local_server, "--voice", "espeak", "-f", str(source), "--json", "-q")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    audio = Path(stats["files"]["audio"])
    assert audio.name == "chapter one.mp3"
    samples, rate = decode_mp3(audio.read_bytes())
    assert_speech(samples, rate, words=13)
    assert stats["ttfb_ms"] is not None and stats["ttfb_ms"] >= 0
    assert stats["audio_seconds"] == pytest.approx(len(samples) / rate, abs=0.15)
    assert stats["chars_sent"] >= len(source.read_text().strip())
    assert stats["real_time_factor"] > 0
    for key in ("connect_ms", "total_ms", "flush_latency_ms", "audio_chunks", "audio_bytes", "settings"):
        assert key in stats


def test_table_on_stderr_when_not_quiet(local_server: str) -> None:
    result = speak("--url", local_server, "--voice", "espeak", "Show me the table.")
    assert result.exit_code == 0
    assert "TTFB" in result.stderr and "real-time factor" in result.stderr


def test_subtitles_from_alignment(local_server: str) -> None:
    text = "Subtitles come from the alignment. Every word gets a time."
    result = speak(
        "--url",
        local_server,
        "--voice",
        "espeak",
        "--name",
        "subs",
        "--subtitles",
        "srt,vtt,json",
        "-q",
        text,
    )
    assert result.exit_code == 0, result.output
    words = json.loads(Path("output/subs.words.json").read_text())["words"]
    assert [w["text"] for w in words] == text.split()
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and all(w["end"] >= w["start"] for w in words)
    samples, rate = decode_mp3(Path("output/subs.mp3").read_bytes())
    assert words[-1]["end"] <= len(samples) / rate + 0.1
    srt = Path("output/subs.srt").read_text()
    assert srt.startswith("1\n00:00:00,") and "Every word gets a time." in srt.replace("\n", " ")
    assert Path("output/subs.vtt").read_text().startswith("WEBVTT")


def test_keep_chunks_writes_numbered_files_with_alignment(local_server: str) -> None:
    result = speak(
        "--url",
        local_server,
        "--voice",
        "espeak",
        "--name",
        "kc",
        "--keep-chunks",
        "-q",
        "First sentence here. Second sentence follows it.",
    )
    assert result.exit_code == 0
    chunks = sorted(Path("output/kc").glob("*.mp3"))
    assert chunks and chunks[0].name == "0001.mp3"
    assert b"".join(c.read_bytes() for c in chunks) == Path("output/kc.mp3").read_bytes()
    meta = json.loads(Path("output/kc/0001.json").read_text())
    assert meta["alignment"]["chars"]


def test_raw_audio_to_stdout(local_server: str) -> None:
    result = CliRunner().invoke(
        app,
        [
            "speak",
            "--url",
            local_server,
            "--voice",
            "espeak",
            "-o",
            "-",
            "--output-format",
            "pcm_16000",
            "-q",
            "Raw audio to the pipe.",
        ],
    )
    assert result.exit_code == 0
    samples = np.frombuffer(result.stdout_bytes, "<i2")
    assert_speech(samples, 16000, words=5)
    assert not Path("output").exists() or not list(Path("output").iterdir())


def test_markdown_files_are_stripped(local_server: str, tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("# Title\n\nSome **bold** words and `code`.\n\n- item one\n- item two\n")
    result = speak("--url", local_server, "--voice", "espeak", "-f", str(notes), "--subtitles", "json", "-q")
    assert result.exit_code == 0, result.output
    spoken = " ".join(w["text"] for w in json.loads(Path("output/notes.words.json").read_text())["words"])
    assert "*" not in spoken and "#" not in spoken and "`" not in spoken
    assert "bold" in spoken and "item two" in spoken


def test_never_overwrites_silently(local_server: str) -> None:
    args = ("--url", local_server, "--voice", "espeak", "--name", "same", "-q", "Once.")
    assert speak(*args).exit_code == 0
    again = speak(*args)
    assert (
        again.exit_code == ExitCode.OUTPUT and "already exists" in again.stderr and "--force" in again.stderr
    )
    assert speak(*args, "--force").exit_code == 0


# -- stdin is streamed ------------------------------------------------------------------------------


def _elevtts(*args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "ELEVENLABS_API_KEY"}
    return subprocess.Popen([sys.executable, "-m", "elevtts", *args], env=env, **kwargs)


@contextlib.contextmanager
def _piped_elevtts(*args: str, cwd: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """elevtts with stdin, stdout and stderr piped; killed and its pipes closed on the way out."""
    pipe = subprocess.PIPE
    process = _elevtts(*args, stdin=pipe, stdout=pipe, stderr=pipe, cwd=cwd)
    try:
        yield process
    finally:
        process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_stdin_audio_arrives_before_the_producer_finishes(local_server: str) -> None:
    with _piped_elevtts(
        "speak",
        "-",
        "--url",
        local_server,
        "--voice",
        "espeak",
        "-o",
        "-",
        "--output-format",
        "pcm_16000",
        "-q",
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(b"The first sentence arrives alone. ")
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], 15)
        assert ready, "no audio while the producer was still writing"
        first = os.read(process.stdout.fileno(), 65536)
        assert first
        process.stdin.write(b"Then, much later, the second one.\n")
        process.stdin.close()
        rest = process.stdout.read()
        assert process.wait(timeout=30) == 0
    samples = np.frombuffer(first + rest, "<i2")
    assert_speech(samples, 16000, words=11)


def test_ctrl_c_keeps_the_part_file_and_exits_130(local_server: str, tmp_path: Path) -> None:
    with _piped_elevtts(
        "speak",
        "-",
        "--url",
        local_server,
        "--voice",
        "espeak",
        "--name",
        "cut",
        "-q",
        cwd=tmp_path,
    ) as process:
        assert process.stdin is not None
        process.stdin.write(b"Some words are spoken before the interruption. ")
        process.stdin.flush()
        part = tmp_path / "output" / "cut.mp3.part"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (part.exists() and part.stat().st_size > 0):
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=15)
    assert process.returncode == ExitCode.INTERRUPTED
    assert part.exists() and part.stat().st_size > 0
    assert not (tmp_path / "output" / "cut.mp3").exists()
    assert b"Traceback" not in stderr


# -- errors ---------------------------------------------------------------------------------------------


def test_cannot_connect(tmp_path: Path) -> None:
    result = speak("--url", "ws://127.0.0.1:9", "Nobody listens.")
    assert result.exit_code == ExitCode.CONNECT
    assert "cannot connect to ws://127.0.0.1:9" in result.stderr


def test_authentication_refused_and_key_never_printed(keyed_server: str) -> None:
    result = speak("--url", keyed_server, "--voice", "espeak", "--api-key", SECRET, "--json", "Hi.")
    assert result.exit_code == ExitCode.AUTH
    assert "invalid_api_key" in result.stderr
    assert SECRET not in result.output + result.stderr
    for path in Path("output").glob("*"):
        assert SECRET not in path.read_text(errors="replace")


def test_key_from_dotenv_is_used_and_flag_wins(keyed_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    Path(".env").write_text("ELEVENLABS_API_KEY=sesame\n")
    ok = _elevtts(
        "speak",
        "--url",
        keyed_server,
        "--voice",
        "espeak",
        "-q",
        "From dot env.",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, err = ok.communicate(timeout=60)
    assert ok.returncode == 0, err
    bad = _elevtts(
        "speak",
        "--url",
        keyed_server,
        "--voice",
        "espeak",
        "--api-key",
        "wrong",
        "-q",
        "Flag wins.",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, err = bad.communicate(timeout=60)
    assert bad.returncode == ExitCode.AUTH and b"sesame" not in err and b"wrong" not in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--chunk-length-schedule", "10,120"], "outside 50-500"),
        (["--chunk-length-schedule", "a,b"], "numbers separated by commas"),
        (["--flush", "sometimes"], "--flush"),
        (["--url", "http://example.com"], "ws:// or wss://"),
        (["--subtitles", "ass"], "--subtitles"),
        (["--inactivity-timeout", "500"], "at most 180"),
        (
            [
                "--pronunciation-dictionary",
                "a",
                "--pronunciation-dictionary",
                "b",
                "--pronunciation-dictionary",
                "c",
                "--pronunciation-dictionary",
                "d",
            ],
            "at most 3",
        ),
        (["--speed", "2"], "speed"),
        (["--output", "file.flac"], "cannot tell the audio format"),
    ],
)
def test_bad_options_exit_2_with_a_clear_message(args: list[str], needle: str) -> None:
    result = speak(*args, "Text.")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert needle in result.stderr


def test_nothing_to_speak() -> None:
    assert speak("   ").exit_code == ExitCode.INPUT


def test_unreadable_input_file() -> None:
    result = speak("-f", "missing.txt")
    assert result.exit_code == ExitCode.INPUT and "missing.txt" in result.stderr
    Path("folder").mkdir()
    result = speak("-f", "folder")
    assert result.exit_code == ExitCode.INPUT and "is a directory" in result.stderr


def test_non_utf8_file_is_an_input_error(local_server: str) -> None:
    Path("latin1.txt").write_bytes("Un caf\xe9 noir.".encode("latin-1"))
    result = speak("--url", local_server, "--voice", "espeak", "-f", "latin1.txt", "-q")
    assert result.exit_code == ExitCode.INPUT and "not UTF-8" in result.stderr


def test_unwritable_output_directory(local_server: str) -> None:
    Path("blocker").write_text("a file, not a directory")
    result = speak("--url", local_server, "--voice", "espeak", "--output-dir", "blocker/out", "Text.")
    assert result.exit_code == ExitCode.OUTPUT and "blocker/out" in result.stderr


def test_unknown_voice_is_a_server_error(local_server: str) -> None:
    result = speak("--url", local_server, "--voice", "nobody", "Text.")
    assert result.exit_code == ExitCode.SERVER
    assert "voice_not_found" in result.stderr and "elevtts voices" in result.stderr


# -- a scripted server: exact wire checks and faults ---------------------------------------------------------

SILENT_MP3 = base64.b64encode(b"\xff\xf3\x14\xc4" + b"\x00" * 100).decode()


class ScriptedServer:
    """Records what the client sends; answers as `behaviour` says."""

    def __init__(self, behaviour: str = "normal") -> None:
        self.behaviour = behaviour
        self.requests: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []

    async def handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.requests.append({"path": ws.request.path, "headers": dict(ws.request.headers.raw_items())})
        alignment = {"chars": ["a"], "charStartTimesMs": [0], "charDurationsMs": [10]}
        async for raw in ws:
            message = json.loads(raw)
            self.messages.append(message)
            if self.behaviour == "drop" and len(self.messages) >= 2:
                await ws.send(json.dumps({"audio": SILENT_MP3, "isFinal": None, "alignment": alignment}))
                ws.transport.abort()
                return
            if self.behaviour in ("error", "timeout") and len(self.messages) >= 2:
                error = "input_timeout_exceeded" if self.behaviour == "timeout" else "quota_exceeded"
                await ws.send(json.dumps({"message": "Scripted failure.", "error": error, "code": 1008}))
                await ws.close(1008, "scripted")
                return
            if message.get("flush") or message.get("text") == "":
                await ws.send(json.dumps({"audio": SILENT_MP3, "isFinal": None, "alignment": alignment}))
            if message.get("text") == "":
                await ws.send(json.dumps({"isFinal": True}))
                await ws.close(1000)
                return


@pytest.fixture
def scripted(request: pytest.FixtureRequest) -> Any:
    server = ScriptedServer(getattr(request, "param", "normal"))

    async def factory() -> tuple[Any, str]:
        ws_server = await serve(server.handle, "127.0.0.1", 0)
        port = next(iter(ws_server.sockets)).getsockname()[1]
        return ws_server, f"ws://127.0.0.1:{port}"

    thread = ServerThread(factory)
    server.url = thread.start()  # type: ignore[attr-defined]
    yield server
    thread.stop()


def test_every_option_reaches_the_wire(scripted: Any) -> None:
    result = speak(
        "--url",
        scripted.url,
        "--api-key",
        SECRET,
        "--voice",
        "v1",
        "--model",
        "eleven_flash_v2_5",
        "--output-format",
        "pcm_16000",
        "--chunk-length-schedule",
        "50,100",
        "--flush",
        "sentence",
        "--auto-mode",
        "--try-trigger-generation",
        "--stability",
        "0.3",
        "--similarity-boost",
        "0.9",
        "--style",
        "0.2",
        "--no-speaker-boost",
        "--speed",
        "1.1",
        "--pronunciation-dictionary",
        "dict1:ver1",
        "--pronunciation-dictionary",
        "dict2",
        "--inactivity-timeout",
        "60",
        "--sync-alignment",
        "--language-code",
        "en",
        "--seed",
        "7",
        "--apply-text-normalization",
        "off",
        "-q",
        "--name",
        "wire",
        "First sentence. Second sentence.",
    )
    assert result.exit_code == 0, result.output
    request = scripted.requests[0]
    path, _, query = request["path"].partition("?")
    assert path == "/v1/text-to-speech/v1/stream-input"
    params = dict(p.split("=", 1) for p in query.split("&"))
    assert params == {
        "output_format": "pcm_16000",
        "model_id": "eleven_flash_v2_5",
        "inactivity_timeout": "60",
        "sync_alignment": "true",
        "auto_mode": "true",
        "language_code": "en",
        "seed": "7",
        "apply_text_normalization": "off",
    }
    assert request["headers"]["xi-api-key"] == SECRET and SECRET not in request["path"]
    bos, *texts, eos = scripted.messages
    assert bos["text"] == " "
    assert bos["voice_settings"] == {
        "stability": 0.3,
        "similarity_boost": 0.9,
        "style": 0.2,
        "use_speaker_boost": False,
        "speed": 1.1,
    }
    assert bos["generation_config"] == {"chunk_length_schedule": [50, 100]}
    assert bos["pronunciation_dictionary_locators"] == [
        {"pronunciation_dictionary_id": "dict1", "version_id": "ver1"},
        {"pronunciation_dictionary_id": "dict2"},
    ]
    assert "xi_api_key" not in bos  # the key travels in the header only
    assert eos == {"text": ""}
    spoken = [m for m in texts if m["text"].strip()]
    assert [m["text"] for m in spoken] == ["First sentence. ", "Second sentence. "]
    assert all(m.get("flush") and m.get("try_trigger_generation") for m in spoken)
    assert all(m["text"].endswith(" ") and not m["text"].endswith("  ") for m in spoken)


@pytest.mark.parametrize(("policy", "flushes"), [("end", 0), ("never", 0), ("sentence", 3), ("paragraph", 1)])
def test_flush_policy(scripted: Any, policy: str, flushes: int) -> None:
    text = "One. Two.\n\nThree."
    result = speak("--url", scripted.url, "--flush", policy, "-q", "--name", policy, text)
    assert result.exit_code == 0
    sent = [m for m in scripted.messages[1:] if m.get("text", "").strip()]
    assert sum(bool(m.get("flush")) for m in sent) == flushes
    assert scripted.messages[-1] == {"text": ""}  # the end of input always comes


def test_default_voice_settings_are_not_sent(scripted: Any) -> None:
    assert speak("--url", scripted.url, "-q", "Hi.").exit_code == 0
    assert scripted.messages[0] == {"text": " "}


@pytest.mark.parametrize(
    ("args", "sent"),
    [
        (["--speed", "1.1"], {"speed": 1.1}),
        (["--stability", "0.2", "--no-speaker-boost"], {"stability": 0.2, "use_speaker_boost": False}),
    ],
)
def test_only_the_voice_settings_given_are_sent(scripted: Any, args: list[str], sent: dict[str, Any]) -> None:
    # Defaults for the others would override the voice's saved settings on the live service.
    assert speak("--url", scripted.url, "-q", *args, "Hi.").exit_code == 0
    assert scripted.messages[0] == {"text": " ", "voice_settings": sent}


@pytest.mark.parametrize("scripted", ["drop"], indirect=True)
def test_dropped_connection_keeps_the_part_and_exits_8(scripted: Any) -> None:
    result = speak("--url", scripted.url, "--name", "dropped", "-q", "Words that will not all arrive.")
    assert result.exit_code == ExitCode.DROPPED
    assert "dropped" in result.stderr and "dropped.mp3.part" in result.stderr
    assert Path("output/dropped.mp3.part").stat().st_size > 0
    assert not Path("output/dropped.mp3").exists()
    stats = json.loads(Path("output/dropped.json").read_text())
    assert stats["ok"] is False


@pytest.mark.parametrize("scripted", ["error"], indirect=True)
def test_server_error_frame_is_shown_with_exit_7(scripted: Any) -> None:
    result = speak("--url", scripted.url, "-q", "Text.")
    assert result.exit_code == ExitCode.SERVER
    assert "quota_exceeded: Scripted failure." in result.stderr


@pytest.mark.parametrize("scripted", ["timeout"], indirect=True)
def test_inactivity_timeout_from_the_server_exits_9(scripted: Any) -> None:
    result = speak("--url", scripted.url, "-q", "Text.")
    assert result.exit_code == ExitCode.INACTIVITY
    assert "input_timeout_exceeded" in result.stderr


def test_keepalives_are_sent_while_stdin_is_silent(scripted: Any) -> None:
    with _piped_elevtts(
        "speak",
        "-",
        "--url",
        scripted.url,
        "--inactivity-timeout",
        "2",
        "-q",
        "--name",
        "ka",
    ) as process:
        assert process.stdin is not None
        process.stdin.write(b"Before the pause. ")
        process.stdin.flush()
        time.sleep(3.5)
        process.stdin.write(b"After it.")
        process.stdin.close()
        assert process.wait(timeout=30) == 0
    keepalives = [m for m in scripted.messages[1:] if m == {"text": " "}]
    assert len(keepalives) >= 2
    assert [m["text"] for m in scripted.messages if m.get("text", "").strip()] == [
        "Before the pause. ",
        "After it. ",
    ]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Any:
    """A 64 KiB filesystem, to run out of space for real (needs root and mount; skipped otherwise)."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=False)


def test_full_disk_is_an_output_error_and_keeps_the_part(local_server: str, tiny_disk: Path) -> None:
    text = "This text makes far more audio than a tiny disk can hold. " * 8
    result = speak(
        "--url",
        local_server,
        "--voice",
        "espeak",
        "--output-dir",
        str(tiny_disk),
        "--name",
        "big",
        "--output-format",
        "pcm_44100",
        "-q",
        text,
    )
    assert result.exit_code == ExitCode.OUTPUT
    assert "No space left on device" in result.stderr and "big.pcm.part" in result.stderr
    assert (tiny_disk / "big.pcm.part").exists() and not (tiny_disk / "big.pcm").exists()


def test_play_without_a_player_says_so_and_still_saves(
    local_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    result = speak(
        "--url", local_server, "--voice", "espeak", "--play", "--name", "np", "Nothing to play on."
    )
    assert result.exit_code == 0
    assert "no player program found; playing in-process with miniaudio" in result.stderr
    assert Path("output/np.mp3").exists()


class CuttingProxy:
    """Forwards TCP to a server, and cuts the first connection once it has carried `cut_after`
    bytes back to the client (no close frame: a dropped connection)."""

    def __init__(self, upstream: str, cut_after: int) -> None:
        self.host, port = upstream.removeprefix("ws://").split(":")
        self.port = int(port)
        self.cut_after = cut_after
        self.connections = 0

    async def handle(self, client_reader: Any, client_writer: Any) -> None:
        import asyncio

        self.connections += 1
        cut = self.connections == 1
        server_reader, server_writer = await asyncio.open_connection(self.host, self.port)

        async def pipe(reader: Any, writer: Any, *, count: bool) -> None:
            carried = 0
            try:
                while data := await reader.read(4096):
                    carried += len(data)
                    if count and cut and carried > self.cut_after:
                        client_writer.transport.abort()
                        server_writer.transport.abort()
                        return
                    writer.write(data)
                    await writer.drain()
            except ConnectionError:
                pass
            finally:
                writer.close()

        await asyncio.gather(
            pipe(client_reader, server_writer, count=False), pipe(server_reader, client_writer, count=True)
        )


def test_a_dropped_connection_is_resumed_from_the_confirmed_audio(local_server: str) -> None:
    import asyncio

    proxy = CuttingProxy(local_server, cut_after=60_000)

    async def factory() -> tuple[Any, str]:
        server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
        return server, f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    thread = ServerThread(factory)
    url = thread.start()
    text = " ".join(
        f"Sentence number {n} is spoken exactly once, never lost and never repeated." for n in range(8)
    )
    common = ("--voice", "espeak", "--output-format", "pcm_16000", "--subtitles", "json")
    try:
        result = speak("--url", url, "--name", "resumed", *common, "--json", text)
    finally:
        thread.stop()
    assert result.exit_code == 0, result.stderr
    assert "reconnecting" in result.stderr
    stats = json.loads(result.stdout)
    assert stats["reconnects"] == 1 and proxy.connections == 2
    words = [w["text"] for w in json.loads(Path("output/resumed.words.json").read_text())["words"]]
    assert words == text.split()
    reference = speak("--url", local_server, "--name", "direct", *common, text)
    assert reference.exit_code == 0
    resumed_s = Path("output/resumed.pcm").stat().st_size / 32000
    direct_s = Path("output/direct.pcm").stat().st_size / 32000
    assert resumed_s == pytest.approx(direct_s, rel=0.1)


@pytest.mark.parametrize(
    ("confirmed", "rest", "restart"),
    [
        (0, "One two. Three four. ", 0),
        (3, "two. Three four. ", 3),
        (5, "two. Three four. ", 3),
        (7, "Three four. ", 7),
        (8, "Three four. ", 7),
        (16, "four. ", 12),
        (17, "", 17),
    ],
)
def test_unconfirmed_text_restarts_at_a_word(confirmed: int, rest: str, restart: int) -> None:
    from elevtts.speak import SendPolicy, _Sender

    sender = _Sender(SendPolicy(), 10.0, lambda n: None)
    sender.sent = ["One two. ", "Three four. "]
    assert sender.unconfirmed(confirmed) == (rest, restart)
