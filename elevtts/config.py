"""The settings of a `speak` or `batch` run: parsed and checked once, then frozen.

    config = StreamConfig.from_flags(url=..., output_format="pcm_16000", chunk_length_schedule="120,160", ...)

Flags arrive already typed by Typer (the `Literal`s below list and check the fixed values); the
values that need parsing (a schedule, dictionary locators, subtitle kinds, the output format) are
parsed here, and the constructor refuses any combination that cannot work, before anything
connects. Precedence: a flag, then the environment, then `.env` (Typer reads the environment;
`load_env_file` puts `.env` under it without ever overriding it). Every failure is a `UsageError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from elevtts.choices import FlushPolicy, SendFlush, SubtitleKind, TextNormalization
from elevtts.errors import UsageError
from elevtts.formats import FormatError, OutputFormat, parse_output_format
from elevtts.protocol import (
    MAX_DICTIONARY_LOCATORS,
    MAX_INACTIVITY_TIMEOUT,
    SCHEDULE_MAX,
    SCHEDULE_MIN,
    DictionaryLocator,
)
from elevtts.target import Region, Target, resolve_target

SUBTITLE_KINDS: tuple[SubtitleKind, ...] = get_args(SubtitleKind)
ENV_FILE = ".env"


# ---------------------------------------------------------------------------------------------
# Parsing the values Typer cannot type by itself


def parse_schedule(value: str | None) -> tuple[int, ...] | None:
    """`"120,160, 250"` -> (120, 160, 250): whole numbers in 50-500, nothing empty, nothing rounded."""
    if value is None:
        return None
    parts = [part.strip() for part in value.split(",")]
    if not all(part.isdigit() for part in parts):
        raise UsageError(
            "--chunk-length-schedule takes whole numbers separated by commas (e.g. 120,160,250), "
            f"not {value!r}"
        )
    low, high = SCHEDULE_MIN, SCHEDULE_MAX
    numbers = tuple(int(part) for part in parts)
    outside = [n for n in numbers if not low <= n <= high]
    if outside:
        raise UsageError(f"--chunk-length-schedule value {outside[0]} is outside {low}-{high}")
    return numbers


def parse_locators(values: Sequence[str] | None) -> tuple[DictionaryLocator, ...]:
    values = values or ()
    if len(values) > MAX_DICTIONARY_LOCATORS:
        raise UsageError(f"--pronunciation-dictionary may be given at most {MAX_DICTIONARY_LOCATORS} times")
    locators = []
    for value in values:
        dictionary_id, _, version = value.partition(":")
        if not dictionary_id.strip():
            raise UsageError(f"--pronunciation-dictionary takes ID[:VERSION], not {value!r}")
        locators.append(DictionaryLocator(dictionary_id.strip(), version.strip() or None))
    return tuple(locators)


def parse_subtitles(value: str | None) -> tuple[SubtitleKind, ...]:
    """`"srt,vtt"` -> ("srt", "vtt"); repeats are dropped, an unknown kind is refused."""
    if not value:
        return ()
    kinds = list(dict.fromkeys(k.strip().lower() for k in value.split(",") if k.strip()))
    unknown = [k for k in kinds if k not in SUBTITLE_KINDS]
    if unknown:
        raise UsageError(
            f"--subtitles takes {', '.join(SUBTITLE_KINDS)} (comma-separated), not {', '.join(unknown)}"
        )
    return tuple(k for k in SUBTITLE_KINDS if k in kinds)


def parse_streamable_format(name: str) -> OutputFormat:
    """The output format a WebSocket stream can carry; `UsageError` naming the choices otherwise."""
    try:
        found = parse_output_format(name)
    except FormatError:
        raise UsageError(
            f"--output-format: unknown output_format {name!r} "
            "(e.g. mp3_44100_128, pcm_16000, ulaw_8000, opus_48000_64; see the README)"
        ) from None
    if not found.streamable:
        raise UsageError(
            f"--output-format: {name} is offered only by the HTTP endpoints, not by a WebSocket stream "
            f"(use pcm_{found.sample_rate} for raw samples)"
        )
    return found


# ---------------------------------------------------------------------------------------------
# .env


def load_env_file(path: Path | None = None) -> Path | None:
    """Put `path` (default: `.env` in the current directory, never a parent's) under the environment.

    Variables already set win. Returns the file read, or None when there is none.
    """
    explicit = path is not None
    path = Path(ENV_FILE) if path is None else path
    if not path.is_file():
        if explicit:
            raise UsageError(f"--env-file: {path} is not a readable file")
        return None
    from dotenv import dotenv_values  # only when there is a file: `--help` stays light

    try:
        values = dotenv_values(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    for name, value in values.items():
        if value is not None and name not in os.environ:
            os.environ[name] = value
            FROM_ENV_FILE.add(name)
    return path


# The variables the `.env` file set (those the environment did not already have).
FROM_ENV_FILE: set[str] = set()
Origin = Literal["flag", "environment", "env_file", "default"]


def withholds_key(*, url_origin: Origin, key_origin: Origin) -> bool:
    """Whether a key must not be sent: a `.env` file may name a server, but a key from elsewhere
    (the environment, a flag) never goes to a server that only a `.env` file named; a `.env` that
    gives the URL and the key together is trusted with both."""
    return url_origin == "env_file" and key_origin not in ("env_file", "default")


# ---------------------------------------------------------------------------------------------
# The frozen configuration


@dataclass(frozen=True)
class StreamConfig:
    """What a `speak` or `batch` run sends and how: one object, valid once constructed."""

    target: Target
    output_format: OutputFormat
    multi: bool = False
    voice: str | None = None
    model: str | None = None
    chunk_length_schedule: tuple[int, ...] | None = None
    flush: FlushPolicy = "auto"
    auto_mode: bool = False
    try_trigger_generation: bool = False
    inactivity_timeout: float = 20.0
    sync_alignment: bool = False
    language_code: str | None = None
    seed: int | None = None
    apply_text_normalization: TextNormalization = "auto"
    pronunciation_dictionaries: tuple[DictionaryLocator, ...] = ()
    idle_flush_ms: int = 600
    strip_markdown: bool | None = None  # None: by each input's type (.md is stripped)
    # Exactly the voice settings the user gave: no defaults are sent, so the voice's own stay.
    voice_settings: Mapping[str, float | bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.output_format.streamable:
            raise UsageError(f"--output-format: {self.output_format.name} cannot be streamed")
        if not 0 < self.inactivity_timeout <= MAX_INACTIVITY_TIMEOUT:
            raise UsageError(
                f"--inactivity-timeout must be above 0 and at most {MAX_INACTIVITY_TIMEOUT:g} seconds"
            )
        if self.idle_flush_ms < 0:
            raise UsageError("--idle-flush must be 0 (never) or more milliseconds")
        if len(self.pronunciation_dictionaries) > MAX_DICTIONARY_LOCATORS:
            raise UsageError(
                f"--pronunciation-dictionary may be given at most {MAX_DICTIONARY_LOCATORS} times"
            )
        unknown = set(self.voice_settings) - set(VOICE_SETTING_RANGES)
        if unknown:
            raise UsageError(f"unknown voice settings: {', '.join(sorted(unknown))}")
        for name, value in self.voice_settings.items():
            low, high = VOICE_SETTING_RANGES[name]
            if not isinstance(value, bool) and not low <= value <= high:
                raise UsageError(f"--{name.replace('_', '-')} must be {low:g}-{high:g}, not {value:g}")

    @classmethod
    def from_flags(
        cls,
        *,
        output_format: str,
        url: str | None = None,
        api_key: str | None = None,
        region: Region = "global",
        multi: bool = False,
        voice: str | None = None,
        model: str | None = None,
        chunk_length_schedule: str | None = None,
        flush: FlushPolicy = "auto",
        auto_mode: bool = False,
        try_trigger_generation: bool = False,
        inactivity_timeout: float = 20.0,
        sync_alignment: bool = False,
        language_code: str | None = None,
        seed: int | None = None,
        apply_text_normalization: TextNormalization = "auto",
        pronunciation_dictionary: Sequence[str] | None = None,
        idle_flush: int = 600,
        strip_markdown: bool | None = None,
        stability: float | None = None,
        similarity_boost: float | None = None,
        style: float | None = None,
        speaker_boost: bool | None = None,
        speed: float | None = None,
    ) -> StreamConfig:
        """From the command line's values (named as the flags): what needs parsing is parsed here."""
        given = {
            "stability": stability,
            "similarity_boost": similarity_boost,
            "style": style,
            "use_speaker_boost": speaker_boost,
            "speed": speed,
        }
        return cls(
            target=resolve_target(url=url, api_key=api_key, region=region),
            output_format=parse_streamable_format(output_format),
            multi=multi,
            voice=voice,
            model=model,
            chunk_length_schedule=parse_schedule(chunk_length_schedule),
            flush=flush,
            auto_mode=auto_mode,
            try_trigger_generation=try_trigger_generation,
            inactivity_timeout=inactivity_timeout,
            sync_alignment=sync_alignment,
            language_code=language_code,
            seed=seed,
            apply_text_normalization=apply_text_normalization,
            pronunciation_dictionaries=parse_locators(pronunciation_dictionary),
            idle_flush_ms=idle_flush,
            strip_markdown=strip_markdown,
            voice_settings={k: v for k, v in given.items() if v is not None},
        )

    @property
    def voice_id(self) -> str:
        return self.voice or self.target.default_voice

    def flush_for(self, *, streamed: bool) -> SendFlush:
        """`auto`: a flush per sentence for a live stream (stdin), one at the end for a whole text."""
        if self.flush == "auto":
            return "sentence" if streamed else "end"
        return self.flush

    def strip_markdown_for(self, *, markdown_input: bool) -> bool:
        return markdown_input if self.strip_markdown is None else self.strip_markdown


VOICE_SETTING_RANGES: dict[str, tuple[float, float]] = {
    "stability": (0.0, 1.0),
    "similarity_boost": (0.0, 1.0),
    "style": (0.0, 1.0),
    "use_speaker_boost": (0.0, 1.0),
    "speed": (0.7, 1.2),
}
