"""Cold `elevtts speak` to its first audio byte on stdout, for one or more source trees.

    python benchmarks/cold_speak.py [--repeat 5] [--source DIR ...]

Each run is a fresh `python -m elevtts speak TEXT -o -` (embedded server, voice joe), the source
trees alternating; the time runs from launch to the first byte on stdout. A warm model cache is
made first (the cache is what this measures). Prints the medians with the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TEXT = "Hello, world. This is a test."


def first_byte_s(source: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(source)}
    started = time.perf_counter()
    command = [sys.executable, "-m", "elevtts", "speak", TEXT, "-o", "-"]
    process = subprocess.Popen(
        command, env=env, cwd=source, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert process.stdout is not None
    process.stdout.read(1)
    elapsed = time.perf_counter() - started
    process.stdout.read()
    process.wait()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--source", type=Path, action="append", default=[])
    args = parser.parse_args()
    sources = [Path(__file__).resolve().parent.parent, *args.source]
    first_byte_s(sources[0])  # the model cache, made once
    times: dict[Path, list[float]] = {source: [] for source in sources}
    loads = []
    for _ in range(args.repeat):
        for source in sources:
            times[source].append(first_byte_s(source))
        loads.append(os.getloadavg()[0])
    bytecode = "off" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "on"
    print(
        f"load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores; "
        f"bytecode writing {bytecode}"
    )
    base = statistics.median(times[sources[0]])
    for source in sources:
        median = statistics.median(times[source])
        print(f"{source}: first audio byte p50 {median:.2f} s ({median / base:.2f}x this tree)")


if __name__ == "__main__":
    main()
