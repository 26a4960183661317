"""`elevtts batch`: many files, every speak option, resumable; the library (`elevtts.batch`) does the work.

Only typer and the option declarations are imported here; the library when the command runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from elevtts.cli.common import api_key_for, configure_logging, run_guarded
from elevtts.cli.options import (
    ApiKeyOpt,
    AutoModeOpt,
    DebugOpt,
    DictionaryOpt,
    FlushOpt,
    ForceOpt,
    FormatOpt,
    IdleFlushOpt,
    InactivityOpt,
    JsonOpt,
    KeepChunksOpt,
    LanguageOpt,
    LogLevelOpt,
    MarkdownOpt,
    ModelOpt,
    MultiOpt,
    NormalizationOpt,
    OutputDirOpt,
    QuietOpt,
    RegionOpt,
    RetriesOpt,
    ScheduleOpt,
    SeedOpt,
    SimilarityOpt,
    SpeakerBoostOpt,
    SpeedOpt,
    StabilityOpt,
    StyleOpt,
    SubtitlesOpt,
    SyncAlignmentOpt,
    TryTriggerOpt,
    UrlOpt,
    VoiceOpt,
)
from elevtts.formats import DEFAULT_OUTPUT_FORMAT

if TYPE_CHECKING:
    from elevtts.batch.inputs import BatchInput
    from elevtts.batch.progress import BatchPlan, BatchProgress, BatchReport
    from elevtts.config import StreamConfig

BATCH = "Batch"
JOBS_HELP = (
    "Files in flight, each on its own connection. Default 2: the embedded server shares this machine's"
    " cores, and the live service's free plan allows 2 concurrent requests (raise it to your plan's limit)."
)
GLOB_HELP = (
    "File name pattern for directories, repeatable (default: *.txt and *.md);"
    " a pattern with '/' matches the path below the directory."
)
RETRY_FAILED_HELP = (
    "Try again the files that failed in an earlier run"
    " (otherwise they stay failed until their text or settings change)."
)

PathsArg = Annotated[
    list[str],
    typer.Argument(
        metavar="PATH...",
        help="Files, directories (searched recursively), or '-' for paths on stdin.",
        show_default=False,
    ),
]
JobsOpt = Annotated[
    int | None,
    typer.Option(
        "--jobs", "-j", min=1, max=64, metavar="N", help=JOBS_HELP, show_default=False, rich_help_panel=BATCH
    ),
]
GlobOpt = Annotated[
    list[str] | None,
    typer.Option("--glob", metavar="PATTERN", help=GLOB_HELP, show_default=False, rich_help_panel=BATCH),
]
RetryFailedOpt = Annotated[
    bool, typer.Option("--retry-failed", help=RETRY_FAILED_HELP, rich_help_panel=BATCH)
]


def batch_command(
    ctx: typer.Context,
    paths: PathsArg,
    jobs: JobsOpt = None,
    glob: GlobOpt = None,
    retry_failed: RetryFailedOpt = False,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    region: RegionOpt = "global",
    retries: RetriesOpt = 3,
    multi: MultiOpt = False,
    voice: VoiceOpt = None,
    model: ModelOpt = None,
    output_format: FormatOpt = DEFAULT_OUTPUT_FORMAT,
    chunk_length_schedule: ScheduleOpt = None,
    flush: FlushOpt = "auto",
    auto_mode: AutoModeOpt = False,
    try_trigger_generation: TryTriggerOpt = False,
    inactivity_timeout: InactivityOpt = 20.0,
    sync_alignment: SyncAlignmentOpt = False,
    language_code: LanguageOpt = None,
    seed: SeedOpt = None,
    apply_text_normalization: NormalizationOpt = "auto",
    pronunciation_dictionary: DictionaryOpt = None,
    idle_flush: IdleFlushOpt = 600,
    strip_markdown: MarkdownOpt = None,
    stability: StabilityOpt = None,
    similarity_boost: SimilarityOpt = None,
    style: StyleOpt = None,
    speaker_boost: SpeakerBoostOpt = None,
    speed: SpeedOpt = None,
    output_dir: OutputDirOpt = Path("output"),
    force: ForceOpt = False,
    keep_chunks: KeepChunksOpt = False,
    subtitles: SubtitlesOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    log_level: LogLevelOpt = None,
) -> None:
    """Speak many files into an output directory, several at once; re-running resumes.

    Outputs mirror the input tree under --output-dir; elevtts-manifest.json there records each file.

    A re-run skips finished files, redoes changed and unfinished ones, and leaves earlier failures.
    """
    with run_guarded():
        import asyncio
        import json

        from elevtts.batch.inputs import DEFAULT_PATTERNS, discover_inputs
        from elevtts.batch.manifest import FAILED_BEFORE
        from elevtts.batch.progress import BatchPlan, BatchReport, make_batch_progress
        from elevtts.batch.runner import default_jobs
        from elevtts.config import StreamConfig, parse_subtitles
        from elevtts.errors import BatchIncomplete

        configure_logging(debug=debug, log_level=log_level, api_key=api_key)
        api_key = api_key_for(ctx, api_key)
        config = StreamConfig.from_flags(
            url=url,
            api_key=api_key,
            region=region,
            multi=multi,
            voice=voice,
            model=model,
            output_format=output_format,
            chunk_length_schedule=chunk_length_schedule,
            flush=flush,
            auto_mode=auto_mode,
            try_trigger_generation=try_trigger_generation,
            inactivity_timeout=inactivity_timeout,
            sync_alignment=sync_alignment,
            language_code=language_code,
            seed=seed,
            apply_text_normalization=apply_text_normalization,
            pronunciation_dictionary=pronunciation_dictionary,
            idle_flush=idle_flush,
            strip_markdown=strip_markdown,
            stability=stability,
            similarity_boost=similarity_boost,
            style=style,
            speaker_boost=speaker_boost,
            speed=speed,
        )
        plan = BatchPlan(
            output_dir=output_dir,
            jobs=jobs or default_jobs(config.target.kind),
            retries=retries,
            retry_failed=retry_failed,
            force=force,
            subtitles=parse_subtitles(subtitles),
            keep_chunks=keep_chunks,
        )
        inputs = discover_inputs(
            paths,
            patterns=tuple(glob) if glob else DEFAULT_PATTERNS,
            stdin=sys.stdin if "-" in paths else None,
            exclude=output_dir,
        )
        progress = make_batch_progress(quiet=quiet)
        report = BatchReport()
        try:
            asyncio.run(_run(config, inputs, plan, progress, report))
        finally:
            if as_json and report.files:  # also after Ctrl-C or a fatal error: what was done
                json.dump(report.to_json(), sys.stdout, indent=2, ensure_ascii=False)
                sys.stdout.write("\n")
                sys.stdout.flush()
        failed = report.failed
        if failed:
            first = f"{failed[0].input}: {failed[0].error}"
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            hint = (
                "; --retry-failed tries earlier failures again"
                if any(f.reason == FAILED_BEFORE for f in failed)
                else ""
            )
            raise BatchIncomplete(f"{len(failed)} of {len(report.files)} files failed: {first}{more}{hint}")


async def _run(
    config: StreamConfig,
    inputs: list[BatchInput],
    plan: BatchPlan,
    progress: BatchProgress,
    report: BatchReport,
) -> BatchReport:
    from elevtts.batch.runner import run_batch
    from elevtts.speak import send_policy, settings_for_stats, stream_options
    from elevtts.target import load_voices, open_endpoint

    # The voice is loaded only once there is something to speak: a re-run with nothing to do is quick.
    async with open_endpoint(config.target) as endpoint:

        async def prepare() -> None:
            await load_voices(endpoint, (config.voice_id,), on_status=progress.status)

        return await run_batch(
            inputs,
            endpoint=endpoint,
            options=stream_options(config),
            text_policy=send_policy(config, markdown_input=False, streamed=False),
            markdown_policy=send_policy(config, markdown_input=True, streamed=False),
            plan=plan,
            progress=progress,
            multi=config.multi,
            settings_for_stats=settings_for_stats(config),
            target=config.target.description,
            report=report,
            prepare=prepare,
        )
