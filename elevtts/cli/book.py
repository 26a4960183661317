"""`elevtts book`: a book file in, chapter MP3s and one chaptered audiobook out; re-running resumes.

Only typer and the option declarations are imported here; the readers and the library when the
command runs (`elevtts.books.convert` does the work).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from elevtts.cli.common import api_key_for, configure_logging, run_guarded
from elevtts.cli.options import (
    OUTPUT,
    ApiKeyOpt,
    DebugOpt,
    DictionaryOpt,
    ForceOpt,
    FormatOpt,
    InactivityOpt,
    JsonOpt,
    LanguageOpt,
    LogLevelOpt,
    ModelOpt,
    NormalizationOpt,
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
    UrlOpt,
    VoiceOpt,
)
from elevtts.formats import DEFAULT_OUTPUT_FORMAT

if TYPE_CHECKING:
    from elevtts.batch.progress import BatchProgress
    from elevtts.books import Book
    from elevtts.books.convert import BookPlan, BookReport
    from elevtts.config import StreamConfig

BOOK = "Book"

FileArg = Annotated[
    Path,
    typer.Argument(
        metavar="FILE",
        help="An EPUB, PDF, HTML, Markdown or plain-text book.",
        show_default=False,
    ),
]
ListChaptersOpt = Annotated[
    bool,
    typer.Option(
        "--list-chapters",
        help="Print one line per chapter (number, title, words, estimated minutes) and write nothing.",
        rich_help_panel=BOOK,
    ),
]
ChaptersOpt = Annotated[
    str | None,
    typer.Option(
        "--chapters",
        metavar="1-3,7",
        help="Only these chapters (numbers in the whole book, so file names stay the same).",
        show_default=False,
        rich_help_panel=BOOK,
    ),
]
M4bOpt = Annotated[
    bool,
    typer.Option("--m4b", help="Also write <name>.m4b (AAC, same chapters and tags).", rich_help_panel=BOOK),
]
# Not the shared --output-dir: a book gets a directory of its own by default (two books in one
# directory would share chapter names such as 01-chapter-1.mp3).
BookOutputDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--output-dir",
        "-d",
        metavar="PATH",
        help="Where files go (default: output/<book file name>).",
        show_default=False,
        rich_help_panel=OUTPUT,
    ),
]


def book_command(
    ctx: typer.Context,
    file: FileArg,
    list_chapters: ListChaptersOpt = False,
    chapters: ChaptersOpt = None,
    m4b: M4bOpt = False,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    region: RegionOpt = "global",
    retries: RetriesOpt = 3,
    voice: VoiceOpt = None,
    model: ModelOpt = None,
    output_format: FormatOpt = DEFAULT_OUTPUT_FORMAT,
    chunk_length_schedule: ScheduleOpt = None,
    inactivity_timeout: InactivityOpt = 20.0,
    language_code: LanguageOpt = None,
    seed: SeedOpt = None,
    apply_text_normalization: NormalizationOpt = "auto",
    pronunciation_dictionary: DictionaryOpt = None,
    stability: StabilityOpt = None,
    similarity_boost: SimilarityOpt = None,
    style: StyleOpt = None,
    speaker_boost: SpeakerBoostOpt = None,
    speed: SpeedOpt = None,
    output_dir: BookOutputDirOpt = None,
    force: ForceOpt = False,
    subtitles: SubtitlesOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    log_level: LogLevelOpt = None,
) -> None:
    """Convert a book into one MP3 per chapter and one audiobook with chapter marks.

    Writes <NN>-<slug>.mp3 per chapter, then <name>.mp3 with the title, author and a chapter mark
    per chapter. Re-running converts only chapters whose text or settings changed.
    """
    with run_guarded():
        from elevtts.books.convert import BookPlan, parse_chapter_selection
        from elevtts.config import StreamConfig, parse_subtitles
        from elevtts.errors import UsageError
        from elevtts.output import safe_name

        book = _read(file)
        selection = parse_chapter_selection(chapters, len(book.chapters)) if chapters else None
        if list_chapters:
            from elevtts.books.convert import chapter_listing

            for line in chapter_listing(book, selection):
                typer.echo(line)
            return
        configure_logging(debug=debug, log_level=log_level, api_key=api_key)
        config = StreamConfig.from_flags(
            url=url,
            api_key=api_key_for(ctx, api_key),  # never a key to a URL only a .env file named
            region=region,
            voice=voice,
            model=model,
            output_format=output_format,
            chunk_length_schedule=chunk_length_schedule,
            inactivity_timeout=inactivity_timeout,
            language_code=language_code,
            seed=seed,
            apply_text_normalization=apply_text_normalization,
            pronunciation_dictionary=pronunciation_dictionary,
            stability=stability,
            similarity_boost=similarity_boost,
            style=style,
            speaker_boost=speaker_boost,
            speed=speed,
        )
        if config.output_format.codec != "mp3":
            raise UsageError(
                f"--output-format: a book is written as MP3 (its chapters' frames are joined into one"
                f" audiobook); use an mp3_* format, not {config.output_format.name}"
            )
        stem = safe_name(file.stem)
        plan = BookPlan(
            output_dir=output_dir if output_dir is not None else Path("output") / stem,
            chapters=selection,
            subtitles=parse_subtitles(subtitles),
            m4b=m4b,
            force=force,
            jobs=_jobs(config),
            retries=retries,
        )
        _convert(config, book, file=file, stem=stem, plan=plan, as_json=as_json, quiet=quiet)


def _read(file: Path) -> Book:
    from elevtts.books import BookError, MissingExtraError, read_book
    from elevtts.errors import InputError, UsageError

    try:
        return read_book(file)
    except BookError as exc:
        raise InputError(f"cannot read {file}: {exc.reason}") from None
    except MissingExtraError as exc:
        raise UsageError(str(exc)) from None


def _jobs(config: StreamConfig) -> int:
    from elevtts.batch import default_jobs

    return default_jobs(config.target.kind)


def _convert(
    config: StreamConfig, book: Book, *, file: Path, stem: str, plan: BookPlan, as_json: bool, quiet: bool
) -> None:
    import asyncio
    import json

    from rich.console import Console

    from elevtts.batch.progress import SilentBatchProgress
    from elevtts.books.convert import BookProgress, BookReport, format_duration

    console = Console(stderr=True)
    # Progress lines on a terminal only: a log file gets the result, not a line per chapter.
    progress = BookProgress(sys.stderr) if console.is_terminal and not quiet else SilentBatchProgress()
    report = BookReport(source=str(file))
    try:
        asyncio.run(_run(config, book, stem, plan, progress, report))
    except KeyboardInterrupt:
        if not quiet:
            kept = sum(c.status in ("done", "skipped") for c in report.chapters)
            typer.echo(
                f"book: interrupted with {kept} of {len(report.chapters)} chapters done;"
                " re-run the same command to resume",
                err=True,
            )
        raise
    finally:
        if as_json and report.chapters:  # also after Ctrl-C or a failed chapter: what was done
            json.dump(report.to_json(), sys.stdout, indent=2, ensure_ascii=False)
            sys.stdout.write("\n")
            sys.stdout.flush()
    if not quiet:
        audio_s = sum(c.audio_seconds or 0.0 for c in report.chapters if c.status == "done")
        saved = ", ".join(filter(None, (report.audiobook, report.m4b)))
        typer.echo(
            f"book: {len(report.chapters)} chapters; {format_duration(audio_s)} of new audio in"
            f" {format_duration(report.wall_s or 0.0)}; saved {saved}",
            err=True,
        )


async def _run(
    config: StreamConfig,
    book: Book,
    stem: str,
    plan: BookPlan,
    progress: BatchProgress,
    report: BookReport,
) -> BookReport:
    from elevtts.books.convert import convert_book
    from elevtts.speak import send_policy, settings_for_stats, stream_options
    from elevtts.target import load_voices, open_endpoint

    # The voice is loaded only if a chapter is to be spoken: a re-run with nothing to do is quick.
    async with open_endpoint(config.target) as endpoint:

        async def prepare() -> None:
            await load_voices(endpoint, (config.voice_id,), on_status=progress.status)

        return await convert_book(
            book,
            stem=stem,
            endpoint=endpoint,
            options=stream_options(config),
            policy=send_policy(config, markdown_input=False, streamed=False),
            plan=plan,
            progress=progress,
            settings_for_stats=settings_for_stats(config),
            target=config.target.description,
            report=report,
            prepare=prepare,
        )
