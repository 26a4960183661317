"""pipecat's real `ElevenLabsTTSService`, unchanged apart from its `url`, speaking through the local server.

No LLM, no transport, no network: the service runs in a minimal pipeline between a recorder that
pushes frames in and a recorder that keeps what comes out.

Optional: skipped unless pipecat-ai is installed (`pip install -e '.[frameworks]'`, as .ci/run
does, then `python -m pytest tests/frameworks`).
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from conftest import assert_speech

pytest.importorskip("pipecat", reason="pipecat-ai is not installed (optional framework tests)")

# Raised while pipecat's modules load: its audio helpers import the stdlib `audioop`, and its
# ElevenLabs base class subclasses a class it has itself deprecated. Neither is ours to fix.
# Filtered here, around the import: `filterwarnings = error` also covers collection, which a
# module's `pytestmark` does not. (Later deprecations pipecat raises under its own "always".)
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="'audioop' is deprecated", category=DeprecationWarning)
    warnings.filterwarnings(
        "ignore", message="`AudioContextTTSService` is deprecated", category=DeprecationWarning
    )
    from pipecat.frames.frames import (
        EndFrame,
        ErrorFrame,
        Frame,
        InterruptionFrame,
        LLMFullResponseEndFrame,
        LLMFullResponseStartFrame,
        LLMTextFrame,
        TTSAudioRawFrame,
        TTSSpeakFrame,
        TTSStartedFrame,
        TTSStoppedFrame,
        TTSTextFrame,
    )
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.services.elevenlabs.tts import ElevenLabsTTSService
    from pipecat.workers.runner import WorkerRunner


API_KEY = "local-test"


# ---------------------------------------------------------------------------------------------
# A minimal pipeline: recorder -> ElevenLabsTTSService -> recorder


class Recorder(FrameProcessor):
    """Pass every frame on; keep the ones travelling in `direction`, with their arrival time."""

    def __init__(self, direction: FrameDirection) -> None:
        super().__init__()
        self._direction = direction
        self.frames: list[tuple[float, Frame]] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction == self._direction:
            self.frames.append((time.monotonic(), frame))
        await self.push_frame(frame, direction)


@dataclass
class Run:
    tts: ElevenLabsTTSService
    worker: PipelineWorker
    down: Recorder
    up: Recorder
    events: list[tuple[str, float]] = field(default_factory=list)

    async def send(self, *frames: Frame) -> None:
        for frame in frames:
            await self.worker.queue_frame(frame)

    def of(self, kind: type, context_id: str | None = None) -> list[Any]:
        return [
            f
            for _, f in self.down.frames
            if isinstance(f, kind) and (context_id is None or getattr(f, "context_id", None) == context_id)
        ]

    def contexts(self) -> list[str]:
        """Context ids in the order their first audio arrived."""
        seen: list[str] = []
        for f in self.of(TTSAudioRawFrame):
            if f.context_id not in seen:
                seen.append(f.context_id)
        return seen

    def errors(self) -> list[ErrorFrame]:
        return [f for _, f in self.up.frames + self.down.frames if isinstance(f, ErrorFrame)]

    async def until(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s; frames: {self.summary()}")
            await asyncio.sleep(0.01)

    def connections(self) -> list[str]:
        """The service's connection events; pipecat reports `on_disconnected` twice at shutdown."""
        names = [name for name, _ in self.events]
        return [name for i, name in enumerate(names) if name != "on_disconnected" or names[i - 1] != name]

    def closed_after(self, since: float) -> float:
        """Seconds from `since` to the socket's close (pipecat waits up to 2 s for the server)."""
        return next(t for name, t in self.events if name == "on_disconnected") - since

    def summary(self) -> str:
        return ", ".join(type(f).__name__ for _, f in self.down.frames)


def make_tts(url: str, voice: str, sample_rate: int | None = None) -> ElevenLabsTTSService:
    """The service exactly as a pipecat user writes it, pointed at the local server."""
    return ElevenLabsTTSService(
        api_key=API_KEY,
        url=url,
        sample_rate=sample_rate,
        settings=ElevenLabsTTSService.Settings(voice=voice),
    )


async def drive(
    tts: ElevenLabsTTSService,
    script: Callable[[Run], Awaitable[None]],
    *,
    timeout: float = 90.0,
) -> Run:
    """Start the pipeline (pipecat's default params: audio out at 24 kHz), run `script` against it,
    then end it with an EndFrame."""
    down, up = Recorder(FrameDirection.DOWNSTREAM), Recorder(FrameDirection.UPSTREAM)
    worker = PipelineWorker(Pipeline([up, tts, down]), cancel_on_idle_timeout=False, params=PipelineParams())
    run = Run(tts=tts, worker=worker, down=down, up=up)
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def _started(_worker: Any, _frame: Frame) -> None:
        started.set()

    for name in ("on_connected", "on_disconnected", "on_connection_error"):
        tts.event_handler(name)(_logger(run, name))

    async def go() -> None:
        await asyncio.wait_for(started.wait(), 30)
        await script(run)
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.wait_for(asyncio.gather(runner.run(), go()), timeout)
    return run


def _logger(run: Run, name: str) -> Callable[..., Awaitable[None]]:
    async def handler(*_args: Any) -> None:
        run.events.append((name, time.monotonic()))

    return handler


def pcm(frames: list[TTSAudioRawFrame]) -> np.ndarray:
    return np.frombuffer(b"".join(f.audio for f in frames), dtype=np.int16)


def check_rate(run: Run, rate: int) -> None:
    """The PCM really is at the rate pipecat asked for and labels it with: its length agrees with
    the words' clock, which pipecat takes from the server's alignment (in ms, whatever the rate)."""
    audio_s = len(pcm(run.of(TTSAudioRawFrame))) / rate
    pts = [f.pts for f in run.of(TTSTextFrame)]
    last_word_at = (pts[-1] - pts[0]) / 1e9
    assert 0.6 * audio_s < last_word_at < audio_s, (last_word_at, audio_s)


def words_of(text: str) -> list[str]:
    return text.split()


# ---------------------------------------------------------------------------------------------


def test_llm_turn_espeak_16k(local_server: str) -> None:
    """An LLM reply streamed in pieces (one message per sentence, flush + close_context at the end)."""
    pieces = ["Hello there, this is pipecat ", "talking to a local server. ", "It has two sentences."]
    text = "".join(pieces)
    tts = make_tts(local_server, "espeak", sample_rate=16000)

    async def script(run: Run) -> None:
        await run.send(LLMFullResponseStartFrame(), *map(LLMTextFrame, pieces), LLMFullResponseEndFrame())
        await run.until(lambda: bool(run.of(TTSStoppedFrame)))

    run = asyncio.run(drive(tts, script))

    assert not run.errors(), run.errors()
    asked = tts._build_websocket_url()  # the URL pipecat connected to
    assert asked.startswith(f"{local_server}/v1/text-to-speech/espeak/multi-stream-input?")
    assert "output_format=pcm_16000" in asked
    audio = run.of(TTSAudioRawFrame)
    assert audio, run.summary()
    assert {(f.sample_rate, f.num_channels) for f in audio} == {(16000, 1)}
    assert len(run.contexts()) == 1
    assert_speech(pcm(audio), 16000, words=len(words_of(text)))
    assert len(run.of(TTSStartedFrame)) == len(run.of(TTSStoppedFrame)) == 1
    # pipecat builds its word frames from the server's alignment: every word, in order, on a clock
    # that moves forward.
    spoken = run.of(TTSTextFrame)
    assert [f.text for f in spoken] == words_of(text)
    pts = [f.pts for f in spoken]
    assert all(p is not None for p in pts) and pts == sorted(pts), pts
    check_rate(run, 16000)
    assert run.connections() == ["on_connected", "on_disconnected"], run.events
    # After `close_socket` the server closes the socket itself, well within pipecat's 2 s wait.
    stopped = max(t for t, f in run.down.frames if isinstance(f, TTSStoppedFrame))
    assert run.closed_after(stopped) < 1.5


@pytest.mark.neural
def test_tts_speak_joe_default_rate(local_server: str) -> None:
    """`TTSSpeakFrame` with the Piper voice at the pipeline's output rate (pcm_24000)."""
    text = "The quick brown fox jumps over the lazy dog."
    tts = make_tts(local_server, "joe")

    async def script(run: Run) -> None:
        await run.send(TTSSpeakFrame(text))
        await run.until(lambda: bool(run.of(TTSStoppedFrame)), timeout=60)

    run = asyncio.run(drive(tts, script))

    assert not run.errors(), run.errors()
    assert "output_format=pcm_24000" in tts._build_websocket_url()
    audio = run.of(TTSAudioRawFrame)
    assert {(f.sample_rate, f.num_channels) for f in audio} == {(24000, 1)}
    assert_speech(pcm(audio), 24000, words=len(words_of(text)))
    assert [f.text for f in run.of(TTSTextFrame)] == words_of(text)
    check_rate(run, 24000)
    assert run.connections() == ["on_connected", "on_disconnected"], run.events
    # After `close_socket` the server closes the socket itself, well within pipecat's 2 s wait.
    stopped = max(t for t, f in run.down.frames if isinstance(f, TTSStoppedFrame))
    assert run.closed_after(stopped) < 1.5


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
def test_interruption_then_next_turn_on_the_same_socket(local_server: str, voice: str) -> None:
    """Barge-in: a long unflushed LLM turn is interrupted after its first audio, then a new turn.

    pipecat sends `close_context` (no flush) for the interrupted context and drops whatever audio
    of it still arrives; the next turn must be spoken in full on the same connection, promptly.
    """
    second = "Sure, here is the short answer."
    tts = make_tts(local_server, voice)

    async def script(run: Run) -> None:
        await run.send(LLMFullResponseStartFrame(), LLMTextFrame(LONG_REPLY))
        await run.until(lambda: bool(run.of(TTSAudioRawFrame)), timeout=30)
        first = run.contexts()[0]
        await run.send(InterruptionFrame())
        await run.send(LLMFullResponseStartFrame(), LLMTextFrame(second), LLMFullResponseEndFrame())
        await run.until(lambda: any(f.context_id != first for f in run.of(TTSStoppedFrame)), timeout=60)

    run = asyncio.run(drive(tts, script))

    assert not run.errors(), run.errors()
    # One connection all along: the interruption did not break or reopen the socket.
    assert run.connections() == ["on_connected", "on_disconnected"], run.events
    contexts = run.contexts()
    assert len(contexts) == 2, contexts
    first, nxt = contexts
    arrivals = {id(f): t for t, f in run.down.frames}
    interrupted = next(t for t, f in run.down.frames if isinstance(f, InterruptionFrame))
    first_audio = run.of(TTSAudioRawFrame, first)
    # Nothing of the interrupted context reaches the pipeline after the interruption ...
    assert all(arrivals[id(f)] <= interrupted for f in first_audio)
    # ... and it was cut short: far less than the whole reply.
    first_s = len(pcm(first_audio)) / 24000
    assert first_s < 0.15 * len(words_of(LONG_REPLY)), f"{first_s:.1f} s of the interrupted reply"
    # The next turn is spoken in full, with its own start/stop and word frames.
    next_audio = run.of(TTSAudioRawFrame, nxt)
    assert_speech(pcm(next_audio), 24000, words=len(words_of(second)))
    assert len(run.of(TTSStartedFrame, nxt)) == len(run.of(TTSStoppedFrame, nxt)) == 1
    # Its words, from the server's alignment. Joined, not one by one: pipecat 1.14.0 feeds the
    # alignment of an interrupted context's late frames into its shared word clock, so a word left
    # open there ("service.") can merge with the next turn's first word in its word sequencer.
    assert " ".join(f.text for f in run.of(TTSTextFrame, nxt)) == second
    # Promptly: the server did not finish the interrupted reply first.
    delay = arrivals[id(next_audio[0])] - interrupted
    assert delay < 3.0, f"first audio of the next turn {delay:.2f} s after the interruption"
