"""`elevtts speak`: options in, one frozen configuration, the library does the rest.

Only typer and the option declarations are imported here: the library is imported when the
command runs, so `elevtts --help` stays as fast as Typer itself.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from elevtts.cli.common import api_key_for, configure_logging, process_started_at, run_guarded
from elevtts.cli.options import (
    INPUT,
    OUTPUT,
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
    from collections.abc import AsyncIterator

    from elevtts.config import StreamConfig
    from elevtts.formats import OutputFormat
    from elevtts.output import OutputPaths
    from elevtts.speak import OutputPlan, SendPolicy

# What `-o PATH` writes for each extension when --output-format is not given.
FORMAT_FOR_EXTENSION = {
    ".mp3": DEFAULT_OUTPUT_FORMAT,
    ".wav": "pcm_22050",  # the local voice's own rate; any pcm_* fits a .wav
    ".pcm": "pcm_22050",
    ".ulaw": "ulaw_8000",
    ".alaw": "alaw_8000",
}


def speak_command(
    ctx: typer.Context,
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
            help="Read text from this file (repeatable); '-', /dev/stdin or <(cmd) are read as a stream.",
            rich_help_panel=INPUT,
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            help="Write the audio to this file (.mp3, .wav, .pcm, .ulaw, .alaw: the format follows);"
            " '-' writes raw audio to stdout.",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME", help="Base name of the output files.", rich_help_panel=OUTPUT),
    ] = None,
    play: Annotated[
        bool,
        typer.Option(
            "--play",
            help="Play while receiving (ffplay, mpv, mpg123 or aplay; else in-process with miniaudio).",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
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
    """Speak text from arguments, files or stdin into an audio file, as it streams."""
    started = process_started_at()
    with run_guarded():
        from elevtts.config import StreamConfig, parse_subtitles

        configure_logging(debug=debug, log_level=log_level, api_key=api_key)
        api_key = api_key_for(ctx, api_key)
        to_stdout = output == "-"
        output_path = Path(output) if output and not to_stdout else None
        if output_path is not None:
            output_format = _format_for_path(output_path, output_format, given=_given(ctx, "output_format"))
            _refuse_with_output_path(name=name, output_dir_given=_given(ctx, "output_dir"))
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
        if to_stdout and _is_terminal(sys.stdout):
            from elevtts.errors import UsageError

            raise UsageError(
                "-o - writes raw audio to standard output, which is a terminal here: "
                "pipe it (| aplay ...) or redirect it (> file), or give -o PATH"
            )
        _run(
            config,
            text=text,
            files=file,
            to_stdout=to_stdout,
            output_path=output_path,
            name=name,
            play=play,
            output_dir=output_dir,
            force=force,
            keep_chunks=keep_chunks,
            subtitle_kinds=subtitle_kinds,
            as_json=as_json,
            quiet=quiet,
            retries=retries,
            started=started,
        )


def _given(ctx: typer.Context, parameter: str) -> bool:
    """Whether the user gave this option (on the command line or in the environment)."""
    source = ctx.get_parameter_source(parameter)  # click's ParameterSource (Typer vendors click)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _format_for_path(path: Path, output_format: str, *, given: bool) -> str:
    """The output format `-o PATH` writes: the extension's, or the one given if they agree."""
    from elevtts.config import parse_streamable_format
    from elevtts.errors import UsageError

    extension = path.suffix.lower()
    if extension not in FORMAT_FOR_EXTENSION:
        raise UsageError(
            f"-o {path}: cannot tell the audio format from {extension or 'a name without an extension'!r}; "
            f"use {', '.join(FORMAT_FOR_EXTENSION)} (or -o - for stdout)"
        )
    if not given:
        return FORMAT_FOR_EXTENSION[extension]
    codec = parse_streamable_format(output_format).codec
    fits = "pcm" if extension == ".wav" else extension[1:]
    if codec != fits:
        raise UsageError(
            f"-o {path} holds {fits} audio but --output-format is {output_format}: "
            f"change one (e.g. {FORMAT_FOR_EXTENSION[extension]} for {extension})"
        )
    return output_format


def _refuse_with_output_path(*, name: str | None, output_dir_given: bool) -> None:
    from elevtts.errors import UsageError

    if name is not None or output_dir_given:
        raise UsageError("-o PATH names the file itself: give either -o PATH or --output-dir/--name")


def _run(
    config: StreamConfig,
    *,
    text: list[str] | None,
    files: list[Path] | None,
    to_stdout: bool,
    output_path: Path | None,
    name: str | None,
    play: bool,
    output_dir: Path,
    force: bool,
    keep_chunks: bool,
    subtitle_kinds: tuple[str, ...],
    as_json: bool,
    quiet: bool,
    retries: int,
    started: float,
) -> None:
    import asyncio
    import json
    import time

    from elevtts.display import make_display
    from elevtts.speak import OutputPlan, send_policy

    inputs = _input(text, files, strip_markdown=config.strip_markdown)
    paths = _output_paths(
        config,
        inputs.stem,
        to_stdout=to_stdout,
        output_path=output_path,
        name=name,
        output_dir=output_dir,
        keep_chunks=keep_chunks,
        subtitle_kinds=subtitle_kinds,
    )
    display = make_display(quiet=quiet)
    player = _player(config.output_format, display) if play else None
    plan = OutputPlan(
        paths=paths,
        keep_chunks=keep_chunks,
        subtitles=subtitle_kinds,
        force=force,
        stdout=sys.stdout.buffer if to_stdout else None,
        player=player,
        write_stats=output_path is None,  # -o PATH: that file (and any subtitles asked for) only
    )
    policy = send_policy(config, markdown_input=False, streamed=inputs.streamed)
    try:
        result = asyncio.run(_speak(config, policy, inputs, plan, display, retries=retries))
    except BaseException:
        if to_stdout:
            _quiet_stdout()  # what the failed stdout still buffers must not fail again at exit
        raise
    result.stats["input"] = "stream" if inputs.streamed else "text"
    result.stats["elapsed_ms"] = round((time.monotonic() - started) * 1000, 1)
    display.report(result.stats)
    if result.audio_path is not None and not quiet:
        display.note(f"saved {result.audio_path}")
    if as_json and not to_stdout:
        files_written = {"audio": str(result.audio_path) if result.audio_path else None}
        files_written.update({kind: str(path) for kind, path in result.extra_files.items()})
        json.dump({**result.stats, "files": files_written}, sys.stdout, indent=2)
        sys.stdout.write("\n")


def _output_paths(
    config: StreamConfig,
    stem: str,
    *,
    to_stdout: bool,
    output_path: Path | None,
    name: str | None,
    output_dir: Path,
    keep_chunks: bool,
    subtitle_kinds: tuple[str, ...],
) -> OutputPaths | None:
    from elevtts.output import OutputPaths, ensure_directory, safe_name

    if output_path is not None:
        directory = output_path.parent
        return OutputPaths(ensure_directory(directory), output_path.stem, output_path.suffix[1:])
    if to_stdout and not keep_chunks and not subtitle_kinds:
        return None
    base = safe_name(name, shorten=False) if name else stem
    return OutputPaths(ensure_directory(output_dir), base, config.output_format.extension)


def _quiet_stdout() -> None:
    import contextlib
    import os

    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


async def _speak(
    config: StreamConfig, policy: SendPolicy, inputs: Any, plan: OutputPlan, display: Any, *, retries: int
) -> Any:
    import asyncio

    from elevtts.errors import Interrupted
    from elevtts.speak import settings_for_stats, speak, stream_options
    from elevtts.target import open_endpoint

    settings = settings_for_stats(config, policy)
    if inputs.markdown is not None:
        settings["strip_markdown"] = inputs.markdown
    try:
        async with open_endpoint(
            config.target, voices=(config.voice_id,), on_status=display.status
        ) as endpoint:
            return await speak(
                inputs.source(),
                endpoint=endpoint,
                options=stream_options(config),
                policy=policy,
                plan=plan,
                display=display,
                multi=config.multi,
                settings_for_stats=settings,
                retries=retries,
            )
    except asyncio.CancelledError:  # Ctrl-C or SIGTERM: say what was kept
        part = plan.paths.part if plan.paths is not None and plan.paths.part.exists() else None
        raise Interrupted("interrupted" + (f"; partial audio kept in {part}" if part else "")) from None


def _player(output_format: OutputFormat, display: Any) -> Any:
    from elevtts.player import Player, in_process_player, player_command

    command = player_command(output_format)
    if command is not None:
        return Player(command)
    fallback = in_process_player(output_format)
    if fallback is not None:
        display.note("elevtts: --play: no player program found; playing in-process with miniaudio")
        return fallback
    display.note(
        "elevtts: --play: no player found (install ffplay, mpv or mpg123, aplay for pcm, "
        "or miniaudio: pip install -e '.[play]'); saving only"
    )
    return None


class _Inputs:
    """What to read: the sources in order, whether any is a live stream, and the name stem."""

    def __init__(
        self,
        sources: list[Callable[[], AsyncIterator[str]]],
        *,
        streamed: bool,
        stem: str,
        markdown: dict[str, bool] | None = None,
    ) -> None:
        self.sources = sources
        self.streamed = streamed
        self.stem = stem
        self.markdown = markdown  # per file: whether its Markdown is stripped

    def source(self) -> AsyncIterator[str]:
        from elevtts.speak import chain

        return chain(*(make() for make in self.sources))


def _input(text: list[str] | None, files: list[Path] | None, *, strip_markdown: bool | None) -> _Inputs:
    """The sources from the arguments, the files, or stdin; each file's Markdown by its type."""
    from elevtts.errors import InputError, UsageError
    from elevtts.output import safe_name, timestamped_slug
    from elevtts.speak import (
        NOTHING_TO_SPEAK,
        document_source,
        file_source,
        speakable,
        stream_source,
        stripped_source,
        text_source,
    )

    text = text or []
    files = files or []
    stdin_named = [p for p in files if str(p) == "-"]
    read_stdin = text == ["-"] or (not text and not files and not sys.stdin.isatty())
    if read_stdin:
        if files:
            raise UsageError("give text on stdin or with --file, not both")
        source = stream_source(sys.stdin.fileno())
        if strip_markdown:
            source = stripped_source(source)
        return _Inputs([lambda: source], streamed=True, stem=timestamped_slug("stdin"))
    if text and files:
        raise UsageError("give the text as arguments or with --file, not both")
    if len(stdin_named) > 1:
        raise UsageError("-f - can be given once (standard input is read once)")
    if files:
        makers: list[Callable[[], AsyncIterator[str]]] = []
        markdown: dict[str, bool] = {}
        streamed = False
        for path in files:
            is_markdown = path.suffix.lower() in (".md", ".markdown")
            strip = is_markdown if strip_markdown is None else strip_markdown
            markdown[str(path)] = strip
            if str(path) == "-" or (path.exists() and not path.is_file() and not path.is_dir()):
                streamed = True  # stdin, a pipe (<(cmd)) or a device (/dev/stdin): read as it arrives
                makers.append(_stream_maker(path, strip=strip))
                continue
            if not path.is_file():
                raise InputError(
                    f"cannot read {path}: {'is a directory' if path.is_dir() else 'no such file'}"
                )
            if len(files) == 1 and path.stat().st_size == 0:
                raise InputError(f"nothing to speak: {path} is empty")
            if strip and is_markdown:
                makers.append(lambda path=path: document_source(path))  # type: ignore[misc]
            elif strip:
                makers.append(lambda path=path: stripped_source(file_source(path)))  # type: ignore[misc]
            else:
                makers.append(lambda path=path: file_source(path))  # type: ignore[misc]
        first = files[0]
        first_stem = "stdin" if str(first) == "-" else first.stem
        one_file = len(files) == 1 and str(first) != "-"
        stem = safe_name(first_stem) if one_file else timestamped_slug(first_stem)
        return _Inputs(makers, streamed=streamed, stem=stem, markdown=markdown)
    joined = " ".join(text)
    if not joined.strip():
        raise InputError("nothing to speak: give text, --file, or pipe text on stdin")
    if not speakable(joined):
        raise InputError(NOTHING_TO_SPEAK)
    return _Inputs([lambda: text_source(joined)], streamed=False, stem=timestamped_slug(joined))


def _stream_maker(path: Path, *, strip: bool) -> Callable[[], AsyncIterator[str]]:
    from elevtts.speak import open_stream, stream_source, stripped_source

    def make() -> AsyncIterator[str]:
        if str(path) == "-":
            source = stream_source(sys.stdin.fileno())
        else:
            source = stream_source(open_stream(path), name=str(path))
        return stripped_source(source) if strip else source

    return make
