"""`elevtts batch`: many files, every speak option, resumable; the library (`elevtts.batch`) does the work."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from elevtts.batch.inputs import DEFAULT_PATTERNS, BatchInput, discover_inputs
from elevtts.batch.manifest import FAILED_BEFORE
from elevtts.batch.progress import BatchPlan, BatchProgress, BatchReport, make_batch_progress
from elevtts.batch.runner import default_jobs, run_batch
from elevtts.cli import app
from elevtts.cli.common import run_guarded
from elevtts.cli.speak import (
    ApiKeyOpt,
    AutoModeOpt,
    DictionaryOpt,
    FlushOpt,
    ForceOpt,
    FormatOpt,
    IdleFlushOpt,
    InactivityOpt,
    JsonOpt,
    KeepChunksOpt,
    LanguageOpt,
    MarkdownOpt,
    ModelOpt,
    MultiOpt,
    NormalizationOpt,
    OutputDirOpt,
    QuietOpt,
    RegionOpt,
    ScheduleOpt,
    SeedOpt,
    SimilarityOpt,
    SpeakerBoostOpt,
    SpeedOpt,
    StabilityOpt,
    StreamFlags,
    StyleOpt,
    SubtitlesOpt,
    SyncAlignmentOpt,
    TryTriggerOpt,
    UrlOpt,
    VoiceOpt,
    flags_from,
    parse_subtitles,
)
from elevtts.errors import BatchIncomplete
from elevtts.protocol import DEFAULT_OUTPUT_FORMAT
from elevtts.target import open_endpoint

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
RETRIES_HELP = (
    "Further attempts after a dropped connection, an overloaded server or a connection failure"
    " (jittered exponential backoff, honouring the server's retry hints)."
)

PathsArg = Annotated[
    list[str],
    typer.Argument(
        help="Files, directories (searched recursively), or '-' for paths on stdin.", show_default=False
    ),
]
JobsOpt = Annotated[
    int | None,
    typer.Option("--jobs", "-j", min=1, max=64, help=JOBS_HELP, show_default=False, rich_help_panel=BATCH),
]
GlobOpt = Annotated[
    list[str] | None, typer.Option("--glob", help=GLOB_HELP, show_default=False, rich_help_panel=BATCH)
]
RetryFailedOpt = Annotated[
    bool, typer.Option("--retry-failed", help=RETRY_FAILED_HELP, rich_help_panel=BATCH)
]
RetriesOpt = Annotated[
    int, typer.Option("--retries", min=0, max=20, help=RETRIES_HELP, rich_help_panel=BATCH)
]


@app.command(name="batch")
def batch_command(
    paths: PathsArg,
    jobs: JobsOpt = None,
    glob: GlobOpt = None,
    retry_failed: RetryFailedOpt = False,
    retries: RetriesOpt = 3,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    region: RegionOpt = "global",
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
) -> None:
    """Speak many files into an output directory, several at once; re-running resumes.

    Outputs mirror the input tree under --output-dir; elevtts-manifest.json there records each file.

    A re-run skips finished files, redoes changed and unfinished ones, and leaves earlier failures.

    Exit codes: 0 all done, 10 some files failed (the rest are done), 130 interrupted (resumable).
    """
    with run_guarded():
        flags = flags_from(locals())
        plan = BatchPlan(
            output_dir=output_dir,
            jobs=jobs or default_jobs(flags.target.kind),
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
            asyncio.run(_run(flags, inputs, plan, progress, report))
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
    flags: StreamFlags,
    inputs: list[BatchInput],
    plan: BatchPlan,
    progress: BatchProgress,
    report: BatchReport,
) -> BatchReport:
    async with open_endpoint(flags.target, voices=(flags.options.voice_id,)) as endpoint:
        return await run_batch(
            inputs,
            endpoint=endpoint,
            options=flags.options,
            text_policy=flags.policy_for(markdown_input=False, streamed=False),
            markdown_policy=flags.policy_for(markdown_input=True, streamed=False),
            plan=plan,
            progress=progress,
            multi=flags.multi,
            settings_for_stats=flags.settings,
            target=flags.target.description,
            report=report,
        )
