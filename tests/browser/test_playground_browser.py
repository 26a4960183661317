"""The playground in a real headless browser: Debian's Chromium driven by Playwright.

The page is loaded from a real `serve` on port 0 (the espeak voice, for speed) and speaks through
the real stream-input WebSocket; Web Audio really plays it (autoplay allowed, no user gesture).
There is no skip: without Chromium or Playwright these tests fail, so CI cannot pass without
running them (`.ci/run` installs both). Leave them out locally with `-m "not browser"`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import run_local_server

from elevtts.server.app import ServerConfig

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"  # Debian's package; never `playwright install` (it downloads a browser)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "output"  # ignored by git; CI keeps it
TWO_SENTENCES = "The quick brown fox jumps over the lazy dog. Then it runs far away into the green forest."
KEY = "sesame-playground"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    thread, url = run_local_server(ServerConfig(port=0, voices=("espeak",)))
    yield url.replace("ws://", "http://", 1)
    thread.stop()


@pytest.fixture(scope="module")
def keyed_server() -> Iterator[str]:
    thread, url = run_local_server(ServerConfig(port=0, voices=("espeak",), api_key=KEY))
    yield url.replace("ws://", "http://", 1)
    thread.stop()


class Recorded:
    """Every request the page makes, and every frame its WebSockets receive."""

    def __init__(self, page: Any) -> None:
        self.urls: list[str] = []
        self.frames: list[str] = []
        self.console_errors: list[str] = []
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("websocket", self._socket)
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))

    def _socket(self, socket: Any) -> None:
        self.urls.append(socket.url)
        socket.on("framereceived", lambda payload: self.frames.append(payload))

    def audio_frames(self) -> list[str]:
        return [f for f in self.frames if isinstance(f, str) and '"audio": "' in f and '"audio": ""' not in f]


def open_page(browser: Any, url: str) -> tuple[Any, Recorded]:
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    recorded = Recorded(page)
    page.goto(f"{url}/")
    return page, recorded


def wait_until(page: Any, condition: str, *, timeout_s: float = 60) -> None:
    """Poll a JS expression from outside: the page's Content-Security-Policy forbids the `eval`
    that Playwright's own `wait_for_function` uses, and it should stay strict under test."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(f"() => Boolean({condition})"):
        assert time.monotonic() < deadline, f"still false after {timeout_s} s: {condition}"
        page.wait_for_timeout(50)


def speak(page: Any, text: str) -> None:
    page.fill("#text", text)
    page.click("#speak")
    wait_until(page, "document.getElementById('speak').disabled === false")


def stats(page: Any) -> dict[str, Any]:
    return page.evaluate("() => JSON.parse(JSON.stringify(window.playground))")  # type: ignore[no-any-return]


def test_the_page_speaks_two_sentences_while_they_stream(browser: Any, server: str) -> None:
    page, recorded = open_page(browser, server)
    wait_until(page, "document.getElementById('voice').options.length > 0")
    page.select_option("#voice", "espeak")
    assert page.input_value("#format") == "pcm_22050"
    assert page.inner_text("#origin") == server
    speak(page, TWO_SENTENCES)
    # Wait for the audio to finish playing (the highlight reaches the last word), then look.
    wait_until(page, "window.playground.highlightChanges.some(change => change.word === 'forest.')")
    seen = stats(page)
    page.screenshot(path=str(ARTIFACTS / "playground-test.png"), full_page=True)

    assert seen["lastClose"] == {"code": 1000, "reason": ""}
    assert page.inner_text("#status").startswith("Done")
    assert page.is_hidden("#error")
    # Audio frames came over the page's WebSocket, and Web Audio played each as it arrived.
    assert len(recorded.audio_frames()) >= 2 and '"isFinal": true' in recorded.frames[-1]
    assert seen["framesReceived"] == len(recorded.audio_frames())
    assert seen["sourcesStarted"] == seen["framesReceived"]
    assert re.fullmatch(r"\d+ ms", page.inner_text("#ttfb"))
    assert re.fullmatch(r"\d+\.\dx", page.inner_text("#rtf"))
    assert re.fullmatch(r"\d+\.\d\d s", page.inner_text("#audio-received"))
    assert len(re.findall(r"#\d+ \d+ ms", page.inner_text("#flush-latencies"))) == 2  # a flush per sentence
    # The highlight followed the playing audio word by word, in order, at advancing audio times.
    changes = seen["highlightChanges"]
    words = [change["word"] for change in changes]
    assert words[0] == "The" and words[-1] == "forest." and len(set(words)) >= 10
    remaining = iter(TWO_SENTENCES.split())
    assert all(word in remaining for word in words), words  # in the text's order (a busy tab may skip one)
    times = [change["at"] for change in changes]
    assert times == sorted(times) and times[-1] > 2.0
    # The timeline: one mark per text message sent (the opener is not text), one bar per chunk.
    assert page.locator("#timeline line.sent.flush").count() == 2
    assert page.locator("#timeline rect.chunk").count() == seen["framesReceived"]
    # Nothing left the server's origin: the page, its two files, the voices, the WebSocket.
    host = server.split("://", 1)[1]
    assert recorded.urls and all(re.match(rf"(http|ws)://{re.escape(host)}/", url) for url in recorded.urls)
    assert any(url.startswith(f"ws://{host}/v1/text-to-speech/espeak/stream-input") for url in recorded.urls)
    assert recorded.console_errors == [], recorded.console_errors
    page.close()


def test_downloads_give_the_audio_and_subtitles(browser: Any, server: str, tmp_path: Path) -> None:
    page, _ = open_page(browser, server)
    wait_until(page, "document.getElementById('voice').options.length > 0")
    page.select_option("#voice", "espeak")
    speak(page, TWO_SENTENCES)
    page.wait_for_selector("#download-vtt[href]")
    files = {}
    for name in ("audio", "srt", "vtt"):
        with page.expect_download() as download:
            page.click(f"#download-{name}")
        files[name] = download.value.path().read_bytes()
    audio = files["audio"]
    assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE" and len(audio) > 44 + 22050  # over 0.5 s
    srt, vtt = files["srt"].decode(), files["vtt"].decode()
    # A cue per sentence here (each is under two lines of 42 characters and 5 s), timed in order.
    assert vtt.startswith("WEBVTT\n\n")
    srt_blocks = [block.split("\n") for block in srt.strip().split("\n\n")]
    assert [block[0] for block in srt_blocks] == ["1", "2"]
    srt_cues = [(*block[1].split(" --> "), "\n".join(block[2:])) for block in srt_blocks]
    vtt_blocks = [block.split("\n") for block in vtt.removeprefix("WEBVTT\n\n").strip().split("\n\n")]
    vtt_cues = [(*block[0].split(" --> "), "\n".join(block[1:])) for block in vtt_blocks]
    sentences = [
        "The quick brown fox jumps over the lazy dog.",
        "Then it runs far away into the green forest.",
    ]
    for found, separator in ((srt_cues, ","), (vtt_cues, ".")):
        assert [" ".join(text.split()) for _, _, text in found] == sentences
        assert all(max(len(line) for line in text.split("\n")) <= 42 for _, _, text in found)
        times = [t for start, end, _ in found for t in (start, end)]
        assert times == sorted(times) and times[0] == f"00:00:00{separator}000" and separator in times[1]
    page.close()


def test_a_wrong_key_shows_the_servers_error_and_the_right_one_speaks(
    browser: Any, keyed_server: str
) -> None:
    page, recorded = open_page(browser, keyed_server)
    page.wait_for_selector("#key-row:not([hidden])")
    assert "needs an API key" in page.inner_text("#error")
    page.fill("#api-key", "not-the-key")
    page.click("#load-voices")
    wait_until(page, "document.getElementById('error').textContent.includes('refused the API key')")
    assert "Invalid API key" in page.inner_text("#error")

    page.fill("#api-key", KEY)
    page.click("#load-voices")
    wait_until(page, "document.getElementById('voice').options.length > 0")
    assert page.is_hidden("#error")

    page.fill("#api-key", "still-not-the-key")  # the WebSocket checks the key of the first message
    speak(page, "This is refused.")
    error = page.inner_text("#error")
    assert "The server refused the API key" in error and "invalid_api_key" in error and "1008" in error
    assert stats(page)["framesReceived"] == 0

    page.fill("#api-key", KEY)
    speak(page, TWO_SENTENCES)
    assert stats(page)["lastClose"]["code"] == 1000 and recorded.audio_frames()
    assert page.is_hidden("#error")
    assert all(KEY not in url for url in recorded.urls)  # the key goes in a message, never a URL
    page.close()


def test_mp3_plays_through_media_source_while_it_streams(browser: Any, server: str) -> None:
    page, recorded = open_page(browser, server)
    wait_until(page, "document.getElementById('voice').options.length > 0")
    page.select_option("#voice", "espeak")
    page.select_option("#format", "mp3_22050_32")
    speak(page, TWO_SENTENCES)
    wait_until(page, "window.playground.highlightChanges.some(change => change.word === 'forest.')")
    assert recorded.audio_frames() and "output_format=mp3_22050_32" in " ".join(recorded.urls)
    # The <audio> element's clock ran: media time advanced as the chunks were appended.
    assert page.evaluate("() => document.getElementById('player').currentTime") > 2.0
    assert re.fullmatch(r"4\.\d\d s|5\.\d\d s", page.inner_text("#audio-received"))  # from MP3 frame headers
    assert recorded.console_errors == [], recorded.console_errors
    page.close()


def test_typed_text_with_a_manual_flush_and_the_compare_view(browser: Any, server: str) -> None:
    page, _ = open_page(browser, server)
    wait_until(page, "document.getElementById('voice').options.length > 0")
    page.select_option("#voice", "espeak")
    page.check("#compare")
    speak(page, "A first run to compare with.")
    first_bars = page.locator("#timeline rect.chunk").count()
    first_frames = stats(page)["framesReceived"]
    assert first_bars == first_frames >= 1

    page.select_option("#mode", "type")
    page.fill("#rate", "20")
    page.select_option("#flush", "manual")
    page.fill("#text", "Words arrive one by one, like tokens from a model.")
    page.click("#speak")
    wait_until(page, "document.querySelectorAll('#timeline line.sent').length === 10")  # every word sent
    # 50 characters, under the schedule's first 120: the server holds them until the flush.
    page.wait_for_timeout(300)
    assert stats(page)["framesReceived"] == first_frames and not page.is_disabled("#flush-now")
    # The figures are this run's: none yet (the first run's stayed up until new audio came).
    none = "\N{EN DASH}"
    figures = [page.inner_text(f"#{name}") for name in ("ttfb", "audio-received", "rtf", "frames")]
    assert figures == [none, none, none, "0"]
    page.click("#flush-now")
    wait_until(page, f"window.playground.framesReceived > {first_frames}")
    assert page.locator("#timeline line.sent.flush").count() == 1
    assert re.fullmatch(r"#1 \d+ ms", page.inner_text("#flush-latencies"))
    page.click("#end-input")
    wait_until(page, "document.getElementById('speak').disabled === false")
    assert stats(page)["lastClose"]["code"] == 1000
    # The previous run's timeline stays beside the new one, on the same axis.
    assert page.locator("#timeline-previous rect.chunk").count() == first_bars
    assert page.locator("#timeline-previous .run-label").text_content() == "previous run"
    assert page.locator("#timeline .run-label").text_content() == "this run"
    page.close()


def test_errors_are_shown_in_plain_words(browser: Any, server: str) -> None:
    page, _ = open_page(browser, server)
    wait_until(page, "document.getElementById('voice').options.length > 0")
    page.select_option("#voice", "espeak")
    page.fill("#schedule", "10,20")  # below the protocol's 50
    speak(page, "Refused.")
    error = page.inner_text("#error")
    assert "invalid_chunk_length_schedule" in error and "close 1008" in error
    assert stats(page)["lastClose"]["code"] == 1008
    page.close()


def test_a_server_going_away_is_said_so(browser: Any) -> None:
    thread, url = run_local_server(ServerConfig(port=0, voices=("espeak",)))
    try:
        page, _ = open_page(browser, url.replace("ws://", "http://", 1))
        wait_until(page, "document.getElementById('voice').options.length > 0")
        page.select_option("#flush", "manual")  # the socket stays open, waiting for a flush
        page.fill("#text", "Nobody will hear this.")
        page.click("#speak")
        wait_until(page, "document.querySelectorAll('#timeline line.sent').length === 1")
    finally:
        thread.stop()
    wait_until(page, "document.getElementById('speak').disabled === false")
    assert page.inner_text("#error") == "The server is shutting down."
    assert stats(page)["lastClose"]["code"] == 1001
    page.close()


def test_a_refused_handshake_is_said_so(browser: Any) -> None:
    """A browser sees no status for a refused upgrade (here 503: no connection left), only 1006."""
    thread, url = run_local_server(ServerConfig(port=0, voices=("espeak",), max_connections=0))
    try:
        page, _ = open_page(browser, url.replace("ws://", "http://", 1))
        wait_until(page, "document.getElementById('voice').options.length > 0")
        speak(page, "Nobody will hear this.")
        assert "The connection was lost without a goodbye" in page.inner_text("#error")
        assert stats(page)["lastClose"]["code"] == 1006
        page.close()
    finally:
        thread.stop()


def test_mu_law_plays_through_web_audio_and_downloads_as_wav(browser: Any, server: str) -> None:
    page, recorded = open_page(browser, server)
    wait_until(page, "document.getElementById('voice').options.length > 0")
    page.select_option("#voice", "espeak")
    page.select_option("#format", "ulaw_8000")
    speak(page, TWO_SENTENCES)
    wait_until(page, "window.playground.highlightChanges.some(change => change.word === 'forest.')")
    seen = stats(page)
    assert recorded.audio_frames() and seen["sourcesStarted"] == seen["framesReceived"] >= 2
    with page.expect_download() as download:
        page.click("#download-audio")
    wav = download.value.path().read_bytes()
    assert wav[:4] == b"RIFF" and int.from_bytes(wav[20:22], "little") == 7  # WAVE_FORMAT_MULAW
    assert int.from_bytes(wav[24:28], "little") == 8000 and len(wav) > 44 + 8000 * 4  # over 4 s
    page.close()
