"""`--play` without a player program: in-process playback through miniaudio (issue 10 item 18).

What runs here without a sound device: the choice of the fallback, the streamed decoding that
feeds the device (every sample of the audio comes out, in order, as the bytes arrive), and the
clean "no sound device" path. What cannot: hearing it (no device on a CI machine)."""

from __future__ import annotations

import array
import threading
import time
from pathlib import Path

import miniaudio
import pytest
from typer.testing import CliRunner

from elevtts.cli import app
from elevtts.formats import parse_output_format
from elevtts.player import InProcessPlayer, in_process_player


def played(player: InProcessPlayer, data: bytes, *, piece: int = 4096) -> bytes:
    """Feed `data` in pieces from another thread (as frames arrive) and pull what the device would."""
    frames = player.frames()
    next(frames)

    def arrive() -> None:
        for start in range(0, len(data), piece):
            player.feed(data[start : start + piece])
            time.sleep(0.001)
        player.stream.end()

    feeder = threading.Thread(target=arrive)
    feeder.start()
    out = bytearray()
    while True:
        try:
            chunk = frames.send(1024)
        except StopIteration:
            break
        out += bytes(chunk) if not isinstance(chunk, array.array) else chunk.tobytes()
    feeder.join()
    return bytes(out)


@pytest.fixture
def spoken(local_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    runner = CliRunner()
    text = "Played in process, as it arrives."
    for name in ("a.mp3", "a.pcm"):
        assert (
            runner.invoke(app, ["speak", "--url", local_server, "-v", "espeak", "-o", name, text]).exit_code
            == 0
        )
    return {"mp3": Path("a.mp3").read_bytes(), "pcm": Path("a.pcm").read_bytes()}


def test_mp3_is_decoded_as_it_arrives(spoken: dict[str, bytes]) -> None:
    player = in_process_player(parse_output_format("mp3_44100_128"))
    assert player is not None
    samples = played(player, spoken["mp3"])
    # the same decoder given the whole file at once: arriving in pieces changes nothing
    assert samples == whole_stream_decode(spoken["mp3"])
    reference = miniaudio.decode(spoken["mp3"], nchannels=1, sample_rate=44100)
    assert abs(len(samples) // 2 - reference.num_frames) <= 4 * 1152  # miniaudio's streaming decoder
    # leaves out a few MP3 frames (an encoder delay) that its whole-file decoder keeps


def whole_stream_decode(data: bytes) -> bytes:
    class Whole(miniaudio.StreamableSource):
        def __init__(self) -> None:
            self.position = 0

        def read(self, num_bytes: int) -> bytes:
            piece = data[self.position : self.position + num_bytes]
            self.position += len(piece)
            return piece

    decoded = miniaudio.stream_any(Whole(), miniaudio.FileFormat.MP3, nchannels=1, sample_rate=44100)
    out = bytearray()
    while True:
        try:
            out += decoded.send(1024).tobytes()
        except StopIteration:
            return bytes(out)


def test_pcm_passes_through_in_order(spoken: dict[str, bytes]) -> None:
    player = in_process_player(parse_output_format("pcm_22050"))
    assert player is not None
    samples = played(player, spoken["pcm"], piece=len(spoken["pcm"]))
    # silence fills the wait until the audio arrives (here in one piece); the audio itself comes
    # out whole and in order
    assert samples.strip(b"\0") == spoken["pcm"].strip(b"\0")


def test_formats_miniaudio_cannot_take_have_no_fallback() -> None:
    assert in_process_player(parse_output_format("ulaw_8000")) is None


def test_no_sound_device_still_saves(
    local_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/nonexistent")  # no player program
    result = CliRunner().invoke(
        app, ["speak", "--url", local_server, "-v", "espeak", "--play", "-o", "p.mp3", "Hi."]
    )
    assert result.exit_code == 0, result.output
    assert "playing in-process with miniaudio" in result.stderr
    assert Path("p.mp3").exists()
    # on a machine without a sound device (CI), one clear line instead of the library's noise
    assert "ALSA lib" not in result.stderr
