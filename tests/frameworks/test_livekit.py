"""LiveKit's real `elevenlabs.TTS` plugin, unchanged but for its `base_url`, speaking through elevtts serve.

No room, no agent session, no network: the plugin's streaming API is driven directly, the way an
`AgentSession` drives it (push_text per LLM token, flush, end_input; `aclose()` on barge-in).
Optional: skipped unless livekit-plugins-elevenlabs is installed (the install is in test_pipecat.py).

`TTS.synthesize()` posts to the REST endpoint `/v1/text-to-speech/{voice}/stream`: see
test_http_frameworks.py.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from conftest import assert_speech

elevenlabs = pytest.importorskip(
    "livekit.plugins.elevenlabs",
    reason="livekit-plugins-elevenlabs is not installed (optional framework tests)",
)
import aiohttp  # noqa: E402  (a dependency of livekit-agents)
from livekit.agents import tts as lk_tts  # noqa: E402
from livekit.agents.metrics import TTSMetrics  # noqa: E402
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT  # noqa: E402

API_KEY = "local-test"


def base_url(server_url: str) -> str:
    """What a LiveKit user passes: the http(s) API root with /v1; the plugin turns it into ws(s)."""
    return server_url.replace("ws://", "http://", 1) + "/v1"


@dataclass
class Heard:
    """Everything one `SynthesizeStream` produced."""

    events: list[lk_tts.SynthesizedAudio] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)

    @property
    def sample_rates(self) -> set[tuple[int, int]]:
        return {(e.frame.sample_rate, e.frame.num_channels) for e in self.events}

    def samples(self) -> np.ndarray:
        return np.frombuffer(b"".join(bytes(e.frame.data) for e in self.events), dtype=np.int16)

    @property
    def seconds(self) -> float:
        return sum(e.frame.duration for e in self.events)

    def words(self) -> list[Any]:
        """The timed words (`TimedString`) LiveKit built from the server's `normalizedAlignment`."""
        return [w for e in self.events for w in e.frame.userdata.get(USERDATA_TIMED_TRANSCRIPT, [])]


async def speak(stream: lk_tts.SynthesizeStream, pieces: list[str]) -> Heard:
    """Push text as an LLM would (token-ish pieces), flush, end the input, collect to the end."""
    for piece in pieces:
        stream.push_text(piece)
    stream.flush()
    stream.end_input()
    heard = Heard()
    async for event in stream:
        heard.events.append(event)
        heard.arrivals.append(time.monotonic())
    return heard


def tokens(text: str) -> list[str]:
    """Split like an LLM stream: words with their trailing spaces, some cut in two."""
    out: list[str] = []
    for word in re.findall(r"\S+\s*", text):
        out.extend([word[:2], word[2:]] if len(word) > 5 else [word])
    return out


class Watched:
    """A TTS plus what it reported: errors and per-request metrics."""

    def __init__(self, tts: Any) -> None:
        self.tts = tts
        self.errors: list[Any] = []
        self.metrics: list[TTSMetrics] = []
        tts.on("error", self.errors.append)
        tts.on("metrics_collected", self.metrics.append)


def check_words(heard: Heard, text: str) -> None:
    """Every word back, in order, with times inside the audio.

    LiveKit 1.8.9 appends each frame's alignment as it comes, and ElevenLabs' times are relative
    to the frame (protocol.md section 3.1), so its word times restart with every frame: only
    their range is checked, not their order.
    """
    words = heard.words()
    assert [str(w).strip() for w in words] == text.split()
    for w in words:
        assert 0.0 <= w.start_time <= heard.seconds + 0.5, (str(w), w.start_time)
        assert 0.0 <= w.end_time <= heard.seconds + 0.5, (str(w), w.end_time)


TEXT = "Hello there, this is LiveKit talking to a local server. It has two sentences."


def test_stream_espeak_default_format(local_server: str) -> None:
    """The plugin's defaults: mp3_22050_32, sync_alignment, auto_mode, a flush per sentence."""

    async def main() -> tuple[Heard, Watched]:
        async with aiohttp.ClientSession() as session:
            tts = elevenlabs.TTS(
                base_url=base_url(local_server), api_key=API_KEY, voice_id="espeak", http_session=session
            )
            watched = Watched(tts)
            assert tts.sample_rate == 22050
            async with tts.stream() as stream:
                heard = await speak(stream, tokens(TEXT))
            await tts.aclose()
            return heard, watched

    heard, watched = asyncio.run(main())

    assert not watched.errors, watched.errors
    assert heard.events, "no audio"
    assert heard.sample_rates == {(22050, 1)}
    assert_speech(heard.samples(), 22050, words=len(TEXT.split()))
    assert heard.events[-1].is_final and not any(e.is_final for e in heard.events[:-1])
    assert len({e.segment_id for e in heard.events}) == 1
    check_words(heard, TEXT)
    [metrics] = watched.metrics
    assert metrics.audio_duration == pytest.approx(heard.seconds)
    assert not metrics.cancelled


@pytest.mark.neural
def test_stream_joe_pcm_24000(local_server: str) -> None:
    """The Piper voice, raw PCM at 24 kHz (`encoding="pcm_24000"`)."""
    text = "The quick brown fox jumps over the lazy dog."

    async def main() -> tuple[Heard, Watched]:
        async with aiohttp.ClientSession() as session:
            tts = elevenlabs.TTS(
                base_url=base_url(local_server),
                api_key=API_KEY,
                voice_id="joe",
                encoding="pcm_24000",
                http_session=session,
            )
            watched = Watched(tts)
            async with tts.stream() as stream:
                heard = await speak(stream, tokens(text))
            await tts.aclose()
            return heard, watched

    heard, watched = asyncio.run(main())

    assert not watched.errors, watched.errors
    assert heard.sample_rates == {(24000, 1)}
    assert_speech(heard.samples(), 24000, words=len(text.split()))
    check_words(heard, text)


LONG_REPLY = " ".join(
    [
        "Once upon a time there was a little server that spoke like a famous cloud service.",
        "It answered every question with a clear and patient voice.",
        "People came from far away to listen to its stories about sockets and contexts.",
        "Some stories were long, and some were even longer than this one.",
        "One day a user grew tired of waiting and simply started talking over it.",
        "The server stopped at once, listened, and answered the new question instead.",
    ]
)


@pytest.mark.parametrize("voice", ["espeak", pytest.param("joe", marks=pytest.mark.neural)])
def test_barge_in_then_next_turn_on_the_same_socket(local_server: str, voice: str) -> None:
    """An agent interrupted mid-reply: the stream is closed after its first audio, before its
    input ends, then the next reply streams on the same connection.

    The plugin sends every sentence with `"flush": true`, so on `close_context` the server still
    speaks what was sent (protocol.md section 7.1) and the plugin drops it. The next reply must not
    wait behind it: contexts share the engine. The interrupted reply is long (twelve sentences, some
    ten seconds of Piper work) so that waiting behind it could not pass.
    """
    second = "Sure, here is the short answer."

    async def main() -> tuple[Heard, Heard, Watched, float]:
        async with aiohttp.ClientSession() as session:
            tts = elevenlabs.TTS(
                base_url=base_url(local_server), api_key=API_KEY, voice_id=voice, http_session=session
            )
            watched = Watched(tts)
            first = Heard()
            stream = tts.stream()
            for piece in tokens(f"{LONG_REPLY} {LONG_REPLY}"):  # the LLM is still talking: no end_input
                stream.push_text(piece)
            async for event in stream:
                first.events.append(event)
                break
            interrupted = time.monotonic()
            await stream.aclose()

            async with tts.stream() as stream2:
                nxt = await speak(stream2, tokens(second))
            await tts.aclose()
            return first, nxt, watched, nxt.arrivals[0] - interrupted

    first, nxt, watched, delay = asyncio.run(main())

    assert not watched.errors, watched.errors
    assert first.events and first.seconds < 0.15 * len(LONG_REPLY.split())
    assert nxt.sample_rates == {(22050, 1)}
    assert_speech(nxt.samples(), 22050, words=len(second.split()))
    check_words(nxt, second)
    # The second reply reused the first one's socket, and did not wait for the interrupted reply.
    reused = [m.connection_reused for m in watched.metrics if m.segment_id == nxt.events[0].segment_id]
    assert reused == [True]
    assert delay < 5.0, f"first audio of the next reply {delay:.2f} s after the barge-in"


def test_concurrent_streams_share_one_socket(local_server: str) -> None:
    """Two replies at once (e.g. a say() while a reply plays) are two contexts of one socket."""
    texts = ["The first reply is about the weather today.", "The second one is about the news."]

    async def main() -> tuple[list[Heard], Watched]:
        async with aiohttp.ClientSession() as session:
            tts = elevenlabs.TTS(
                base_url=base_url(local_server), api_key=API_KEY, voice_id="espeak", http_session=session
            )
            watched = Watched(tts)
            streams = [tts.stream() for _ in texts]
            heard = await asyncio.gather(*(speak(s, tokens(t)) for s, t in zip(streams, texts, strict=True)))
            for s in streams:
                await s.aclose()
            await tts.aclose()
            return list(heard), watched

    heard, watched = asyncio.run(main())

    assert not watched.errors, watched.errors
    for h, text in zip(heard, texts, strict=True):
        assert_speech(h.samples(), 22050, words=len(text.split()))
        check_words(h, text)
    assert sorted(m.connection_reused for m in watched.metrics) == [False, True]
