"""`elevtts bench`: real servers on loopback port 0 (the local one with espeak, and tiny scripted ones).

The scripted servers say exactly what a misbehaving service might: an error frame, or a frame whose
`audio` is null or empty before the real audio. Behaviour only: counts, order, units, never speed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ServerThread, run_local_server
from websockets.asyncio.server import ServerConnection, serve

from elevtts.bench import BenchSetting, histogram, messages_for, percentile, run_bench, summarize
from elevtts.cli.exit_codes import ExitCode
from elevtts.client import Endpoint
from elevtts.server.app import ServerConfig

REPO = Path(__file__).resolve().parents[1]
TEXT = "The quick brown fox jumps over the lazy dog. It was a bright cold day in April. The end."
NULL_AUDIO_DELAY_S = 0.3  # the scripted server waits this long between its null frame and real audio


def _env() -> dict[str, str]:
    """This environment without elevtts settings or a key, so nothing reaches the live service."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ELEVTTS_", "ELEVENLABS_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def bench_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "elevtts", "bench", *args],
        cwd=cwd,
        env=_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
    )


@pytest.fixture(scope="module")
def espeak_server() -> Iterator[str]:
    thread, url = run_local_server(ServerConfig(port=0, voices=("espeak",)))
    yield url
    thread.stop()


Handler = Callable[[ServerConnection], Awaitable[None]]


@contextlib.contextmanager
def scripted_server(handler: Handler) -> Iterator[str]:
    """A websockets server on port 0 that runs `handler` for every connection."""

    async def factory() -> tuple[Any, str]:
        server = await serve(handler, "127.0.0.1", 0)
        port = next(iter(server.sockets)).getsockname()[1]
        return server, f"ws://127.0.0.1:{port}"

    thread = ServerThread(factory)
    url = thread.start()
    try:
        yield url
    finally:
        thread.stop()


async def _until_end_of_text(websocket: ServerConnection) -> None:
    async for raw in websocket:
        if json.loads(raw).get("text") == "":
            return


async def error_frame_handler(websocket: ServerConnection) -> None:
    """Answers the first text with an error frame (that has an `audio` key, null) and closes 1008."""
    await websocket.recv()  # the opener
    await websocket.recv()  # the first text
    await websocket.send(
        json.dumps({"audio": None, "error": "quota_exceeded", "message": "no credits left", "code": 1008})
    )
    await websocket.close(1008, "quota_exceeded")


MP3_SILENCE = bytes.fromhex("fffb9064") + bytes(413)  # one MPEG-1 layer III frame header + zeros


async def null_audio_handler(websocket: ServerConnection) -> None:
    """A null-audio frame and an empty-audio frame at once, the real audio only later."""
    await websocket.recv()
    await websocket.recv()
    await websocket.send(json.dumps({"audio": None, "isFinal": None, "alignment": None}))
    await websocket.send(json.dumps({"audio": "", "isFinal": None, "alignment": None}))
    await asyncio.sleep(NULL_AUDIO_DELAY_S)
    await websocket.send(json.dumps({"audio": base64.b64encode(MP3_SILENCE).decode(), "isFinal": None}))
    await _until_end_of_text(websocket)
    await websocket.send(json.dumps({"isFinal": True}))
    await websocket.close()


# ---------------------------------------------------------------------------------------------
# The library against the real local server


def test_every_trial_runs_on_its_own_connection_with_audio(espeak_server: str) -> None:
    setting = BenchSetting(voice_id="espeak", output_format="pcm_22050")
    report = asyncio.run(run_bench(Endpoint(espeak_server), [setting], TEXT, trials=3))
    [result] = report.results
    assert [t.index for t in result.trials] == [0, 1, 2]
    assert result.errors == []
    for trial in result.trials:
        assert trial.connect_ms is not None and trial.connect_ms > 0
        assert trial.ttfb_ms is not None and 0 < trial.ttfb_ms <= trial.total_ms
        assert trial.audio_frames > 0
        # pcm_22050 is 44,100 bytes a second: the audio seconds are the byte count's.
        assert trial.audio_s == pytest.approx(trial.audio_bytes / 44100)
        assert trial.audio_s > 2  # three sentences of speech
        assert trial.real_time_factor == pytest.approx(trial.audio_s / (trial.total_ms / 1000))
    assert report.exit_code == ExitCode.OK


def test_a_flush_per_sentence_gives_one_latency_per_sentence(espeak_server: str) -> None:
    setting = BenchSetting(voice_id="espeak", flush="sentence")
    report = asyncio.run(run_bench(Endpoint(espeak_server), [setting], TEXT, trials=2))
    for trial in report.results[0].trials:
        assert trial.ok
        assert len(trial.flush_latencies_ms) == 3
        assert all(latency > 0 for latency in trial.flush_latencies_ms)


def test_settings_alternate_and_concurrent_trials_are_all_counted(espeak_server: str) -> None:
    settings = [
        BenchSetting(voice_id="espeak", schedule=(50,)),
        BenchSetting(voice_id="espeak", schedule=(120, 160), endpoint="multi"),
    ]
    report = asyncio.run(run_bench(Endpoint(espeak_server), settings, TEXT, trials=5, concurrency=3))
    assert [len(r.trials) for r in report.results] == [5, 5]
    assert all(t.ok and t.audio_bytes > 0 for r in report.results for t in r.trials)
    assert [r.setting.schedule for r in report.results] == [(50,), (120, 160)]


# ---------------------------------------------------------------------------------------------
# Honest counting against scripted servers


def test_error_frames_are_errors_never_audio_and_every_trial_is_reported() -> None:
    with scripted_server(error_frame_handler) as url:
        report = asyncio.run(run_bench(Endpoint(url), [BenchSetting(voice_id="any")], TEXT, trials=3))
    trials = report.results[0].trials
    assert len(trials) == 3
    for trial in trials:
        assert not trial.ok
        assert trial.error_name == "quota_exceeded"
        assert "no credits left" in (trial.error or "")
        assert trial.ttfb_ms is None
        assert trial.audio_frames == 0 and trial.audio_bytes == 0 and trial.audio_s is None
    assert report.results[0].summary("ttfb_ms") is None
    assert report.exit_code == ExitCode.SERVER


def test_a_null_or_empty_audio_frame_is_not_first_audio() -> None:
    with scripted_server(null_audio_handler) as url:
        report = asyncio.run(run_bench(Endpoint(url), [BenchSetting(voice_id="any")], TEXT, trials=2))
    for trial in report.results[0].trials:
        assert trial.ok
        assert trial.audio_frames == 1
        assert trial.audio_bytes == len(MP3_SILENCE)
        # The null and empty frames came at once; TTFB waits for the frame with audio.
        assert trial.ttfb_ms is not None and trial.ttfb_ms >= NULL_AUDIO_DELAY_S * 1000


# ---------------------------------------------------------------------------------------------
# The command


def test_json_names_each_setting_and_puts_units_in_keys(espeak_server: str, tmp_path: Path) -> None:
    result = bench_cli(
        "--url", espeak_server, "--voice", "espeak", "--trials", "2", "--text", TEXT,
        "--schedule", "50", "--schedule", "120,160,250", "--compare-auto-mode", "--json",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["text_chars"] == len(TEXT)
    compared = [(r["setting"]["schedule"], r["setting"]["auto_mode"]) for r in data["results"]]
    assert compared == [([50], False), ([50], True), ([120, 160, 250], False), ([120, 160, 250], True)]
    for setting_result in data["results"]:
        assert setting_result["trials_run"] == 2 and setting_result["errors"] == 0
        assert setting_result["setting"]["label"].startswith("schedule ")
        ttfb = setting_result["summary"]["ttfb_ms"]
        assert set(ttfb) == {"count", "min", "p50", "p95", "p99", "max"}
        assert all(isinstance(v, int | float) and v > 0 for v in ttfb.values())
        assert ttfb["min"] <= ttfb["p50"] <= ttfb["p95"] <= ttfb["p99"] <= ttfb["max"]
        for trial in setting_result["trials"]:
            assert {"connect_ms", "ttfb_ms", "total_ms", "audio_s", "real_time_factor"} <= set(trial)
            assert isinstance(trial["ttfb_ms"], float) and isinstance(trial["audio_s"], float)
    # The table went to stderr, once per setting and side by side.
    for label in [r["setting"]["label"] for r in data["results"]]:
        assert result.stderr.count(label) >= 2  # in the comparison and as its own table's title
    assert result.stderr.count("p99") == 4 and result.stderr.count("ttfb_ms histogram") == 4


def test_embedded_server_is_used_without_url_or_key(tmp_path: Path) -> None:
    result = bench_cli("--voice", "espeak", "-n", "2", "--text", "Hello there.", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["target"] == "embedded local server"
    assert data["results"][0]["trials_ok"] == 2


def test_against_serve_port_0(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "elevtts", "serve", "--port", "0", "--voice", "espeak"],
        cwd=tmp_path,
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("ws://"), url
        result = bench_cli("--url", url, "--voice", "espeak", "-n", "2", "--json", cwd=tmp_path)
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["results"][0]["trials_ok"] == 2


def test_failing_trials_exit_with_their_code_after_reporting_all(tmp_path: Path) -> None:
    with scripted_server(error_frame_handler) as url:
        result = bench_cli("--url", url, "-n", "3", "--json", cwd=tmp_path)
    assert result.returncode == ExitCode.SERVER
    data = json.loads(result.stdout)
    assert data["results"][0]["errors"] == 3
    assert result.stderr.count("quota_exceeded") >= 3
    assert "Traceback" not in result.stderr


def test_http_endpoint_is_refused_with_exit_2(tmp_path: Path) -> None:
    result = bench_cli("--endpoint", "http", cwd=tmp_path)
    assert result.returncode == ExitCode.USAGE
    assert result.stderr.strip().splitlines() == [
        "elevtts: error: --endpoint http is not available yet: the HTTP text-to-speech endpoints "
        "do not exist; use ws or multi"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--schedule", "10,20"), "--schedule value 10 is outside 50-500"),
        (("--schedule", "a,b"), "--schedule takes whole numbers separated by commas"),
        (("--output-format", "mp3_1_2"), "--output-format: unknown output_format"),
        (("--text", "   "), "the text to speak is empty"),
        (("--file", "missing.txt"), "cannot read missing.txt"),
    ],
)
def test_bad_options_get_one_line_and_no_traceback(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = bench_cli(*args, cwd=tmp_path)
    assert result.returncode in (ExitCode.USAGE, ExitCode.INPUT)
    [line] = result.stderr.strip().splitlines()
    assert message in line


def test_the_key_is_never_printed(tmp_path: Path) -> None:
    key = "sk-bench-secret-4242"
    with scripted_server(error_frame_handler) as url:
        result = subprocess.run(
            [sys.executable, "-m", "elevtts", "bench", "--url", url, "-n", "1", "--json"],
            cwd=tmp_path,
            env=_env() | {"ELEVENLABS_API_KEY": key},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == ExitCode.SERVER
    assert key not in result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------
# The pure parts


def test_percentiles_and_summary() -> None:
    values = [float(x) for x in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    summary = summarize([3.0, 1.0, 2.0])
    assert summary is not None
    assert (summary.min, summary.p50, summary.max, summary.count) == (1.0, 2.0, 3.0, 3)
    assert summarize([]) is None


def test_histogram_counts_every_value() -> None:
    bars = histogram([1.0, 1.5, 2.0, 10.0], bins=3)
    assert [count for *_, count in bars] == [3, 0, 1]
    assert bars[0][0] == 1.0 and bars[-1][1] == pytest.approx(10.0)


def test_messages_word_by_word_or_whole() -> None:
    words = messages_for("One two. Three.", BenchSetting(voice_id="x"))
    assert words == [("One ", False), ("two. ", False), ("Three. ", True)]
    per_sentence = messages_for("One two. Three.", BenchSetting(voice_id="x", flush="sentence"))
    assert [flush for _, flush in per_sentence] == [False, True, True]
    whole = messages_for("One two.\n Three.", BenchSetting(voice_id="x", send="whole"))
    assert whole == [("One two. Three. ", True)]


def test_a_slow_trial_is_timed_from_its_own_start() -> None:
    """Concurrent trials each measure their own connection (no shared clock between them)."""
    started = time.monotonic()

    async def slow_handler(websocket: ServerConnection) -> None:
        await websocket.recv()
        await websocket.recv()
        await asyncio.sleep(0.2)
        await websocket.send(json.dumps({"audio": base64.b64encode(MP3_SILENCE).decode()}))
        await _until_end_of_text(websocket)
        await websocket.send(json.dumps({"isFinal": True}))

    with scripted_server(slow_handler) as url:
        report = asyncio.run(
            run_bench(Endpoint(url), [BenchSetting(voice_id="any")], TEXT, trials=4, concurrency=4)
        )
    elapsed_ms = (time.monotonic() - started) * 1000
    for trial in report.results[0].trials:
        assert trial.ok and trial.ttfb_ms is not None
        assert 200 <= trial.ttfb_ms <= trial.total_ms <= elapsed_ms
