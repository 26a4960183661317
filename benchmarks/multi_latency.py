"""multi-stream-input latency of the local server, beside the raw engine in the same run.

    python benchmarks/multi_latency.py [--voice joe] [--repeat 5]

1. first audio: a sentence message sent the way pipecat sends it (auto_mode=true, pcm_24000, no
   trailing space, no flush) to the first audio frame of its context, against the raw engine's
   `synthesize()` of that same sentence (measured in turn with it, so both see the same load);
2. barge-in: a long unflushed auto_mode turn is closed (`close_context`, no flush) 0.2 to 1.2 s
   after its first audio, while the server is synthesizing its next pieces; the time from that
   close to the context's last audio frame and to its `isFinal`.
Medians of `--repeat` runs (max in brackets). Ratios hold on a noisy machine; absolute times do not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from elevtts.server.app import ServerConfig, server_url, start_server
from elevtts.server.engines import SynthesisOptions, get_engine

SENTENCES = {
    "short": "Sure, I can help you with that.",
    "long": "Let me check the calendar for you, because next Tuesday afternoon looks quite busy already.",
}
LONG_TURN = " ".join(
    [
        "The first sentence of a long reply sets the scene for everything that follows.",
        "A second one follows it without any pause at all, and it adds a few details.",
        "Then a third sentence explains the options that the caller can choose from today.",
        "The fourth sentence is here to make the turn longer than anyone would listen to.",
        "A fifth sentence keeps the engine busy for a while, which is the whole point.",
        "The sixth sentence says almost nothing of interest, but it says it at length.",
        "Number seven is a sentence like all the others, neither short nor very long.",
        "The eighth sentence is nearly the end of the turn, with two more to come.",
    ]
)


def _ms(seconds: float) -> float:
    return seconds * 1000


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):7.0f} ms  (max {max(values):.0f})"


async def _first_audio(ws: ClientConnection) -> dict[str, Any]:
    while True:
        frame = json.loads(await ws.recv())
        if frame.get("audio"):
            return frame


async def _until_final(ws: ClientConnection, context_id: str) -> tuple[float | None, float]:
    """(when the context's last audio frame came, when its isFinal came)."""
    last_audio = None
    while True:
        frame = json.loads(await ws.recv())
        if frame.get("contextId") != context_id:
            continue
        if frame.get("isFinal"):
            return last_audio, time.perf_counter()
        if frame.get("audio"):
            last_audio = time.perf_counter()


async def first_audio_s(url: str, voice: str, sentence: str, index: int) -> float:
    query = "model_id=eleven_flash_v2_5&output_format=pcm_24000&auto_mode=true"
    context_id = f"first-audio-{index}"
    async with connect(f"{url}/v1/text-to-speech/{voice}/multi-stream-input?{query}", max_size=None) as ws:
        await ws.send(json.dumps({"text": " ", "context_id": context_id}))
        started = time.perf_counter()
        await ws.send(json.dumps({"text": sentence, "context_id": context_id}))
        await _first_audio(ws)
        elapsed = time.perf_counter() - started
        await ws.send(json.dumps({"context_id": context_id, "flush": True}))
        await ws.send(json.dumps({"context_id": context_id, "close_context": True}))
        await _until_final(ws, context_id)
        await ws.send(json.dumps({"close_socket": True}))
        async for _ in ws:
            pass
    return elapsed


async def barge_in_s(url: str, voice: str, index: int) -> tuple[float, float]:
    """(close to last audio frame, close to isFinal) for a long unflushed turn closed mid-speech."""
    context_id = f"barge-in-{index}"
    query = "output_format=pcm_24000&auto_mode=true"
    async with connect(f"{url}/v1/text-to-speech/{voice}/multi-stream-input?{query}", max_size=None) as ws:
        await ws.send(json.dumps({"text": " ", "context_id": context_id}))
        await ws.send(json.dumps({"text": LONG_TURN, "context_id": context_id}))
        await _first_audio(ws)
        # The user interrupts a little later each run, so the close lands at different points of
        # the synthesis of the turn's next pieces.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_until_final(ws, "never"), 0.2 + 0.25 * index)
        closed = time.perf_counter()
        await ws.send(json.dumps({"context_id": context_id, "close_context": True}))
        last_audio, final = await _until_final(ws, context_id)
        await ws.send(json.dumps({"close_socket": True}))
        async for _ in ws:
            pass
    return max(0.0, (last_audio or closed) - closed), final - closed


async def main(voice: str, repeat: int) -> None:
    server, _ = await start_server(ServerConfig(port=0, voices=(voice,)))
    url = server_url(server)
    engine = get_engine(voice)
    async with server:
        print(f"voice {voice}, {repeat} runs each, server {url}\n")
        print(f"{'sentence':<34} {'first audio (server)':>26} {'raw engine synthesize()':>28}")
        for name, sentence in SENTENCES.items():
            served, raw = [], []
            for index in range(repeat):
                started = time.perf_counter()
                await asyncio.to_thread(engine.synthesize, sentence, SynthesisOptions())
                raw.append(_ms(time.perf_counter() - started))
                served.append(_ms(await first_audio_s(url, voice, sentence, index)))
            label = f"{name} ({len(sentence)} chars)"
            print(f"{label:<34} {_summary(served):>26} {_summary(raw):>28}")
        to_last, to_final = [], []
        for index in range(repeat):
            last, final = await barge_in_s(url, voice, index)
            to_last.append(_ms(last))
            to_final.append(_ms(final))
        print(f"\n{'barge-in: close_context to':<34} {'last audio frame':>26} {'isFinal':>28}")
        print(f"{'long unflushed auto_mode turn':<34} {_summary(to_last):>26} {_summary(to_final):>28}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voice", default="joe")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.voice, args.repeat))
