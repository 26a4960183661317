"""`elevtts batch` end to end against real servers on loopback, plus its pure parts.

Faults come from real places: a server stopped mid-run, a real Ctrl-C (SIGINT) to a real
process, and engines registered through the engine registry that block or fail on cue.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conftest import ServerThread, assert_speech, decode_mp3, run_local_server
from rich.console import Console
from typer.testing import CliRunner

from elevtts.batch.inputs import BatchInput, OutputLayout, assign_names, discover_inputs, safe_component
from elevtts.batch.manifest import DONE, FAILED, INTERRUPTED, MANIFEST_NAME, Manifest, ManifestEntry
from elevtts.batch.progress import BatchPlan, RichBatchProgress
from elevtts.batch.runner import run_batch
from elevtts.cli import app
from elevtts.client import Endpoint, StreamOptions
from elevtts.errors import (
    AuthenticationError,
    ConnectError,
    ConnectionDropped,
    InactivityTimeout,
    IncompleteAudio,
    InputError,
    ServerError,
)
from elevtts.retry import Backoff, is_retryable, retry_hint
from elevtts.server import engines
from elevtts.server.app import ServerConfig
from elevtts.server.engines import (
    ESPEAK_VOICE,
    Engine,
    Speech,
    SynthesisOptions,
    Voice,
    get_engine,
    register_engine,
)
from elevtts.speak import SendPolicy

runner = CliRunner()
ESPEAK = ["--voice", "espeak"]


def batch(*args: Any, input: str | None = None) -> Any:
    return runner.invoke(app, ["batch", *map(str, args)], input=input)


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))


def statuses(out: Path) -> dict[str, str]:
    return {Path(key).name: entry["status"] for key, entry in manifest(out)["files"].items()}


def mtimes(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*.mp3")}


def words(text: str) -> int:
    return len(text.split())


# ---------------------------------------------------------------------------------------------
# Engines on cue, through the registry


class GateEngine:
    """espeak, except that a piece containing "Gate" waits until the test opens the gate."""

    voice = Voice("batch-gate", "Gate", "espeak", "en", ESPEAK_VOICE.sample_rate, "espeak with a gate")
    entered = threading.Event()
    opened = threading.Event()

    def synthesize(self, text: str, options: SynthesisOptions) -> Speech:
        if "Gate" in text:
            type(self).entered.set()
            type(self).opened.wait(timeout=30)
        return get_engine("espeak").synthesize(text, options)


class FlakyEngine:
    """espeak, except: "Flaky" fails the first time it is seen, "Poison" always fails, "Silent" is silent."""

    voice = Voice("batch-flaky", "Flaky", "espeak", "en", ESPEAK_VOICE.sample_rate, "espeak that fails")
    seen: ClassVar[set[str]] = set()

    def synthesize(self, text: str, options: SynthesisOptions) -> Speech:
        if "Poison" in text or ("Flaky" in text and text not in self.seen):
            self.seen.add(text)
            raise RuntimeError("the engine failed on cue")
        if "Silent" in text:
            return Speech.empty(self.voice.sample_rate)
        return get_engine("espeak").synthesize(text, options)


@pytest.fixture(scope="module")
def fake_voices(local_server: str) -> Iterator[None]:
    """Registered after the shared server started, removed afterwards (there is no public unregister)."""
    factories: list[tuple[Voice, type[Engine]]] = [
        (GateEngine.voice, GateEngine),
        (FlakyEngine.voice, FlakyEngine),
    ]
    for voice, factory in factories:
        register_engine(voice, factory)
    yield
    GateEngine.opened.set()
    for voice, _ in factories:
        engines._REGISTRY.pop(voice.voice_id, None)


@pytest.fixture
def own_server(fake_voices: None) -> Iterator[tuple[ServerThread, str]]:
    GateEngine.entered.clear()
    GateEngine.opened.clear()
    FlakyEngine.seen.clear()
    thread, url = run_local_server(ServerConfig(port=0, voices=("espeak", "batch-gate", "batch-flaky")))
    yield thread, url
    GateEngine.opened.set()
    thread.stop()


# ---------------------------------------------------------------------------------------------
# A directory, two jobs, the report and the manifest

TEXTS = {
    "one.txt": "The first chapter begins on a quiet morning.",
    "two.txt": "A second file, spoken at the same time as the first.",
    "notes.md": "# Notes\n\nThis is **markdown**, spoken without its marks.",
    "part/three.txt": "A nested file keeps its folder in the output.",
}


def make_tree(root: Path) -> Path:
    for name, text in TEXTS.items():
        write(root / name, text)
    write(root / "skip.json", '{"not": "text"}')  # not matched by the default patterns
    write(root / ".hidden/secret.txt", "hidden directories are not entered")
    return root


def test_a_directory_is_converted_with_two_jobs(tmp_path: Path, local_server: str) -> None:
    src, out = make_tree(tmp_path / "src"), tmp_path / "out"
    result = batch(src, "--url", local_server, *ESPEAK, "-d", out, "--jobs", "2", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["interrupted"] is False
    assert report["totals"]["files"] == 4 and report["totals"]["done"] == 4
    assert report["totals"]["audio_seconds"] > 5
    for file in report["files"]:
        assert set(file) == {
            "input",
            "output",
            "status",
            "ttfb_ms",
            "audio_seconds",
            "real_time_factor",
            "error",
            "attempts",
            "chars",
            "reason",
        }
        assert file["status"] == "done" and file["attempts"] == 1 and file["error"] is None
        assert file["ttfb_ms"] > 0 and file["audio_seconds"] > 0 and file["real_time_factor"] > 0
    expected = {"one.mp3", "two.mp3", "notes.mp3", "part/three.mp3"}
    assert set(mtimes(out)) == expected
    for name, text in TEXTS.items():
        audio = out / Path(name).with_suffix(".mp3")
        spoken = text.replace("#", "").replace("*", "")
        assert_speech(*decode_mp3(audio.read_bytes()), words=words(spoken))
        assert json.loads(audio.with_suffix(".json").read_text())["ok"] is True  # the stats sidecar
    assert not list(out.rglob("*.part"))
    assert not (out / ".hidden").exists() and not (out / "skip.mp3").exists()


def test_manifest_records_hashes_settings_status_and_stats(tmp_path: Path, local_server: str) -> None:
    src, out = make_tree(tmp_path / "src"), tmp_path / "out"
    assert batch(src, "--url", local_server, *ESPEAK, "-d", out, "--speed", "1.1").exit_code == 0
    data = manifest(out)
    assert data["format"] == "elevtts-batch-manifest" and data["version"] == 1
    entries = data["files"]
    assert set(entries) == {str(src / name) for name in TEXTS}
    one = entries[str(src / "one.txt")]
    assert one["content_sha256"] == hashlib.sha256((src / "one.txt").read_bytes()).hexdigest()
    assert one["status"] == "done" and one["attempts"] == 1 and one["error"] is None
    assert one["name"] == "one"
    assert one["files"] == {"audio": "one.mp3", "stats": "one.json"}
    assert one["audio_bytes"] == (out / "one.mp3").stat().st_size
    assert set(one["stats"]) >= {"ttfb_ms", "audio_seconds", "real_time_factor"}
    settings = data["settings"][one["settings_sha256"]]
    assert settings["voice_id"] == "espeak" and settings["voice_settings"]["speed"] == 1.1
    assert settings["strip_markdown"] is False
    notes = entries[str(src / "notes.md")]
    assert data["settings"][notes["settings_sha256"]]["strip_markdown"] is True  # .md: its own settings
    text = (out / MANIFEST_NAME).read_text()
    assert "target" not in settings and "127.0.0.1" not in text  # the server is not an audio setting


def test_rerun_skips_unchanged_redoes_changed_new_and_missing(tmp_path: Path, local_server: str) -> None:
    src, out = make_tree(tmp_path / "src"), tmp_path / "out"
    assert batch(src, "--url", local_server, *ESPEAK, "-d", out).exit_code == 0
    before = mtimes(out)
    write(src / "two.txt", "The second file was edited since the last run.")
    write(src / "four.txt", "A file that is new.")
    (out / "part/three.mp3").unlink()
    time.sleep(0.01)
    result = batch(src, "--url", local_server, *ESPEAK, "-d", out, "--json")
    assert result.exit_code == 0, result.stderr
    reasons = {Path(f["input"]).name: (f["status"], f["reason"]) for f in json.loads(result.stdout)["files"]}
    assert reasons == {
        "one.txt": ("skipped", "unchanged"),
        "notes.md": ("skipped", "unchanged"),
        "two.txt": ("done", "changed text"),
        "three.txt": ("done", "output missing"),
        "four.txt": ("done", "new"),
    }
    after = mtimes(out)
    assert after["one.mp3"] == before["one.mp3"] and after["notes.mp3"] == before["notes.mp3"]
    assert after["two.mp3"] != before["two.mp3"]
    samples, rate = decode_mp3((out / "two.mp3").read_bytes())
    assert_speech(samples, rate, words=8)

    changed = batch(
        src, "--url", local_server, *ESPEAK, "-d", out, "--speed", "1.2", "--json"
    )  # new settings
    assert {f["reason"] for f in json.loads(changed.stdout)["files"]} == {"changed settings"}
    forced = batch(src, "--url", local_server, *ESPEAK, "-d", out, "--speed", "1.2", "--force", "--json")
    assert {f["reason"] for f in json.loads(forced.stdout)["files"]} == {"forced"}


def test_a_file_the_manifest_does_not_know_is_not_overwritten_without_force(
    tmp_path: Path, local_server: str
) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    write(src / "mine.txt", "Speak this.")
    write(out / "mine.mp3", b"someone else's audio")
    result = batch(src, "--url", local_server, *ESPEAK, "-d", out)
    assert result.exit_code == 10
    assert "not in the manifest" in result.stderr
    assert (out / "mine.mp3").read_bytes() == b"someone else's audio"
    again = batch(src, "--url", local_server, *ESPEAK, "-d", out, "--retry-failed")
    assert again.exit_code == 10 and (out / "mine.mp3").read_bytes() == b"someone else's audio"
    assert batch(src, "--url", local_server, *ESPEAK, "-d", out, "--force").exit_code == 0
    assert_speech(*decode_mp3((out / "mine.mp3").read_bytes()), words=2)


# ---------------------------------------------------------------------------------------------
# Faults


def test_failing_files_do_not_stop_the_others_and_exit_10(
    tmp_path: Path, own_server: tuple[ServerThread, str]
) -> None:
    _, url = own_server
    src, out = tmp_path / "src", tmp_path / "out"
    write(src / "a-good.txt", "This file is fine.")
    write(src / "b-latin1.txt", "caf\xe9 au lait".encode("latin-1"))
    write(src / "c-poison.txt", "Poison stops this one every time.")
    write(src / "d-flaky.txt", "Flaky servers fail once, then work.")
    write(src / "e-good.txt", "And this file is fine too.")
    write(src / "f-silent.txt", "Silent servers send no audio at all.")
    result = batch(src, "--url", url, "--voice", "batch-flaky", "-d", out, "--retries", "1", "--json")
    assert result.exit_code == 10
    assert "3 of 6 files failed" in result.stderr
    files = {Path(f["input"]).name: f for f in json.loads(result.stdout)["files"]}
    assert files["b-latin1.txt"]["status"] == "failed" and files["b-latin1.txt"]["attempts"] == 0
    assert "not UTF-8" in files["b-latin1.txt"]["error"]
    assert files["c-poison.txt"]["status"] == "failed" and files["c-poison.txt"]["attempts"] == 2
    assert "internal_error" in files["c-poison.txt"]["error"]
    assert files["d-flaky.txt"]["status"] == "done" and files["d-flaky.txt"]["attempts"] == 2  # retried: 1011
    for name in ("a-good.txt", "d-flaky.txt", "e-good.txt"):
        assert files[name]["status"] == "done"
        audio = out / Path(name).with_suffix(".mp3")
        assert_speech(*decode_mp3(audio.read_bytes()), words=words((src / name).read_text()))
    assert files["f-silent.txt"]["status"] == "failed" and files["f-silent.txt"]["attempts"] == 2
    assert "no audio" in files["f-silent.txt"]["error"]
    assert not any(
        (out / f"{name}.mp3").exists() for name in ("b-latin1", "c-poison", "f-silent")
    )  # no holes
    assert statuses(out) == {
        "a-good.txt": DONE,
        "b-latin1.txt": FAILED,
        "c-poison.txt": FAILED,
        "d-flaky.txt": DONE,
        "e-good.txt": DONE,
        "f-silent.txt": FAILED,
    }
    again = batch(src, "--url", url, "--voice", "batch-flaky", "-d", out, "--json")  # failed stay failed
    assert again.exit_code == 10
    states = {Path(f["input"]).name: (f["status"], f["attempts"]) for f in json.loads(again.stdout)["files"]}
    assert states["c-poison.txt"] == ("failed", 0) and states["a-good.txt"] == ("skipped", 0)
    write(src / "c-poison.txt", "The poison was edited out.")
    fixed = batch(src, "--url", url, "--voice", "batch-flaky", "-d", out, "--json")  # changed text: redone
    assert fixed.exit_code == 10  # the latin-1 file is still failed
    assert statuses(out)["c-poison.txt"] == DONE


def test_a_refused_key_stops_the_batch(tmp_path: Path, keyed_server: str) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    for n in range(5):
        write(src / f"f{n}.txt", f"File number {n}.")
    result = batch(src, "--url", keyed_server, "--api-key", "wrong", *ESPEAK, "-d", out, "--json")
    assert result.exit_code == 6, result.stderr
    assert "wrong" not in result.stderr + result.stdout
    report = json.loads(result.stdout)
    assert report["totals"]["not_started"] >= 3 and report["totals"]["done"] == 0
    assert all(f["attempts"] <= 1 for f in report["files"])  # not retried


def test_server_stopped_mid_run_then_a_rerun_completes_only_what_was_missing(
    tmp_path: Path, own_server: tuple[ServerThread, str]
) -> None:
    thread, url = own_server
    src, out = tmp_path / "src", tmp_path / "out"
    long_start = "One two three four five six seven eight nine ten eleven twelve. " * 2
    write(src / "a.txt", "The first file is finished before the server goes away.")
    write(src / "b.txt", long_start + "Gate closes here, and the server stops.")
    write(src / "c.txt", "The third file finds no server.")
    write(src / "d.txt", "Nor does the fourth.")

    def stop_the_server_when_b_is_speaking() -> None:
        if GateEngine.entered.wait(timeout=30):
            deadline = time.monotonic() + 10
            while not (out / "b.mp3.part").exists() or not (out / "b.mp3.part").stat().st_size:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.02)

            async def close() -> None:
                thread.server.close()  # refuse new connections and close open ones (1001)

            thread.call(close())
        GateEngine.opened.set()

    stopper = threading.Thread(target=stop_the_server_when_b_is_speaking)
    stopper.start()
    result = batch(src, "--url", url, "--voice", "batch-gate", "-d", out, "--jobs", "1", "--retries", "1")
    stopper.join()
    assert result.exit_code == 10, result.stderr
    assert statuses(out) == {"a.txt": DONE, "b.txt": FAILED, "c.txt": FAILED, "d.txt": FAILED}
    assert (out / "b.mp3.part").stat().st_size > 0 and not (out / "b.mp3").exists()  # partial, never final
    entries = {Path(k).name: v for k, v in manifest(out)["files"].items()}
    assert entries["b.txt"]["attempts"] == 2  # dropped (1001), retried, then no server at all
    done_before = mtimes(out)

    healthy, healthy_url = run_local_server(ServerConfig(port=0, voices=("espeak", "batch-gate")))
    try:
        kept = batch(src, "--url", healthy_url, "--voice", "batch-gate", "-d", out)
        assert (
            kept.exit_code == 10 and "--retry-failed tries" in kept.stderr
        )  # failures are not retried silently
        result = batch(
            src, "--url", healthy_url, "--voice", "batch-gate", "-d", out, "--retry-failed", "--json"
        )
    finally:
        healthy.stop()
    assert result.exit_code == 0, result.stderr
    states = {Path(f["input"]).name: f["status"] for f in json.loads(result.stdout)["files"]}
    assert states == {"a.txt": "skipped", "b.txt": "done", "c.txt": "done", "d.txt": "done"}
    assert mtimes(out)["a.mp3"] == done_before["a.mp3"]
    assert statuses(out) == dict.fromkeys(("a.txt", "b.txt", "c.txt", "d.txt"), DONE)
    assert not list(out.rglob("*.part"))
    assert_speech(*decode_mp3((out / "b.mp3").read_bytes()), words=words((src / "b.txt").read_text()))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_cleanly_and_a_rerun_finishes_the_rest(
    tmp_path: Path, own_server: tuple[ServerThread, str], signum: int
) -> None:
    _, url = own_server
    src, out = tmp_path / "src", tmp_path / "out"
    write(src / "a.txt", "Finished before the interruption.")
    write(src / "b.txt", "One two three four five six seven eight nine ten. " * 3 + "Gate holds this one.")
    write(src / "c.txt", "Not started when the user pressed control C.")
    env = {k: v for k, v in os.environ.items() if k not in ("ELEVENLABS_API_KEY", "ELEVTTS_URL")}
    command = [sys.executable, "-m", "elevtts", "batch", "src", "--url", url, "--voice", "batch-gate"]
    process = subprocess.Popen(
        [*command, "-d", "out", "--jobs", "1", "--json"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert GateEngine.entered.wait(timeout=30), "b.txt never reached the server"
        deadline = time.monotonic() + 10
        while not ((out / "b.mp3.part").exists() and (out / "b.mp3.part").stat().st_size):
            assert time.monotonic() < deadline, "no partial audio for b.txt"
            time.sleep(0.02)
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        GateEngine.opened.set()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert "partial audio kept in out/b.mp3.part" in stderr
    assert "re-run the same command to resume" in stderr
    assert sorted(p.name for p in out.iterdir() if p.suffix in (".part", ".lock") and p.stem != "b.mp3") == []
    report = json.loads(stdout)  # the report is printed even when interrupted
    assert report["interrupted"] is True and report["ok"] is False
    assert [f["status"] for f in report["files"]] == ["done", INTERRUPTED, "not_started"]
    assert statuses(out) == {"a.txt": DONE, "b.txt": INTERRUPTED}  # c.txt was never started
    assert (out / "b.mp3.part").exists() and not (out / "b.mp3").exists()
    finished = mtimes(out)

    result = batch(src, "--url", url, "--voice", "batch-gate", "-d", out, "--jobs", "1", "--json")
    assert result.exit_code == 0, result.stderr
    reasons = {Path(f["input"]).name: (f["status"], f["reason"]) for f in json.loads(result.stdout)["files"]}
    assert reasons == {
        "a.txt": ("skipped", "unchanged"),
        "b.txt": ("done", "unfinished"),
        "c.txt": ("done", "new"),
    }
    assert mtimes(out)["a.mp3"] == finished["a.mp3"]
    assert not list(out.rglob("*.part"))


def test_an_interrupt_on_a_terminal_clears_the_live_lines(
    tmp_path: Path, own_server: tuple[ServerThread, str]
) -> None:
    """On a real terminal (a pty), SIGTERM mid-file: the live lines are erased, then the result."""
    import pty

    _, url = own_server
    write(tmp_path / "src" / "b.txt", "One two three four five six. " * 3 + "Gate holds this one.")
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("ELEVENLABS_API_KEY", "ELEVTTS_URL")}
    env.update(TERM="xterm", COLUMNS="100", LINES="30")
    process = subprocess.Popen(
        [sys.executable, "-m", "elevtts", "batch", "src", "--url", url, "--voice", "batch-gate", "-d", "out"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
    )  # fmt: skip
    os.close(follower)
    output = bytearray()
    try:
        assert GateEngine.entered.wait(timeout=30), "b.txt never reached the server"
        time.sleep(0.5)  # a few live refreshes
        process.send_signal(signal.SIGTERM)
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the pty closed: the process is gone
                break
            if not data:
                break
            output += data
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
        GateEngine.opened.set()
    assert process.returncode == 130, output.decode(errors="replace")
    assert " chars · audio ".encode() in output  # the live line was shown...
    tail = bytes(output).rsplit(b"\x1b[2K", 1)[1]  # ...and erased before the last lines
    assert b" chars \xc2\xb7 audio " not in tail
    assert b"re-run the same command to resume" in tail and b"Traceback" not in output


# ---------------------------------------------------------------------------------------------
# Names


def test_hostile_names_stay_inside_the_output_directory(tmp_path: Path, local_server: str) -> None:
    src, out, outside = tmp_path / "src", tmp_path / "out", tmp_path / "outside"
    outside.mkdir()
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    write(src / f"{nfc}.txt", "First cafe.")
    write(src / f"{nfd}.txt", "Second cafe.")
    write(src / "日本語.txt", "Unicode names are kept.")
    write(src / "back\\slash:colon.txt", "Separators are replaced.")
    write(src / "rtl\u202egnp.txt", "Bidirectional overrides are removed.")
    write(src / "elevtts-manifest.txt", "This must not replace the manifest.")
    write(src / "linked/escape.txt", "This would write outside through a link.")
    write(tmp_path / "x.txt", "Given as a path with dot dot.")
    write(tmp_path / "abs.txt", "Given as an absolute path.")
    out.mkdir()
    (out / "linked").symlink_to(outside, target_is_directory=True)
    listed = f"{src}/../x.txt\n"  # '-': paths on stdin, here with '..' in them
    result = batch(
        src, "-", tmp_path / "abs.txt", "--url", local_server, *ESPEAK, "-d", out, "--json", input=listed
    )
    assert result.exit_code == 10, result.stderr  # only the file behind the link fails
    files = {f["input"]: f for f in json.loads(result.stdout)["files"]}
    escape = files[str(src / "linked/escape.txt")]
    assert escape["status"] == "failed" and "outside" in escape["error"]
    assert list(outside.iterdir()) == []
    root = out.resolve()
    made = [p for p in out.rglob("*") if not p.is_symlink()]
    assert all(p.resolve().is_relative_to(root) for p in made)
    names = {p.name for p in out.iterdir()}
    assert {f"{nfc}.txt.mp3", f"{nfc}.txt-2.mp3"} <= names  # same name after NFC: told apart
    assert {"日本語.mp3", "back_slash_colon.mp3", "rtl_gnp.mp3", "x.mp3", "abs.mp3"} <= names
    assert "elevtts-manifest.txt.mp3" in names and manifest(out)["version"] == 1
    assert all(unicodedata.is_normalized("NFC", name) for name in names)


def test_same_stem_inputs_get_distinct_names_that_stick(tmp_path: Path) -> None:
    layout = OutputLayout("mp3")

    def inputs(*names: str) -> list[BatchInput]:
        for name in names:
            write(tmp_path / name, "x")
        return discover_inputs([tmp_path / n for n in names])

    first = assign_names(inputs("a.txt"), layout)
    assert list(first.values()) == ["a"]
    both = inputs("a.txt", "a.md")
    assert sorted(assign_names(both, layout).values()) == ["a.md", "a.txt"]
    old = Manifest(tmp_path / MANIFEST_NAME)
    key = both[0].key
    old.entries[key] = ManifestEntry(input=key, name="a", content_sha256="", settings_sha256="", status=DONE)
    sticky = assign_names(both, layout, old)
    assert sticky[key] == "a" and sticky[both[1].key] == "a.md"
    names = assign_names(inputs("x.txt", "x.words.txt"), OutputLayout("mp3", ("json",)))
    assert len(set(names.values())) == 2 and "x.words" not in names.values()  # x.words.json is x's subtitles


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("..", "_"),
        ("../etc", "_etc"),
        ("a/b", "a_b"),
        ("\x00nul", "_nul"),
        ("  .hidden ", "hidden"),
        ("é" * 100, "é" * 60),
    ],
)
def test_safe_component(raw: str, safe: str) -> None:
    assert safe_component(raw) == safe


def test_stdin_list_and_missing_paths(tmp_path: Path, local_server: str) -> None:
    write(tmp_path / "one.txt", "From a list on standard input.")
    write(tmp_path / "two.txt", "Separated by NUL bytes.")
    out = tmp_path / "out"
    listed = f"{tmp_path / 'one.txt'}\0{tmp_path / 'two.txt'}\0"
    result = batch("-", "--url", local_server, *ESPEAK, "-d", out, input=listed)
    assert result.exit_code == 0, result.stderr
    assert set(mtimes(out)) == {"one.mp3", "two.mp3"}
    missing = batch(tmp_path / "nope", "--url", local_server, *ESPEAK, "-d", out)
    assert missing.exit_code == 3 and "no such file" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    assert batch(empty, "--url", local_server, *ESPEAK, "-d", out).exit_code == 3


# ---------------------------------------------------------------------------------------------
# The embedded server, the library and its display


@pytest.mark.neural
def test_embedded_server_with_the_default_voice(tmp_path: Path) -> None:
    write(tmp_path / "src/hello.txt", "Hello from the embedded server.")
    result = batch(tmp_path / "src", "-d", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.stderr
    assert_speech(*decode_mp3((tmp_path / "out/hello.mp3").read_bytes()), words=5)
    settings = manifest(tmp_path / "out")["settings"]
    assert [s["voice_id"] for s in settings.values()] == ["joe"]


def test_library_with_the_rich_display(tmp_path: Path, local_server: str) -> None:
    src = make_tree(tmp_path / "src")
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    report = asyncio.run(
        run_batch(
            discover_inputs([src]),
            endpoint=Endpoint(local_server),
            options=StreamOptions(voice_id="espeak"),
            text_policy=SendPolicy(),
            markdown_policy=SendPolicy(strip_markdown=True),
            plan=BatchPlan(output_dir=tmp_path / "out", jobs=3),
            progress=RichBatchProgress(console),
        )
    )
    assert report.ok and report.count(DONE) == 4
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "[4/4] done" in shown and "batch: 4 done" in shown


# ---------------------------------------------------------------------------------------------
# Retry rules (pure)


def test_retry_rules() -> None:
    assert is_retryable(ConnectionDropped("dropped"))
    assert is_retryable(ConnectError("cannot connect to ws://x: Connection refused"))
    assert is_retryable(ConnectError("ws://x refused the connection: HTTP 429 slow down"))
    assert is_retryable(ConnectError("ws://x refused the connection: HTTP 503"))
    assert not is_retryable(ConnectError("ws://x refused the connection: HTTP 404 no such path"))
    assert is_retryable(ServerError("internal", error="internal_error", code=1011))
    assert is_retryable(ServerError("busy", error="system_busy", code=1008))
    assert is_retryable(ServerError("too many", error="too_many_concurrent_requests", code=1008))
    assert is_retryable(ServerError("going away", code=1001))
    assert is_retryable(IncompleteAudio("no audio"))
    assert not is_retryable(ServerError("bad", error="invalid_request", code=1008))
    assert not is_retryable(InactivityTimeout("idle", error="input_timeout_exceeded", code=1008))
    assert not is_retryable(AuthenticationError("no"))
    assert not is_retryable(InputError("not UTF-8"))


@pytest.mark.parametrize(
    ("message", "seconds"),
    [
        ('too_many_concurrent_requests: {"retry_after": 5}', 5.0),
        ("system_busy: retry_after=2.5", 2.5),
        ("HTTP 429 Retry-After: 7", 7.0),
        ("please try again in 500 ms", 0.5),
        ("Try again in 3 seconds.", 3.0),
        ("retry in 2 minutes", 120.0),
        ("internal_error: something broke", None),
    ],
)
def test_retry_hints(message: str, seconds: float | None) -> None:
    assert retry_hint(message) == seconds


def test_backoff_is_jittered_exponential_capped_and_honours_hints() -> None:
    backoff, rng = Backoff(), random.Random(4)
    for retry, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (6, 10.0), (12, 10.0)]:
        delays = [backoff.delay(retry, rng=rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1
    assert backoff.delay(1, 7.0, rng=rng) == 7.0
    assert backoff.delay(1, 600.0, rng=rng) == 60.0


# ---------------------------------------------------------------------------------------------
# kill -9 at any moment


def _final_audio(out: Path) -> dict[str, tuple[int, int]]:
    """Every final MP3 by name, with (inode, mtime): a file rewritten later changes both."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("*.mp3")}


def test_a_batch_killed_at_any_moment_finishes_on_rerun_without_redoing_anything(
    tmp_path: Path, local_server: str
) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    texts = {f"f{n:03}.txt": f"Short file number {n}." for n in range(160)}
    for name, text in texts.items():
        write(src / name, text)
    env = {k: v for k, v in os.environ.items() if k not in ("ELEVENLABS_API_KEY", "ELEVTTS_URL")}
    command = [sys.executable, "-m", "elevtts", "batch", "src", "--url", local_server, *ESPEAK]
    command += ["-d", "out", "-j", "4", "--json"]
    # SIGKILL once 2, 6, 12 and 20 more files than before are final (each round resumes the last)
    for more in (2, 6, 12, 20):
        before = len(_final_audio(out)) if out.exists() else 0
        process = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + 60
            while (len(_final_audio(out)) if out.exists() else 0) < before + more:
                assert process.poll() is None, process.communicate()[1].decode()
                assert time.monotonic() < deadline, "the batch made no progress"
                time.sleep(0.005)
        finally:
            process.kill()
            process.communicate()
    finished = _final_audio(out)
    assert len(finished) < len(texts)

    result = batch(src, "--url", local_server, *ESPEAK, "-d", out, "-j", "4", "--json")
    assert result.exit_code == 0, result.stderr
    report = {Path(f["input"]).name: f["status"] for f in json.loads(result.stdout)["files"]}
    expected = {f"f{n:03}.txt": "skipped" if f"f{n:03}.mp3" in finished else "done" for n in range(160)}
    assert report == expected  # the missing files exactly, never one that was already final
    assert statuses(out) == dict.fromkeys(texts, DONE)
    after = _final_audio(out)
    assert {name: after[name] for name in finished} == finished  # not rewritten
    assert not list(out.rglob("*.part"))
    for name in ("f000.txt", "f080.txt", "f159.txt"):
        samples, rate = decode_mp3((out / name.replace(".txt", ".mp3")).read_bytes())
        assert_speech(samples, rate, words=words(texts[name]))


def test_manifest_writes_run_in_a_thread_and_coalesce(tmp_path: Path) -> None:
    from elevtts.batch.manifest import ManifestWriter

    class CountingManifest(Manifest):
        threads: ClassVar[list[int]] = []

        def save(self, data: dict[str, Any] | None = None) -> None:
            self.threads.append(threading.get_ident())
            super().save(data)

    book = CountingManifest(tmp_path / MANIFEST_NAME)
    for n in range(1000):
        book.entries[f"f{n}"] = ManifestEntry(f"f{n}", f"f{n}", "c" * 64, "s" * 64, DONE)

    async def burst() -> int:
        writer = ManifestWriter(book)
        for n in range(200):  # 200 changes in one go
            book.entries[f"f{n}"].attempts = 1
            writer.changed()
        await writer.durable()
        return threading.get_ident()

    loop_thread = asyncio.run(burst())
    assert 1 <= len(book.threads) <= 2  # one write under way, the rest coalesced into the next
    assert loop_thread not in book.threads
    on_disk = Manifest.load(tmp_path / MANIFEST_NAME)
    assert all(on_disk.entries[f"f{n}"].attempts == 1 for n in range(200))


def test_a_crash_between_the_audio_and_its_stats_sidecar_is_recovered_not_redone(
    tmp_path: Path, local_server: str
) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    write(src / "a.txt", "The audio of this file was final when the batch was killed.")
    write(src / "b.txt", "This one was still streaming.")
    assert batch(src, "--url", local_server, *ESPEAK, "-d", out).exit_code == 0
    # the state kill -9 leaves right after the rename of a.mp3 (running entry, no sidecar yet),
    # and in the middle of b (running entry, only the .part file)
    data = manifest(out)
    for entry in data["files"].values():
        entry.update(status="running", audio_bytes=None, stats=None)
    (out / MANIFEST_NAME).write_text(json.dumps(data), encoding="utf-8")
    stats_a = next(out.glob("a*.json"))
    stats_a.unlink()
    (out / "b.mp3").rename(out / "b.mp3.part")
    before = _final_audio(out)

    result = batch(src, "--url", local_server, *ESPEAK, "-d", out, "--json")
    assert result.exit_code == 0, result.stderr
    report = {Path(f["input"]).name: (f["status"], f["reason"]) for f in json.loads(result.stdout)["files"]}
    assert report["a.txt"][0] == "skipped" and report["b.txt"] == ("done", "unfinished")
    assert _final_audio(out)["a.mp3"] == before["a.mp3"]
    assert statuses(out) == {"a.txt": DONE, "b.txt": DONE}
    assert manifest(out)["files"][str(src / "a.txt")]["audio_bytes"] == (out / "a.mp3").stat().st_size
    assert json.loads(stats_a.read_text())["ok"] is True  # the sidecar is whole again
