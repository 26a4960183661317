"""`elevtts bench`: options in, settings out, the library runs the trials and draws the table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from elevtts.cli.common import fail, run_guarded

# The connection and protocol options are `speak`'s own, so they are spelled and documented alike.
from elevtts.cli.options import ApiKeyOpt, FormatOpt, ModelOpt, RegionOpt, UrlOpt, VoiceOpt

DEFAULT_TEXT = (
    "The quick brown fox jumps over the lazy dog near the quiet river bank. "
    "Streaming speech starts before the text is complete, so the first words matter most. "
    "Every trial opens its own connection and waits for the final frame."
)
BENCH = "Benchmark"


def parse_schedules(values: list[str] | None) -> list[tuple[int, ...] | None]:
    """Each `--schedule A,B,C` (checked as --chunk-length-schedule is); none means the server's default."""
    from elevtts.config import parse_schedule
    from elevtts.errors import UsageError

    schedules: list[tuple[int, ...] | None] = []
    for value in values or []:
        try:
            schedules.append(parse_schedule(value))
        except UsageError as exc:
            raise UsageError(exc.message.replace("--chunk-length-schedule", "--schedule")) from None
    return schedules or [None]


def bench_command(
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    region: RegionOpt = "global",
    voice: VoiceOpt = None,
    model: ModelOpt = None,
    output_format: FormatOpt = "mp3_44100_128",
    trials: Annotated[
        int, typer.Option("--trials", "-n", min=1, help="Trials per setting.", rich_help_panel=BENCH)
    ] = 5,
    text: Annotated[
        str | None,
        typer.Option("--text", help="Text to speak (default: three sentences).", rich_help_panel=BENCH),
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Read the text from this file.", rich_help_panel=BENCH)
    ] = None,
    schedule: Annotated[
        list[str] | None,
        typer.Option(
            "--schedule",
            help="chunk_length_schedule A,B,C (each 50-500). Repeat it to compare schedules side by side.",
            rich_help_panel=BENCH,
        ),
    ] = None,
    auto_mode: Annotated[
        bool, typer.Option("--auto-mode", help="auto_mode=true for every setting.", rich_help_panel=BENCH)
    ] = False,
    compare_auto_mode: Annotated[
        bool,
        typer.Option(
            "--compare-auto-mode", help="Run every setting with auto_mode off and on.", rich_help_panel=BENCH
        ),
    ] = False,
    endpoint: Annotated[
        Literal["ws", "multi", "http"],
        typer.Option(
            "--endpoint",
            help="ws (stream-input), multi (multi-stream-input) or http (refused with exit 2 until the "
            "HTTP endpoints exist).",
            rich_help_panel=BENCH,
        ),
    ] = "ws",
    send: Annotated[
        Literal["words", "whole"],
        typer.Option(
            "--send", help="words (one message per word, as an LLM streams) or whole.", rich_help_panel=BENCH
        ),
    ] = "words",
    flush: Annotated[
        Literal["end", "sentence"],
        typer.Option(
            "--flush",
            help="end (flush once) or sentence (flush after each; each flush is timed).",
            rich_help_panel=BENCH,
        ),
    ] = "end",
    concurrency: Annotated[
        int,
        typer.Option("--concurrency", "-c", min=1, help="Trials run at once (load).", rich_help_panel=BENCH),
    ] = 1,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the results as JSON on stdout.", rich_help_panel=BENCH)
    ] = False,
) -> None:
    """Measure latency: N trials, each on a new connection, settings compared side by side.

    Per trial: connect time, TTFB (first text sent to the first frame that carries audio; an error
    frame is an error, never audio), each flush's latency, total time, audio seconds and the
    real-time factor. The table (stderr) gives min/p50/p95/p99/max and a TTFB histogram. A failed
    trial is reported and the run goes on; the exit code is then that failure's (5 connect, 6 key
    refused, 7 server error, 8 dropped), 0 when every trial succeeded.
    """
    with run_guarded():
        import asyncio
        import json

        from elevtts.bench import BenchReport, BenchSetting, check_setting, render, run_bench
        from elevtts.cli.exit_codes import ExitCode
        from elevtts.errors import InputError, UsageError
        from elevtts.target import open_endpoint, resolve_target

        if text is not None and file is not None:
            raise UsageError("give --text or --file, not both")
        if file is not None:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
        text = text if text is not None else DEFAULT_TEXT
        if not text.strip():
            raise UsageError("the text to speak is empty")
        target = resolve_target(url=url, api_key=api_key, region=region)
        modes = (False, True) if compare_auto_mode else (auto_mode,)
        settings = [
            BenchSetting(
                voice_id=voice or target.default_voice,
                output_format=output_format,
                schedule=each,
                auto_mode=mode,
                endpoint=endpoint,
                model_id=model,
                send=send,
                flush=flush,
            )
            for each in parse_schedules(schedule)
            for mode in modes
        ]

        async def run() -> BenchReport:
            for setting in settings:
                check_setting(setting)  # before the embedded server loads a voice
            async with open_endpoint(target, voices=(settings[0].voice_id,)) as opened:
                return await run_bench(
                    opened, settings, text, trials=trials, concurrency=concurrency, target=target.description
                )

        report = asyncio.run(run())

    from rich.console import Console

    console = Console(stderr=True)
    for renderable in render(report):
        console.print(renderable)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    if report.exit_code != ExitCode.OK:
        raise fail("some trials failed (see above); every trial is reported", report.exit_code)
