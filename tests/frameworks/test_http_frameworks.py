"""The frameworks' HTTP paths against `serve`: LiveKit's non-streaming `TTS.synthesize()` (it posts
to `/v1/text-to-speech/{voice}/stream`) and pipecat's `ElevenLabsHttpTTSService` (it posts to
`/stream/with-timestamps`), each unchanged but for its base URL.
"""

from __future__ import annotations

import asyncio
import sys

import pytest
from conftest import assert_speech

pytest.importorskip("pipecat", reason="pipecat-ai is not installed (optional framework tests)")
elevenlabs = pytest.importorskip(
    "livekit.plugins.elevenlabs",
    reason="livekit-plugins-elevenlabs is not installed (optional framework tests)",
)
import aiohttp  # noqa: E402
from test_livekit import API_KEY, Heard, Watched, base_url  # noqa: E402
from test_pipecat import (  # noqa: E402  (it imports pipecat with pipecat's own warnings filtered)
    Run,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    check_rate,
    drive,
    pcm,
    words_of,
)

ElevenLabsHttpTTSService = sys.modules["pipecat.services.elevenlabs.tts"].ElevenLabsHttpTTSService

TEXT = "Hello there, this is a framework talking to a local server over HTTP. It has two sentences."


def test_livekit_synthesize_posts_to_the_stream_endpoint(local_server: str) -> None:
    async def main() -> tuple[Heard, Watched]:
        async with aiohttp.ClientSession() as session:
            tts = elevenlabs.TTS(
                base_url=base_url(local_server), api_key=API_KEY, voice_id="espeak", http_session=session
            )
            watched = Watched(tts)
            heard = Heard()
            async with tts.synthesize(TEXT) as stream:
                async for event in stream:
                    heard.events.append(event)
            await tts.aclose()
            return heard, watched

    heard, watched = asyncio.run(main())
    assert not watched.errors, watched.errors
    assert heard.sample_rates == {(22050, 1)}  # the plugin's default, mp3_22050_32, decoded
    assert_speech(heard.samples(), 22050, words=len(TEXT.split()))
    [metrics] = watched.metrics
    assert metrics.audio_duration == pytest.approx(heard.seconds) and not metrics.cancelled


def test_pipecat_http_service_speaks_with_word_times(local_server: str) -> None:
    http = local_server.replace("ws://", "http://", 1)

    async def main() -> Run:
        async with aiohttp.ClientSession() as session:
            tts = ElevenLabsHttpTTSService(
                api_key=API_KEY,
                aiohttp_session=session,
                base_url=http,
                sample_rate=16000,
                settings=ElevenLabsHttpTTSService.Settings(voice="espeak"),
            )

            async def script(run: Run) -> None:
                await run.send(TTSSpeakFrame(TEXT))
                await run.until(lambda: bool(run.of(TTSStoppedFrame)), timeout=60)

            return await drive(tts, script)  # type: ignore[arg-type]

    run = asyncio.run(main())
    assert not run.errors(), run.errors()
    audio = run.of(TTSAudioRawFrame)
    assert {(f.sample_rate, f.num_channels) for f in audio} == {(16000, 1)}
    assert_speech(pcm(audio), 16000, words=len(words_of(TEXT)))
    # pipecat builds word frames from the alignment of /stream/with-timestamps
    assert [f.text for f in run.of(TTSTextFrame)] == words_of(TEXT)
    check_rate(run, 16000)
