"""The fixed value sets of the options, as `Literal`s: Typer checks them and lists them in `--help`.

Stdlib only, so the command line can declare its options without importing the rest of the
library (`elevtts --help` stays light); `config` validates with the same types.
"""

from __future__ import annotations

from typing import Literal

SendFlush = Literal["end", "sentence", "paragraph", "never"]  # when the sender sends flush: true
FlushPolicy = Literal["auto", "end", "sentence", "paragraph", "never"]  # the flag: auto picks one
TextNormalization = Literal["auto", "on", "off"]
SubtitleKind = Literal["srt", "vtt", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]
