"""How much does `elevtts batch` add on top of the engine? One run, one process, same texts.

Makes N text files of a few sentences each in a temporary directory, speaks them with the batch
library against the embedded local server (default neural voice "joe", MP3), then times the raw
engine (`get_engine(voice).synthesize(text, SynthesisOptions())`) over the same texts, and prints
the batch wall time, the summed engine time, their ratio and the peak RSS.

The engine is timed before and after the batch (the mean is the reference), and process CPU
time is reported next to wall time: on a shared machine, CPU time moves less with other load.

    python benchmarks/batch_bench.py [--files 50] [--jobs 2] [--voice joe] [--json]

The engine is loaded and warmed up before either timing, so neither pays for it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from elevtts.batch.inputs import discover_inputs
from elevtts.batch.progress import BatchPlan
from elevtts.batch.runner import run_batch
from elevtts.client import StreamOptions
from elevtts.server.engines import SynthesisOptions, get_engine
from elevtts.speak import SendPolicy
from elevtts.target import Target, open_endpoint

SUBJECTS = [
    "The old lighthouse",
    "A quiet river",
    "The morning train",
    "Our small garden",
    "The city library",
]
VERBS = ["watches over", "winds past", "carries", "welcomes", "remembers"]
OBJECTS = [
    "the sleepy harbour town",
    "travellers from distant valleys",
    "every child who reads a story",
    "the first warm light of spring",
    "long conversations about the future",
]
ENDINGS = [
    "before the sun goes down.",
    "in every kind of weather.",
    "without asking for thanks.",
    "all year long.",
]


def make_texts(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        sentences = [
            f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(ENDINGS)}"
            for _ in range(rng.randint(3, 5))
        ]
        texts.append(" ".join(sentences))
    return texts


def rss_mb() -> float:
    """Current resident set size (Linux /proc), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread: the embedded server is in-process
    return usage.ru_utime + usage.ru_stime


def time_engine(engine: Any, texts: list[str]) -> tuple[float, float, float]:
    """(summed wall seconds, CPU seconds, audio seconds) of the raw engine over the texts."""
    wall, audio, cpu_start = 0.0, 0.0, cpu_s()
    for text in texts:
        started = time.perf_counter()
        speech = engine.synthesize(text, SynthesisOptions())
        wall += time.perf_counter() - started
        audio += speech.duration_s
    return wall, cpu_s() - cpu_start, audio


async def bench(files: int, jobs: int, voice: str) -> dict[str, Any]:
    texts = make_texts(files)
    with tempfile.TemporaryDirectory(prefix="elevtts-bench-") as tmp:
        src, out = Path(tmp) / "src", Path(tmp) / "out"
        src.mkdir()
        for index, text in enumerate(texts):
            (src / f"file-{index:03d}.txt").write_text(text, encoding="utf-8")
        engine = get_engine(voice)
        engine.synthesize("Warming up the engine.", SynthesisOptions())
        load_start = os.getloadavg()[0]
        engine_before_s, engine_before_cpu, engine_audio_s = time_engine(engine, texts)
        async with open_endpoint(Target("embedded"), voices=(voice,)) as endpoint:
            rss_before = rss_mb()
            started, cpu_start = time.perf_counter(), cpu_s()
            report = await run_batch(
                discover_inputs([src]),
                endpoint=endpoint,
                options=StreamOptions(voice_id=voice),
                text_policy=SendPolicy(),
                plan=BatchPlan(output_dir=out, jobs=jobs),
            )
            batch_s, batch_cpu = time.perf_counter() - started, cpu_s() - cpu_start
        rss_after_batch = rss_mb()
        engine_after_s, engine_after_cpu, _ = time_engine(engine, texts)
        load_end = os.getloadavg()[0]
        engine_s = (engine_before_s + engine_after_s) / 2
        engine_cpu = (engine_before_cpu + engine_after_cpu) / 2
        totals = report.totals()
        return {
            "files": files,
            "jobs": jobs,
            "voice": voice,
            "chars": sum(len(t) for t in texts),
            "ok": report.ok,
            "done": totals["done"],
            "batch_wall_s": round(batch_s, 3),
            "engine_sum_s": round(engine_s, 3),
            "engine_sum_s_before_after": [round(engine_before_s, 3), round(engine_after_s, 3)],
            "ratio_batch_to_engine": round(batch_s / engine_s, 3),
            "batch_cpu_s": round(batch_cpu, 3),
            "engine_cpu_s": round(engine_cpu, 3),
            "ratio_cpu_batch_to_engine": round(batch_cpu / engine_cpu, 3),
            "audio_seconds_batch": totals["audio_seconds"],
            "audio_seconds_engine": round(engine_audio_s, 3),
            "batch_real_time_factor": round(batch_s / totals["audio_seconds"], 4)
            if totals["audio_seconds"]
            else None,
            "rss_mb_before_batch": round(rss_before, 1),
            "rss_mb_after_batch": round(rss_after_batch, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "load_average_1min_start_end": [round(load_start, 2), round(load_end, 2)],
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--voice", default="joe")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = parser.parse_args()
    result = asyncio.run(bench(args.files, args.jobs, args.voice))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    r = result
    print(f"{r['files']} files, {r['chars']:,} chars, voice {r['voice']}, jobs {r['jobs']}, {r['cpus']} CPUs")
    batch_line = f"{r['batch_wall_s']:8.2f} s wall  {r['batch_cpu_s']:8.2f} s CPU  ({r['done']} done)"
    print(f"batch                 {batch_line}")
    print(f"raw engine, summed    {r['engine_sum_s']:8.2f} s wall  {r['engine_cpu_s']:8.2f} s CPU")
    ratios = f"{r['ratio_batch_to_engine']:8.3f} wall    {r['ratio_cpu_batch_to_engine']:8.3f} CPU"
    print(f"ratio batch / engine  {ratios}")
    print(
        f"audio                 {r['audio_seconds_batch']:8.2f} s (engine: {r['audio_seconds_engine']:.2f} s)"
    )
    print(f"RSS before / after    {r['rss_mb_before_batch']:.0f} / {r['rss_mb_after_batch']:.0f} MB")
    print(f"peak RSS              {r['peak_rss_mb']:8.0f} MB")
    print(f"load average          {r['load_average_1min_start_end']}")


if __name__ == "__main__":
    main()
