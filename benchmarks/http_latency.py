"""Time to first audio on every path of `elevtts serve`, beside the raw engine, in one run.

    python benchmarks/http_latency.py [--voice joe] [--repeat 15] [--baseline-tree DIR]

1. raw engine: `engine.synthesize(sentence)` in this process (what no server can beat);
2. WebSocket: `stream-input`, the sentence with `flush`, to the first audio frame;
3. `POST /v1/text-to-speech/{voice}/stream`: to the first body bytes;
4. `POST /v1/audio/speech` (OpenAI): to the first body bytes.
Each path is asked in turn, round after round, against one `serve` subprocess, so a busy moment
of the machine hits them alike. With `--baseline-tree DIR` (a checkout of an older elevtts), its
`serve` runs beside this one and the WebSocket TTFB of both is measured alternately: the
before/after comparison of a transport change. Medians; ratios hold on a noisy machine,
absolute times do not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from websockets.asyncio.client import connect

from elevtts.server.engines import SynthesisOptions, get_engine

SENTENCE = "The quick brown fox jumps over the lazy dog near the quiet river bank."
REPO = Path(__file__).resolve().parents[1]


@contextmanager
def serving(tree: Path, voice: str) -> Iterator[str]:
    """`elevtts serve --port 0` from the source tree `tree`; yields its ws:// URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ELEVTTS_", "ELEVENLABS_"))}
    env["PYTHONPATH"] = str(tree)
    with tempfile.TemporaryFile() as stdout:
        process = subprocess.Popen(
            [sys.executable, "-m", "elevtts", "serve", "--port", "0", "--voice", voice],
            cwd=tree,
            env=env,
            stdout=stdout,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                stdout.seek(0)
                line = stdout.readline()
                if line.endswith(b"\n"):
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"serve from {tree} did not start")
                time.sleep(0.05)
            yield line.decode().strip()
        finally:
            process.terminate()
            process.wait(timeout=30)


def raw_engine_ms(voice: str) -> float:
    engine = get_engine(voice)
    started = time.perf_counter()
    engine.synthesize(SENTENCE, SynthesisOptions())
    return (time.perf_counter() - started) * 1000


async def websocket_ms(url: str, voice: str) -> float:
    async with connect(f"{url}/v1/text-to-speech/{voice}/stream-input?output_format=mp3_44100_128") as ws:
        await ws.send(json.dumps({"text": " "}))
        started = time.perf_counter()
        await ws.send(json.dumps({"text": SENTENCE + " ", "flush": True}))
        async for raw in ws:
            if json.loads(raw).get("audio"):
                elapsed = (time.perf_counter() - started) * 1000
                break
        await ws.send(json.dumps({"text": ""}))
        async for _ in ws:
            pass
    return elapsed


def first_bytes_ms(url: str, body: dict[str, object]) -> float:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read(1)
        elapsed = (time.perf_counter() - started) * 1000
        response.read()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voice", default="joe")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--baseline-tree", type=Path, help="an older elevtts source tree to compare with")
    args = parser.parse_args()
    voice = args.voice
    raw_engine_ms(voice)  # load and warm up
    with serving(REPO, voice) as url:
        http = url.replace("ws://", "http://", 1)
        paths: dict[str, Callable[[], float]] = {
            "raw engine": lambda: raw_engine_ms(voice),
            "websocket": lambda: asyncio.run(websocket_ms(url, voice)),
            "POST .../stream": lambda: first_bytes_ms(
                f"{http}/v1/text-to-speech/{voice}/stream", {"text": SENTENCE}
            ),
            "POST /v1/audio/speech": lambda: first_bytes_ms(
                f"{http}/v1/audio/speech", {"model": "tts-1", "voice": voice, "input": SENTENCE}
            ),
        }
        baseline = serving(args.baseline_tree, voice) if args.baseline_tree else None
        with baseline if baseline is not None else contextmanager(lambda: iter([None]))() as old_url:
            if old_url is not None:
                paths["websocket, baseline tree"] = lambda: asyncio.run(websocket_ms(old_url, voice))
            for measure in paths.values():
                measure()  # one warm-up each
            times: dict[str, list[float]] = {name: [] for name in paths}
            for _ in range(args.repeat):
                for name, measure in paths.items():
                    times[name].append(measure())
    print(
        f"voice {voice}, {len(SENTENCE)} characters, {args.repeat} rounds, time to first audio (median ms):"
    )
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, median in medians.items():
        spread = f"{min(times[name]):.0f}-{max(times[name]):.0f}"
        print(f"  {name:<28} {median:7.1f}   (range {spread})")
    if "websocket, baseline tree" in medians:
        change = (medians["websocket"] / medians["websocket, baseline tree"] - 1) * 100
        print(f"  websocket against the baseline tree: {change:+.1f} %")


if __name__ == "__main__":
    main()
