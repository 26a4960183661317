"""The soak/load suite: the runs of issue 11, measured again by anyone, each figure beside its target.

    python benchmarks/soak.py            # the full run (a few minutes on 2 cores)
    python benchmarks/soak.py --quick    # the same scenarios at 1/10 of the counts
    python benchmarks/soak.py --only concurrent,batch

Every server is a real `elevtts serve` process on loopback (espeak voice), so its RSS and file
descriptors are read from /proc without the suite's own memory mixed in. Scenarios:

- concurrent: 200 streams at once (half mp3, half pcm): 0 failures, every MP3 decodes.
- sequential: 2,000 sessions one after another: server RSS growth (< 10 MB) and file
  descriptors back to their baseline.
- multi: 2,000 turns (one context each) on one multi-stream-input socket: RSS growth (< 2 MB).
- large: 10 concurrent maximum-size (16 MiB) text messages: server RSS before, at peak and
  after the connections close (targets: peak growth < 256 MB, growth after < 32 MB).
- batch: a 400-file `elevtts batch -j 4` killed with SIGKILL at four points, then re-run:
  every file done exactly once, exit 0, every MP3 decodes.
- reconnect: `elevtts speak` while its server is killed and, after `DOWNTIME_S`, restarted on
  the same port: exit 0, a reconnect, and the whole text spoken.

Prints each figure beside its target (PASS/FAIL), writes `benchmarks/results/soak.md`, and exits 1
if a target failed. Loopback only; every count and wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import miniaudio
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "soak.md"
MIB = 1024 * 1024
MAX_MESSAGE_BYTES = 16 * MIB  # what the live service (and our server) accept
SENTENCE = "The soak test speaks this short sentence."
DOWNTIME_S = 1.0  # reconnect: the server is down at least this long before it is back


@dataclass
class Figure:
    scenario: str
    name: str
    value: str
    target: str
    passed: bool | None  # None: reported, no target

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "-"}[self.passed]


# ---------------------------------------------------------------------------------------------
# A real server process


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ELEVTTS_", "ELEVENLABS_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


class Server:
    """`elevtts serve --voice espeak` in its own process; `port=0` picks a free port."""

    def __init__(self, workdir: Path, *, port: int = 0) -> None:
        self.log = (workdir / f"serve-{time.monotonic_ns()}.log").open("wb")
        out = workdir / f"serve-{time.monotonic_ns()}.url"
        with out.open("wb") as stdout:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "elevtts", "serve", "--port", str(port), "--voice", "espeak"],
                cwd=workdir,
                env=clean_env(),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=self.log,
            )
        deadline = time.monotonic() + 60
        while b"\n" not in out.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"elevtts serve did not start (exit {self.process.poll()})")
            time.sleep(0.02)
        self.url = out.read_text().splitlines()[0]

    def stream_url(self, output_format: str = "mp3_44100_128", *, multi: bool = False) -> str:
        kind = "multi-stream-input" if multi else "stream-input"
        return f"{self.url}/v1/text-to-speech/espeak/{kind}?output_format={output_format}"

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


@contextlib.contextmanager
def serving(workdir: Path) -> Iterator[Server]:
    server = Server(workdir)
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------
# One stream at the wire level


@dataclass
class Outcome:
    ok: bool
    audio: bytes
    detail: str


async def one_stream(url: str, text: str = SENTENCE, *, timeout: float = 120) -> Outcome:
    """Open, send text, end input, read to the close: ok = isFinal, audio and a 1000 close."""
    audio, final = bytearray(), False
    try:
        async with asyncio.timeout(timeout), connect(url, max_size=None) as ws:
            await ws.send(json.dumps({"text": " "}))
            await ws.send(json.dumps({"text": text + " "}))
            await ws.send(json.dumps({"text": ""}))
            with contextlib.suppress(ConnectionClosed):
                async for raw in ws:
                    frame = json.loads(raw)
                    if frame.get("audio"):
                        audio += base64.b64decode(frame["audio"])
                    final = final or bool(frame.get("isFinal"))
            code = ws.close_code
    except (OSError, TimeoutError, ConnectionClosed) as exc:
        return Outcome(False, bytes(audio), f"{type(exc).__name__}: {exc}")
    ok = final and code == 1000 and bool(audio)
    return Outcome(ok, bytes(audio), f"close {code}, isFinal {final}, {len(audio)} bytes")


def decodes(mp3: bytes) -> bool:
    try:
        return miniaudio.decode(mp3, nchannels=1).num_frames > 0
    except miniaudio.DecodeError:
        return False


async def settle(server: Server, seconds: float = 1.0) -> None:
    await asyncio.sleep(seconds)  # let the server close sockets and free buffers


# ---------------------------------------------------------------------------------------------
# Scenarios


async def concurrent(workdir: Path, scale: float) -> list[Figure]:
    count = max(2, round(200 * scale))
    with serving(workdir) as server:
        fds_before = server.fds()
        formats = ["mp3_44100_128" if n % 2 == 0 else "pcm_16000" for n in range(count)]
        outcomes = await asyncio.gather(*(one_stream(server.stream_url(fmt)) for fmt in formats))
        failures = [o.detail for o in outcomes if not o.ok]
        bad_mp3 = sum(
            1
            for fmt, o in zip(formats, outcomes, strict=True)
            if o.ok and fmt.startswith("mp3") and not decodes(o.audio)
        )
        await settle(server)
        fds_after = server.fds()
    figures = [
        Figure("concurrent", f"failed streams of {count} (mp3 + pcm)", str(len(failures)), "0", not failures),
        Figure("concurrent", "MP3 streams that do not decode", str(bad_mp3), "0", bad_mp3 == 0),
        Figure(
            "concurrent",
            "server fds after / before",
            f"{fds_after} / {fds_before}",
            "equal",
            fds_after <= fds_before,
        ),
    ]
    if failures:
        print(f"  first failure: {failures[0]}", file=sys.stderr)
    return figures


async def sequential(workdir: Path, scale: float) -> list[Figure]:
    count = max(20, round(2000 * scale))
    warmup = max(5, count // 20)
    failures = 0
    with serving(workdir) as server:
        for _ in range(warmup):
            failures += not (await one_stream(server.stream_url(), "Hi.")).ok
        await settle(server)
        rss_before, fds_before = server.rss_mb(), server.fds()
        for _ in range(count):
            failures += not (await one_stream(server.stream_url(), "Hi.")).ok
        await settle(server)
        rss_after, fds_after = server.rss_mb(), server.fds()
    growth = rss_after - rss_before
    return [
        Figure("sequential", f"failed sessions of {count + warmup}", str(failures), "0", failures == 0),
        Figure(
            "sequential",
            f"server RSS growth over {count} sessions",
            f"{growth:+.1f} MB",
            "< 10 MB",
            growth < 10,
        ),
        Figure(
            "sequential",
            "server fds after / before",
            f"{fds_after} / {fds_before}",
            "equal",
            fds_after <= fds_before,
        ),
    ]


async def multi(workdir: Path, scale: float) -> list[Figure]:
    turns = max(20, round(2000 * scale))
    warmup = max(10, turns // 20)
    failures, rss_before = 0, 0.0
    with serving(workdir) as server:
        async with connect(server.stream_url("pcm_16000", multi=True), max_size=None) as ws:
            for turn in range(warmup + turns):
                if turn == warmup:
                    await settle(server, 0.5)
                    rss_before = server.rss_mb()
                context = f"turn-{turn}"
                await ws.send(json.dumps({"text": "Turn. ", "context_id": context, "flush": True}))
                await ws.send(json.dumps({"context_id": context, "close_context": True}))
                got_audio = False
                async with asyncio.timeout(30):
                    while True:
                        frame = json.loads(await ws.recv())
                        if frame.get("contextId") != context:
                            continue
                        got_audio = got_audio or bool(frame.get("audio"))
                        if frame.get("isFinal"):
                            break
                failures += not got_audio
            await settle(server, 0.5)
            rss_after = server.rss_mb()
            await ws.send(json.dumps({"close_socket": True}))
    growth = rss_after - rss_before
    return [
        Figure("multi", f"turns without audio of {warmup + turns}", str(failures), "0", failures == 0),
        Figure(
            "multi",
            f"server RSS growth over {turns} turns on one socket",
            f"{growth:+.1f} MB",
            "< 2 MB",
            growth < 2,
        ),
    ]


async def large(workdir: Path, scale: float) -> list[Figure]:
    count = max(2, round(10 * scale))
    overhead = len(json.dumps({"text": ""}))
    text = ("word " * (MAX_MESSAGE_BYTES // 5))[: MAX_MESSAGE_BYTES - overhead]
    message = json.dumps({"text": text})
    assert len(message) == MAX_MESSAGE_BYTES
    closes: list[str] = []
    with serving(workdir) as server:
        await one_stream(server.stream_url(), "Warm up.")
        await settle(server)
        rss_before, peak = server.rss_mb(), 0.0

        async def big() -> None:
            try:
                async with connect(server.stream_url(), max_size=None, write_limit=MAX_MESSAGE_BYTES) as ws:
                    await ws.send(json.dumps({"text": " "}))
                    await ws.send(message)
                    await asyncio.sleep(2.0)  # the server holds it while we look at its memory
                closes.append(str(ws.close_code))
            except (OSError, ConnectionClosed) as exc:
                closes.append(type(exc).__name__)

        tasks = [asyncio.ensure_future(big()) for _ in range(count)]
        while not all(t.done() for t in tasks):
            peak = max(peak, server.rss_mb())
            await asyncio.sleep(0.1)
        await settle(server, 3.0)
        rss_after = server.rss_mb()
        healthy = (await one_stream(server.stream_url(), "Still here.")).ok
    peak_growth, after_growth = peak - rss_before, rss_after - rss_before
    return [
        Figure("large", f"server RSS before / peak / after ({count} x 16 MiB)",
               f"{rss_before:.0f} / {peak:.0f} / {rss_after:.0f} MB", "-", None),
        Figure("large", "server RSS growth at peak", f"{peak_growth:+.0f} MB", "< 256 MB", peak_growth < 256),
        Figure("large", "server RSS growth after the connections closed", f"{after_growth:+.0f} MB",
               "< 32 MB", after_growth < 32),
        Figure("large", "a normal stream afterwards", "ok" if healthy else "failed", "ok", healthy),
    ]  # fmt: skip


def _final_mp3s(out: Path) -> dict[str, tuple[int, int]]:
    if not out.exists():
        return {}
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("*.mp3")}


async def batch(workdir: Path, scale: float) -> list[Figure]:
    count = max(40, round(400 * scale))
    src, out = workdir / "batch-src", workdir / "batch-out"
    src.mkdir()
    for n in range(count):
        (src / f"f{n:04}.txt").write_text(f"Batch file number {n}.", encoding="utf-8")
    kill_at = [round(count * share) for share in (0.05, 0.2, 0.45, 0.75)]
    kills, foreign_errors = 0, 0
    with serving(workdir) as server:
        command = [sys.executable, "-m", "elevtts", "batch", str(src), "--url", server.url,
                   "--voice", "espeak", "-d", str(out), "-j", "4", "--json"]  # fmt: skip
        for target in kill_at:
            process = subprocess.Popen(command, cwd=workdir, env=clean_env(), stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE)  # fmt: skip
            deadline = time.monotonic() + 300
            while len(_final_mp3s(out)) < target and process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            if process.poll() is None:
                process.kill()
                kills += 1
            _, stderr = process.communicate()
            foreign_errors += stderr.count(b"is not in the manifest")
        finished = _final_mp3s(out)
        final = subprocess.run(command, cwd=workdir, env=clean_env(), capture_output=True, timeout=900)
    report = json.loads(final.stdout or b"{}")
    states = {Path(f["input"]).stem: f["status"] for f in report.get("files", [])}
    foreign_errors += final.stderr.count(b"is not in the manifest")
    redone = sum(1 for name in finished if states.get(Path(name).stem) != "skipped")
    after = _final_mp3s(out)
    rewritten = sum(1 for name, identity in finished.items() if after.get(name) != identity)
    missing = count - len(after)
    undecodable = sum(1 for p in out.glob("*.mp3") if not decodes(p.read_bytes()))
    return [
        Figure("batch", f"SIGKILLs during a {count}-file batch (-j 4)", str(kills), "4", kills == 4),
        Figure("batch", "re-run exit code", str(final.returncode), "0", final.returncode == 0),
        Figure("batch", '"exists and is not in the manifest" errors', str(foreign_errors), "0",
               foreign_errors == 0),
        Figure("batch", f"final files redone of {len(finished)} finished before the re-run",
               str(max(redone, rewritten)), "0", redone == rewritten == 0),
        Figure("batch", "files missing after the re-run", str(missing), "0", missing == 0),
        Figure("batch", "MP3 files that do not decode", str(undecodable), "0", undecodable == 0),
    ]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def reconnect(workdir: Path, scale: float) -> list[Figure]:
    port = _free_port()
    text = " ".join(f"Sentence number {n} of the reconnect test." for n in range(40))
    out = workdir / "reconnect"
    server = Server(workdir, port=port)
    restarted: Server | None = None
    try:
        speak = subprocess.Popen(
            [sys.executable, "-m", "elevtts", "speak", "--url", server.url, "--voice", "espeak",
             "-d", str(out), "--name", "long", "--json", text],
            cwd=workdir, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        part = out / "long.mp3.part"
        deadline = time.monotonic() + 60
        while not (part.exists() and part.stat().st_size > 20_000) and time.monotonic() < deadline:
            if speak.poll() is not None:
                break
            await asyncio.sleep(0.01)
        killed_at = time.monotonic()
        server.stop(signal.SIGKILL)
        await asyncio.sleep(DOWNTIME_S)  # a restart takes about this long in real life
        restarted = Server(workdir, port=port)
        back_s = time.monotonic() - killed_at
        stdout, stderr = speak.communicate(timeout=300)
    finally:
        server.stop()
        if restarted is not None:
            restarted.stop()
    stats = json.loads(stdout or b"{}") if speak.returncode == 0 else {}
    audio = (out / "long.mp3").read_bytes() if (out / "long.mp3").exists() else b""
    seconds = miniaudio.decode(audio, nchannels=1).duration if audio else 0.0
    if speak.returncode != 0:
        print(f"  speak: {stderr.decode(errors='replace').strip().splitlines()[-1:]}", file=sys.stderr)
    return [
        Figure("reconnect", "server back on the same port after", f"{back_s:.1f} s", "-", None),
        Figure("reconnect", "speak exit code", str(speak.returncode), "0", speak.returncode == 0),
        Figure("reconnect", "reconnects", str(stats.get("reconnects", "-")), ">= 1",
               bool(stats.get("reconnects"))),
        Figure("reconnect", "audio spoken (whole text, 40 sentences)", f"{seconds:.0f} s", "> 60 s",
               seconds > 60),
    ]  # fmt: skip


SCENARIOS: dict[str, Callable[[Path, float], Awaitable[list[Figure]]]] = {
    "concurrent": concurrent,
    "sequential": sequential,
    "multi": multi,
    "large": large,
    "batch": batch,
    "reconnect": reconnect,
}


# ---------------------------------------------------------------------------------------------
# Report


def table(figures: list[Figure]) -> str:
    lines = ["| scenario | figure | value | target | result |", "|---|---|---|---|---|"]
    lines += [f"| {f.scenario} | {f.name} | {f.value} | {f.target} | {f.verdict} |" for f in figures]
    return "\n".join(lines) + "\n"


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1/10 of every count, for iterating")
    parser.add_argument("--only", default="", help="comma-separated scenarios: " + ",".join(SCENARIOS))
    parser.add_argument("--output", type=Path, default=RESULTS, help="the markdown table")
    args = parser.parse_args(argv)
    chosen = [name for name in args.only.split(",") if name] or list(SCENARIOS)
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    scale = 0.1 if args.quick else 1.0
    figures: list[Figure] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="elevtts-soak-") as temp:
        for name in chosen:
            print(f"{name}...", file=sys.stderr, flush=True)
            scenario_started = time.monotonic()
            workdir = Path(temp) / name
            workdir.mkdir()
            try:
                results = await SCENARIOS[name](workdir, scale)
            except Exception as exc:  # a scenario that breaks is a failed figure, not a stop
                results = [
                    Figure(name, "scenario ran to its end", f"{type(exc).__name__}: {exc}", "yes", False)
                ]
            for figure in results:
                print(
                    f"  {figure.verdict:4}  {figure.name}: {figure.value} (target {figure.target})",
                    flush=True,
                )
            print(f"  ({time.monotonic() - scenario_started:.0f} s)", file=sys.stderr, flush=True)
            figures += results
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    heading = f"Soak/load run{' (--quick)' if args.quick else ''}: {when}, "
    heading += f"{time.monotonic() - started:.0f} s, {os.cpu_count()} cores, espeak voice, loopback.\n\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(heading + table(figures), encoding="utf-8")
    failed = [f for f in figures if f.passed is False]
    print(
        f"\n{len(figures) - len(failed)} of {len(figures)} figures met their targets; table in {args.output}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
