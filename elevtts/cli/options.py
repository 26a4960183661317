"""The options `speak` and `batch` share, declared once as `Annotated` aliases (Typer reads them).

Both commands list every alias in `SHARED_OPTION_NAMES` with the default in `SHARED_DEFAULTS`
(a test checks they expose the same list). The fixed sets of values are the `Literal`s of
`elevtts.config`, so Typer checks them and lists them in `--help`. Importing this module costs
only typer: it must stay light, `--help` reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from elevtts.choices import FlushPolicy, LogLevel, TextNormalization
from elevtts.formats import DEFAULT_OUTPUT_FORMAT
from elevtts.target import Region

INPUT = "Input"
CONNECTION = "Connection"
PROTOCOL = "Protocol options"
VOICE = "Voice settings"
OUTPUT = "Output"

UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="ELEVTTS_URL",
        metavar="URL",
        help="Server: ws://… or wss://… (default: the live service with a key, else the embedded server).",
        rich_help_panel=CONNECTION,
    ),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="ELEVENLABS_API_KEY",
        metavar="KEY",
        help="API key (also from the environment or .env). Never printed.",
        show_default=False,
        show_envvar=True,
        rich_help_panel=CONNECTION,
    ),
]
RegionOpt = Annotated[
    Region,
    typer.Option("--region", envvar="ELEVTTS_REGION", help="Live-service host.", rich_help_panel=CONNECTION),
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
        metavar="VOICE_ID",
        help="Voice id (local default: joe; see `elevtts voices`).",
        rich_help_panel=PROTOCOL,
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        envvar="ELEVTTS_MODEL",
        metavar="MODEL_ID",
        help="model_id, e.g. eleven_flash_v2_5.",
        rich_help_panel=PROTOCOL,
    ),
]
FormatOpt = Annotated[
    str,
    typer.Option(
        "--output-format",
        envvar="ELEVTTS_OUTPUT_FORMAT",
        metavar="FORMAT",
        help="mp3_44100_128, pcm_16000, ulaw_8000, opus_48000_64, … (the live API's names).",
        rich_help_panel=PROTOCOL,
    ),
]
ScheduleOpt = Annotated[
    str | None,
    typer.Option(
        "--chunk-length-schedule",
        metavar="N,N,…",
        help="Whole numbers 50-500, comma-separated (server default 120,160,250,290).",
        rich_help_panel=PROTOCOL,
    ),
]
FlushOpt = Annotated[
    FlushPolicy,
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
        metavar="SECONDS",
        help="Above 0, at most 180; keep-alives are sent before it expires.",
        rich_help_panel=PROTOCOL,
    ),
]
SyncAlignmentOpt = Annotated[
    bool, typer.Option("--sync-alignment", help="sync_alignment=true.", rich_help_panel=PROTOCOL)
]
LanguageOpt = Annotated[
    str | None,
    typer.Option(
        "--language-code", metavar="CODE", help="ISO 639-1 language code.", rich_help_panel=PROTOCOL
    ),
]
SeedOpt = Annotated[
    int | None,
    typer.Option(
        "--seed",
        min=0,
        max=4294967295,
        metavar="N",
        help="Best-effort determinism.",
        rich_help_panel=PROTOCOL,
    ),
]
NormalizationOpt = Annotated[
    TextNormalization,
    typer.Option("--apply-text-normalization", help="apply_text_normalization.", rich_help_panel=PROTOCOL),
]
DictionaryOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--pronunciation-dictionary",
        metavar="ID[:VERSION]",
        help="A pronunciation dictionary to apply; up to 3.",
        rich_help_panel=PROTOCOL,
    ),
]
IdleFlushOpt = Annotated[
    int,
    typer.Option(
        "--idle-flush",
        min=0,
        metavar="MS",
        help="Flush buffered text when input pauses this many ms (0: never).",
        rich_help_panel=INPUT,
    ),
]
MarkdownOpt = Annotated[
    bool | None,
    typer.Option(
        "--strip-markdown/--keep-markdown",
        help="Strip Markdown before speaking (default: by file type, .md is stripped).",
        show_default=False,
        rich_help_panel=INPUT,
    ),
]
StabilityOpt = Annotated[
    float | None, typer.Option("--stability", min=0.0, max=1.0, metavar="0-1", rich_help_panel=VOICE)
]
SimilarityOpt = Annotated[
    float | None, typer.Option("--similarity-boost", min=0.0, max=1.0, metavar="0-1", rich_help_panel=VOICE)
]
StyleOpt = Annotated[
    float | None, typer.Option("--style", min=0.0, max=1.0, metavar="0-1", rich_help_panel=VOICE)
]
SpeakerBoostOpt = Annotated[
    bool | None, typer.Option("--speaker-boost/--no-speaker-boost", show_default=False, rich_help_panel=VOICE)
]
SpeedOpt = Annotated[
    float | None,
    typer.Option(
        "--speed",
        min=0.7,
        max=1.2,
        metavar="0.7-1.2",
        help="Speaking rate. Only the settings given are sent; the voice's own apply to the rest.",
        rich_help_panel=VOICE,
    ),
]
OutputDirOpt = Annotated[
    Path,
    typer.Option(
        "--output-dir",
        "-d",
        envvar="ELEVTTS_OUTPUT_DIR",
        metavar="PATH",
        help="Where files go.",
        rich_help_panel=OUTPUT,
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
    typer.Option(
        "--subtitles",
        metavar="KINDS",
        help="Word-level subtitles: srt, vtt, json (comma-separated).",
        rich_help_panel=OUTPUT,
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the statistics as JSON on stdout.", rich_help_panel=OUTPUT)
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress or table on stderr.", rich_help_panel=OUTPUT)
]

RetriesOpt = Annotated[
    int,
    typer.Option(
        "--retries",
        min=0,
        max=20,
        metavar="N",
        help="Further attempts after a dropped connection (speak resumes from the confirmed audio; a"
        " refused reconnection counts), and in batch after a failed connection or an overloaded server;"
        " jittered exponential backoff, honouring the server's retry hints.",
        rich_help_panel=CONNECTION,
    ),
]
DebugOpt = Annotated[
    bool,
    typer.Option(
        "--debug", help="Log the connection and every frame on stderr (keys hidden); --log-level debug."
    ),
]
LogLevelOpt = Annotated[
    LogLevel | None,
    typer.Option("--log-level", help="Log on stderr at this level (keys hidden).", show_default=False),
]

# The parameter names `speak` and `batch` both take, with their defaults.
SHARED_DEFAULTS: dict[str, object] = {
    "url": None,
    "api_key": None,
    "region": "global",
    "retries": 3,
    "multi": False,
    "voice": None,
    "model": None,
    "output_format": DEFAULT_OUTPUT_FORMAT,
    "chunk_length_schedule": None,
    "flush": "auto",
    "auto_mode": False,
    "try_trigger_generation": False,
    "inactivity_timeout": 20.0,
    "sync_alignment": False,
    "language_code": None,
    "seed": None,
    "apply_text_normalization": "auto",
    "pronunciation_dictionary": None,
    "idle_flush": 600,
    "strip_markdown": None,
    "stability": None,
    "similarity_boost": None,
    "style": None,
    "speaker_boost": None,
    "speed": None,
    "output_dir": Path("output"),
    "force": False,
    "keep_chunks": False,
    "subtitles": None,
    "as_json": False,
    "quiet": False,
    "debug": False,
    "log_level": None,
}
SHARED_OPTION_NAMES: tuple[str, ...] = tuple(SHARED_DEFAULTS)
