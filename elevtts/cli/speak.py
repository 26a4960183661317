"""`elevtts speak`: options in, one frozen configuration, the library does the rest."""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from elevtts.cli import app
from elevtts.cli.common import run_guarded
from elevtts.client import StreamOptions
from elevtts.display import make_display
from elevtts.errors import InputError, UsageError
from elevtts.output import OutputPaths, ensure_directory, safe_name, timestamped_slug
from elevtts.protocol import (
    DEFAULT_OUTPUT_FORMAT,
    MAX_DICTIONARY_LOCATORS,
    MAX_INACTIVITY_TIMEOUT,
    DictionaryLocator,
    ProtocolError,
    StreamParams,
    VoiceSettings,
    check_schedule,
)
from elevtts.speak import (
    FLUSH_POLICIES,
    SUBTITLE_KINDS,
    OutputPlan,
    SendPolicy,
    chain,
    file_source,
    options_for_stats,
    speak,
    stream_source,
    text_source,
)
from elevtts.target import Target, open_endpoint, resolve_target

CONNECTION = "Connection"
PROTOCOL = "Protocol options"
VOICE = "Voice settings"
OUTPUT = "Output"


@dataclass(frozen=True)
class StreamFlags:
    """Everything shared by `speak` and `batch` that shapes the stream."""

    target: Target
    options: StreamOptions
    policy: SendPolicy
    multi: bool = False
    markdown: str = "auto"  # "on" | "off" | "auto" (on for .md files)
    settings: dict[str, Any] = field(default_factory=dict)

    def policy_for(self, *, markdown_input: bool, streamed: bool) -> SendPolicy:
        strip = self.markdown == "on" or (self.markdown == "auto" and markdown_input)
        flush = self.policy.flush
        if flush == "auto":
            flush = "sentence" if streamed else "end"
        return SendPolicy(
            flush=flush,
            try_trigger_generation=self.policy.try_trigger_generation,
            idle_flush_ms=self.policy.idle_flush_ms,
            strip_markdown=strip,
            max_chunk_chars=self.policy.max_chunk_chars,
        )


def parse_schedule(value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        numbers = [float(part) for part in value.replace(" ", "").split(",") if part]
    except ValueError:
        raise UsageError(
            f"--chunk-length-schedule must be numbers separated by commas, not {value!r}"
        ) from None
    try:
        return check_schedule(numbers)
    except ProtocolError as exc:
        raise UsageError(f"--chunk-length-schedule: {exc.message}") from None


def parse_locators(values: list[str] | None) -> tuple[DictionaryLocator, ...]:
    values = values or []
    if len(values) > MAX_DICTIONARY_LOCATORS:
        raise UsageError(f"--pronunciation-dictionary may be given at most {MAX_DICTIONARY_LOCATORS} times")
    locators = []
    for value in values:
        dictionary_id, _, version = value.partition(":")
        if not dictionary_id:
            raise UsageError(f"--pronunciation-dictionary takes ID[:VERSION], not {value!r}")
        locators.append(DictionaryLocator(dictionary_id, version or None))
    return tuple(locators)


def parse_subtitles(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    kinds = tuple(dict.fromkeys(k.strip().lower() for k in value.split(",") if k.strip()))
    unknown = [k for k in kinds if k not in SUBTITLE_KINDS]
    if unknown:
        raise UsageError(
            f"--subtitles takes {', '.join(SUBTITLE_KINDS)} (comma-separated), not {', '.join(unknown)}"
        )
    return kinds


def build_flags(
    *,
    url: str | None,
    api_key: str | None,
    region: str,
    voice: str | None,
    model: str | None,
    output_format: str,
    chunk_length_schedule: str | None,
    flush: str,
    auto_mode: bool,
    try_trigger_generation: bool,
    stability: float | None,
    similarity_boost: float | None,
    style: float | None,
    speaker_boost: bool | None,
    speed: float | None,
    pronunciation_dictionary: list[str] | None,
    inactivity_timeout: float,
    sync_alignment: bool,
    language_code: str | None,
    seed: int | None,
    apply_text_normalization: str,
    idle_flush: int,
    strip_markdown: bool | None,
    multi: bool,
) -> StreamFlags:
    """Check every option locally (before connecting) and freeze them into one object."""
    if flush not in (*FLUSH_POLICIES, "auto"):
        raise UsageError(f"--flush must be one of auto, {', '.join(FLUSH_POLICIES)}; not {flush!r}")
    if apply_text_normalization not in ("auto", "on", "off"):
        raise UsageError(
            f"--apply-text-normalization must be auto, on or off, not {apply_text_normalization!r}"
        )
    if not 0 < inactivity_timeout <= MAX_INACTIVITY_TIMEOUT:
        raise UsageError(
            f"--inactivity-timeout must be above 0 and at most {MAX_INACTIVITY_TIMEOUT:g} seconds"
        )
    target = resolve_target(url=url, api_key=api_key, region=region)
    voice_values: dict[str, Any] = {
        "stability": stability,
        "similarity_boost": similarity_boost,
        "style": style,
        "use_speaker_boost": speaker_boost,
        "speed": speed,
    }
    given = {k: v for k, v in voice_values.items() if v is not None}
    voice_settings = VoiceSettings(**given) if given else None
    params = StreamParams(
        model_id=model,
        output_format=output_format,
        inactivity_timeout=inactivity_timeout,
        sync_alignment=sync_alignment,
        auto_mode=auto_mode,
        language_code=language_code,
        seed=seed,
        apply_text_normalization=apply_text_normalization,
    )
    options = StreamOptions(
        voice_id=voice or target.default_voice,
        params=params,
        voice_settings=voice_settings,
        schedule=parse_schedule(chunk_length_schedule),
        dictionary_locators=parse_locators(pronunciation_dictionary),
    )
    policy = SendPolicy(flush=flush, try_trigger_generation=try_trigger_generation, idle_flush_ms=idle_flush)
    markdown = "auto" if strip_markdown is None else ("on" if strip_markdown else "off")
    settings = options_for_stats(options, policy, target.description)
    settings["multi"] = multi
    return StreamFlags(target, options, policy, multi, markdown, settings)


def flags_from(parameters: dict[str, Any]) -> StreamFlags:
    """`build_flags` from a command's parameters: `speak` and `batch` declare the same shared options."""
    return build_flags(**{name: parameters[name] for name in inspect.signature(build_flags).parameters})


# Options shared with `batch` (Typer reads these Annotated aliases).
UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="ELEVTTS_URL",
        help="Server: ws://… or wss://… (default: the live service with a key, else the embedded server).",
        rich_help_panel=CONNECTION,
    ),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="ELEVENLABS_API_KEY",
        help="API key (also from the environment or .env). Never printed.",
        show_default=False,
        rich_help_panel=CONNECTION,
    ),
]
RegionOpt = Annotated[
    str,
    typer.Option(
        "--region",
        envvar="ELEVTTS_REGION",
        help="Live-service host: global, us, eu, in, sg.",
        rich_help_panel=CONNECTION,
    ),
]
MultiOpt = Annotated[
    bool,
    typer.Option(
        "--multi", help="Use the multi-stream-input endpoint (one context).", rich_help_panel=CONNECTION
    ),
]
VoiceOpt = Annotated[
    str | None,
    typer.Option(
        "--voice",
        "-v",
        envvar="ELEVTTS_VOICE",
        help="Voice id (local default: joe; see `elevtts voices`).",
        rich_help_panel=PROTOCOL,
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", envvar="ELEVTTS_MODEL", help="model_id, e.g. eleven_flash_v2_5.", rich_help_panel=PROTOCOL
    ),
]
FormatOpt = Annotated[
    str,
    typer.Option(
        "--output-format",
        envvar="ELEVTTS_OUTPUT_FORMAT",
        help="mp3_44100_128, pcm_16000, ulaw_8000, …",
        rich_help_panel=PROTOCOL,
    ),
]
ScheduleOpt = Annotated[
    str | None,
    typer.Option(
        "--chunk-length-schedule",
        help="Comma-separated, each 50-500 (server default 120,160,250,290).",
        rich_help_panel=PROTOCOL,
    ),
]
FlushOpt = Annotated[
    str,
    typer.Option(
        "--flush",
        help="When to send flush: auto (sentence for stdin, else end), end, sentence, paragraph, never.",
        rich_help_panel=PROTOCOL,
    ),
]
AutoModeOpt = Annotated[
    bool,
    typer.Option(
        "--auto-mode", help="auto_mode=true: generate per sentence, no schedule.", rich_help_panel=PROTOCOL
    ),
]
TryTriggerOpt = Annotated[
    bool,
    typer.Option(
        "--try-trigger-generation",
        help="Send try_trigger_generation with every chunk.",
        rich_help_panel=PROTOCOL,
    ),
]
InactivityOpt = Annotated[
    float,
    typer.Option(
        "--inactivity-timeout",
        help="Seconds (max 180); keep-alives are sent before it expires.",
        rich_help_panel=PROTOCOL,
    ),
]
SyncAlignmentOpt = Annotated[
    bool, typer.Option("--sync-alignment", help="sync_alignment=true.", rich_help_panel=PROTOCOL)
]
LanguageOpt = Annotated[
    str | None, typer.Option("--language-code", help="ISO 639-1 language code.", rich_help_panel=PROTOCOL)
]
SeedOpt = Annotated[
    int | None,
    typer.Option("--seed", min=0, max=4294967295, help="Best-effort determinism.", rich_help_panel=PROTOCOL),
]
NormalizationOpt = Annotated[
    str, typer.Option("--apply-text-normalization", help="auto, on or off.", rich_help_panel=PROTOCOL)
]
DictionaryOpt = Annotated[
    list[str] | None,
    typer.Option("--pronunciation-dictionary", help="ID[:VERSION], up to 3.", rich_help_panel=PROTOCOL),
]
IdleFlushOpt = Annotated[
    int,
    typer.Option(
        "--idle-flush",
        min=0,
        help="Flush buffered text when input pauses this many ms (0: never).",
        rich_help_panel=PROTOCOL,
    ),
]
MarkdownOpt = Annotated[
    bool | None,
    typer.Option(
        "--strip-markdown/--keep-markdown",
        help="Strip Markdown before speaking (default: on for .md files).",
        show_default=False,
        rich_help_panel=PROTOCOL,
    ),
]
StabilityOpt = Annotated[float | None, typer.Option("--stability", min=0.0, max=1.0, rich_help_panel=VOICE)]
SimilarityOpt = Annotated[
    float | None, typer.Option("--similarity-boost", min=0.0, max=1.0, rich_help_panel=VOICE)
]
StyleOpt = Annotated[float | None, typer.Option("--style", min=0.0, max=1.0, rich_help_panel=VOICE)]
SpeakerBoostOpt = Annotated[
    bool | None, typer.Option("--speaker-boost/--no-speaker-boost", show_default=False, rich_help_panel=VOICE)
]
SpeedOpt = Annotated[
    float | None,
    typer.Option("--speed", min=0.7, max=1.2, help="Speaking rate, 0.7-1.2.", rich_help_panel=VOICE),
]
OutputDirOpt = Annotated[
    Path,
    typer.Option(
        "--output-dir", "-d", envvar="ELEVTTS_OUTPUT_DIR", help="Where files go.", rich_help_panel=OUTPUT
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite existing files.", rich_help_panel=OUTPUT)]
KeepChunksOpt = Annotated[
    bool,
    typer.Option(
        "--keep-chunks",
        help="Also write each audio chunk and its alignment to <output-dir>/<name>/.",
        rich_help_panel=OUTPUT,
    ),
]
SubtitlesOpt = Annotated[
    str | None,
    typer.Option("--subtitles", help="Word-level subtitles: srt,vtt,json.", rich_help_panel=OUTPUT),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the statistics as JSON on stdout.", rich_help_panel=OUTPUT)
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress or table on stderr.", rich_help_panel=OUTPUT)
]


@app.command(name="speak")
def speak_command(
    text: Annotated[
        list[str] | None,
        typer.Argument(help="Text to speak; '-' reads stdin (also read when piped).", show_default=False),
    ] = None,
    file: Annotated[
        list[Path] | None,
        typer.Option("--file", "-f", help="Read text from this file (repeatable).", rich_help_panel=OUTPUT),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="'-' writes raw audio to stdout.", rich_help_panel=OUTPUT),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Base name of the output files.", rich_help_panel=OUTPUT)
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
        flags = flags_from(locals())
        source, streamed, markdown_input, stem = _input(text, file)
        to_stdout = output == "-"
        if output is not None and not to_stdout:
            raise UsageError(
                "--output takes '-' (raw audio to stdout); use --output-dir and --name for files"
            )
        subtitle_kinds = parse_subtitles(subtitles)
        from elevtts.audio import extension_for

        paths = None
        if not to_stdout or keep_chunks or subtitle_kinds:
            base = safe_name(name) if name else stem
            paths = OutputPaths(ensure_directory(output_dir), base, extension_for(output_format))
        player = _player(output_format) if play else None
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
        policy = flags.policy_for(markdown_input=markdown_input, streamed=streamed)
        result = asyncio.run(_speak(flags, policy, source, plan, display))
        display.report(result.stats)
        if result.audio_path is not None and not quiet:
            display.note(f"saved {result.audio_path}")
        if as_json and not to_stdout:
            files = {"audio": str(result.audio_path) if result.audio_path else None}
            files.update({p.name: str(p) for p in result.extra_files})
            json.dump({**result.stats, "files": files}, sys.stdout, indent=2)
            sys.stdout.write("\n")


async def _speak(flags: StreamFlags, policy: SendPolicy, source: Any, plan: OutputPlan, display: Any) -> Any:
    async with open_endpoint(flags.target, voices=(flags.options.voice_id,)) as endpoint:
        return await speak(
            source,
            endpoint=endpoint,
            options=flags.options,
            policy=policy,
            plan=plan,
            display=display,
            multi=flags.multi,
            settings_for_stats={
                **flags.settings,
                "flush": policy.flush,
                "strip_markdown": policy.strip_markdown,
            },
        )


def _player(output_format: str) -> Any:
    from elevtts.player import Player, player_command

    command = player_command(output_format)
    return Player(command) if command else None


def _input(text: list[str] | None, files: list[Path] | None) -> tuple[AsyncIterator[str], bool, bool, str]:
    """(source, streamed, markdown input, name stem) from the arguments, files, or stdin."""
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
