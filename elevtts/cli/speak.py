"""`elevtts speak`: options in, one frozen configuration, the library does the rest.

Only typer and the option declarations are imported here: the library is imported when the
command runs, so `elevtts --help` stays as fast as Typer itself.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from elevtts.cli.common import run_guarded
from elevtts.cli.options import (
    INPUT,
    OUTPUT,
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
    StyleOpt,
    SubtitlesOpt,
    SyncAlignmentOpt,
    TryTriggerOpt,
    UrlOpt,
    VoiceOpt,
)
from elevtts.formats import DEFAULT_OUTPUT_FORMAT

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from elevtts.config import StreamConfig
    from elevtts.formats import OutputFormat
    from elevtts.speak import OutputPlan, SendPolicy


def speak_command(
    text: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[TEXT]...",
            help="Text to speak; '-' reads stdin (also read when piped).",
            show_default=False,
        ),
    ] = None,
    file: Annotated[
        list[Path] | None,
        typer.Option(
            "--file",
            "-f",
            metavar="PATH",
            help="Read text from this file (repeatable).",
            rich_help_panel=INPUT,
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output", "-o", metavar="-", help="'-' writes raw audio to stdout.", rich_help_panel=OUTPUT
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME", help="Base name of the output files.", rich_help_panel=OUTPUT),
    ] = None,
    play: Annotated[
        bool,
        typer.Option(
            "--play", help="Play while receiving (ffplay, mpv, mpg123 or aplay).", rich_help_panel=OUTPUT
        ),
    ] = False,
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
    """Speak text from arguments, files or stdin into an audio file, as it streams."""
    with run_guarded():
        from elevtts.config import StreamConfig, parse_subtitles
        from elevtts.errors import UsageError

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
        subtitle_kinds = parse_subtitles(subtitles)
        to_stdout = output == "-"
        if output is not None and not to_stdout:
            raise UsageError(
                "--output takes '-' (raw audio to stdout); use --output-dir and --name for files"
            )
        _run(
            config,
            text=text,
            files=file,
            to_stdout=to_stdout,
            name=name,
            play=play,
            output_dir=output_dir,
            force=force,
            keep_chunks=keep_chunks,
            subtitle_kinds=subtitle_kinds,
            as_json=as_json,
            quiet=quiet,
        )


def _run(
    config: StreamConfig,
    *,
    text: list[str] | None,
    files: list[Path] | None,
    to_stdout: bool,
    name: str | None,
    play: bool,
    output_dir: Path,
    force: bool,
    keep_chunks: bool,
    subtitle_kinds: tuple[str, ...],
    as_json: bool,
    quiet: bool,
) -> None:
    import asyncio
    import json

    from elevtts.display import make_display
    from elevtts.output import OutputPaths, ensure_directory, safe_name
    from elevtts.speak import OutputPlan, send_policy

    source, streamed, markdown_input, stem = _input(text, files)
    paths = None
    if not to_stdout or keep_chunks or subtitle_kinds:
        base = safe_name(name) if name else stem
        paths = OutputPaths(ensure_directory(output_dir), base, config.output_format.extension)
    player = _player(config.output_format) if play else None
    plan = OutputPlan(
        paths=paths,
        keep_chunks=keep_chunks,
        subtitles=subtitle_kinds,
        force=force,
        stdout=sys.stdout.buffer if to_stdout else None,
        player=player,
    )
    display = make_display(quiet=quiet)
    if play and player is None:
        display.note(
            "elevtts: --play: no player found (install ffplay, mpv or mpg123; aplay for pcm); saving only"
        )
    policy = send_policy(config, markdown_input=markdown_input, streamed=streamed)
    result = asyncio.run(_speak(config, policy, source, plan, display))
    display.report(result.stats)
    if result.audio_path is not None and not quiet:
        display.note(f"saved {result.audio_path}")
    if as_json and not to_stdout:
        files_written = {"audio": str(result.audio_path) if result.audio_path else None}
        files_written.update({p.name: str(p) for p in result.extra_files})
        json.dump({**result.stats, "files": files_written}, sys.stdout, indent=2)
        sys.stdout.write("\n")


async def _speak(
    config: StreamConfig, policy: SendPolicy, source: Any, plan: OutputPlan, display: Any
) -> Any:
    from elevtts.speak import settings_for_stats, speak, stream_options
    from elevtts.target import open_endpoint

    async with open_endpoint(config.target, voices=(config.voice_id,)) as endpoint:
        return await speak(
            source,
            endpoint=endpoint,
            options=stream_options(config),
            policy=policy,
            plan=plan,
            display=display,
            multi=config.multi,
            settings_for_stats=settings_for_stats(config, policy),
        )


def _player(output_format: OutputFormat) -> Any:
    from elevtts.player import Player, player_command

    command = player_command(output_format)
    return Player(command) if command else None


def _input(text: list[str] | None, files: list[Path] | None) -> tuple[AsyncIterator[str], bool, bool, str]:
    """(source, streamed, markdown input, name stem) from the arguments, files, or stdin."""
    from elevtts.errors import InputError, UsageError
    from elevtts.output import safe_name, timestamped_slug
    from elevtts.speak import chain, file_source, stream_source, text_source

    text = text or []
    files = files or []
    read_stdin = text == ["-"] or (not text and not files and not sys.stdin.isatty())
    if read_stdin:
        if files:
            raise UsageError("give text on stdin or with --file, not both")
        return stream_source(sys.stdin.fileno()), True, False, timestamped_slug("stdin")
    if text and files:
        raise UsageError("give the text as arguments or with --file, not both")
    if files:
        for path in files:
            if not path.is_file():
                raise InputError(
                    f"cannot read {path}: {'is a directory' if path.is_dir() else 'no such file'}"
                )
        sources = [file_source(p) for p in files]
        markdown = all(p.suffix.lower() in (".md", ".markdown") for p in files)
        stem = safe_name(files[0].stem) if len(files) == 1 else timestamped_slug(files[0].stem)
        return chain(*sources), False, markdown, stem
    joined = " ".join(text)
    if not joined.strip():
        raise UsageError("nothing to speak: give text, --file, or pipe text on stdin")
    return text_source(joined), False, False, timestamped_slug(joined)
