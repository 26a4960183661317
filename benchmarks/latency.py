"""Latency of the local server and of `elevtts speak`, each beside the raw engine in the same run.

    python benchmarks/latency.py [--voice joe] [--repeat 5]

1. raw engine: `engine.synthesize(sentence)` alone (what no server can beat);
2. server: a `flush` of that sentence to its first audio frame, and the same when 10 or 40
   more sentences follow it in the same flush (the first audio must not wait for them);
3. speak: TTFB of `elevtts speak "<sentence>"` through the embedded server (library path);
4. stdin: a producer writes sentences into `elevtts speak -` with pauses; the delay from each
   sentence's end on the pipe to its first audio bytes on stdout.
Ratios hold on a noisy machine; absolute times do not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import statistics
import subprocess
import sys
import time

from websockets.asyncio.client import connect

from elevtts.client import StreamOptions
from elevtts.output import OutputPaths
from elevtts.protocol import StreamParams
from elevtts.server.app import ServerConfig, server_url, start_server
from elevtts.server.engines import SynthesisOptions, get_engine
from elevtts.speak import OutputPlan, SendPolicy, speak, text_source
from elevtts.target import Target, open_endpoint

SENTENCE = "The quick brown fox jumps over the lazy dog near the quiet river bank."
FILLER = " The afternoon light faded slowly while the travellers kept walking toward the hills."
STDIN_SENTENCES = [
    "Streaming input starts speaking before the text is complete.",
    "Each sentence is sent as soon as the pipe goes quiet.",
    "The last one ends the input.",
]


def raw_engine_ms(voice: str, text: str, repeat: int) -> float:
    engine = get_engine(voice)
    engine.synthesize("Warm up.", SynthesisOptions())
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        engine.synthesize(text, SynthesisOptions())
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def server_first_frame_ms(url: str, voice: str, text: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        async with connect(f"{url}/v1/text-to-speech/{voice}/stream-input?output_format=mp3_44100_128") as ws:
            await ws.send(json.dumps({"text": " "}))
            started = time.perf_counter()
            await ws.send(json.dumps({"text": text + " ", "flush": True}))
            while not json.loads(await ws.recv()).get("audio"):
                pass
            times.append((time.perf_counter() - started) * 1000)
            await ws.send(json.dumps({"text": ""}))
            async for _ in ws:
                pass
    return statistics.median(times)


async def speak_ttfb_ms(voice: str, repeat: int, directory: str) -> float:
    values = []
    async with open_endpoint(Target("embedded"), voices=(voice,)) as endpoint:
        for index in range(repeat):
            result = await speak(
                text_source(SENTENCE),
                endpoint=endpoint,
                options=StreamOptions(voice_id=voice, params=StreamParams()),
                policy=SendPolicy(),
                plan=OutputPlan(
                    paths=OutputPaths(__import__("pathlib").Path(directory), f"b{index}", "mp3"),
                    write_stats=False,
                    force=True,
                ),
            )
            values.append(result.stats["ttfb_ms"])
    return statistics.median(values)


def stdin_delays_ms(voice: str) -> list[float]:
    """Sentence end on the pipe -> first audio bytes of that sentence on stdout."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "elevtts",
            "speak",
            "-",
            "--voice",
            voice,
            "-o",
            "-",
            "--output-format",
            "pcm_22050",
            "-q",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k not in ("ELEVENLABS_API_KEY", "ELEVTTS_URL")},
    )
    assert process.stdin and process.stdout
    time.sleep(3.0)  # let the embedded server load the voice before the first sentence
    delays = []
    for index, sentence in enumerate(STDIN_SENTENCES):
        last = index == len(STDIN_SENTENCES) - 1
        process.stdin.write((sentence + ("\n" if last else " ")).encode())
        process.stdin.flush()
        written = time.perf_counter()
        if last:
            process.stdin.close()
        ready, _, _ = select.select([process.stdout], [], [], 30)
        if not ready:
            raise RuntimeError("no audio within 30 s")
        os.read(process.stdout.fileno(), 1 << 20)
        delays.append((time.perf_counter() - written) * 1000)
        if not last:
            deadline = time.monotonic() + 2.5  # drain this sentence's audio before the next one
            while time.monotonic() < deadline:
                if select.select([process.stdout], [], [], 0.1)[0]:
                    os.read(process.stdout.fileno(), 1 << 20)
    process.stdout.read()
    process.wait(timeout=60)
    return delays


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--voice", default="joe")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    server, _ = await start_server(ServerConfig(port=0, voices=(args.voice,)))
    url = server_url(server)
    raw = raw_engine_ms(args.voice, SENTENCE, args.repeat)
    rows: list[tuple[str, float, float | None]] = [("raw engine: synthesize the sentence", raw, None)]
    for extra in (0, 10, 40):
        text = SENTENCE + FILLER * extra
        label = "server: flush -> first frame" + (f" (+{extra} sentences)" if extra else "")
        rows.append((label, await server_first_frame_ms(url, args.voice, text, args.repeat), raw))
    server.close()
    await server.wait_closed()
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        rows.append(
            ("speak: TTFB, embedded server", await speak_ttfb_ms(args.voice, args.repeat, directory), raw)
        )
    delays = await asyncio.to_thread(stdin_delays_ms, args.voice)
    for sentence, delay in zip(STDIN_SENTENCES, delays, strict=True):
        own_raw = raw_engine_ms(args.voice, sentence, args.repeat)
        rows.append((f"raw engine: {len(sentence)}-char stdin sentence", own_raw, None))
        rows.append(("stdin: its end on the pipe -> its first audio on stdout", delay, own_raw))

    print(f"voice {args.voice}, median of {args.repeat} (stdin rows: one run each)\n")
    print(f"| {'measurement':<58} | {'ms':>8} | {'x raw':>6} |")
    print(f"|{'-' * 60}|{'-' * 10}|{'-' * 8}|")
    for label, value, reference in rows:
        ratio = "" if reference is None else f"{value / reference:.2f}"
        print(f"| {label:<58} | {value:8.1f} | {ratio:>6} |")


if __name__ == "__main__":
    asyncio.run(main())
