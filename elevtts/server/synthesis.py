"""The synthesis pipeline: one piece of text in, PCM frames with their alignments out.

text -> break tags (`elevtts.breaks`) -> pronunciation dictionaries -> engine -> frames of at most
`MAX_FRAME_SECONDS` -> alignments of the spoken text remapped onto the text the client sent.

Synchronous and blocking (the engine runs here): transports call it in a worker thread. Every
endpoint uses it, the WebSocket session and each HTTP route, so the rules live once.

Break tags are never spoken: each becomes silence (capped at `breaks.MAX_BREAK_S`). `alignment`
(`TimedAlignment.original`) covers every character of the original text, the tag's included
(spread over its silence); `normalizedAlignment` covers what was spoken, where the tag is absent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from elevtts.breaks import Pause, Speech, split_breaks
from elevtts.protocol import Alignment, VoiceSettings
from elevtts.server.alignment import TimedAlignment, frames
from elevtts.server.engines.base import SynthesisOptions
from elevtts.server.remap import remap_alignments

if TYPE_CHECKING:
    from elevtts.server.dictionary import Lexicon
    from elevtts.server.engines.base import Engine

MAX_FRAME_SECONDS = 1.0  # audio per frame: keeps every frame far below the SDK's 1 MiB limit

Frame = tuple[Any, TimedAlignment]  # int16 PCM samples and their alignments


@dataclass(frozen=True)
class Piece:
    """What to synthesize and how: the text as the client sent it, with its settings."""

    text: str
    voice_settings: VoiceSettings = field(default_factory=VoiceSettings)
    seed: int | None = None
    lexicons: Sequence[Lexicon] = ()


def synthesize(engine: Engine, piece: Piece, *, max_frame_s: float = MAX_FRAME_SECONDS) -> list[Frame]:
    """`piece` as PCM frames with their alignments, in order; every character in exactly one frame."""
    segments = split_breaks(piece.text)
    if not any(isinstance(segment, Pause) for segment in segments):
        return _speak(engine, piece, piece.text, max_frame_s=max_frame_s)
    result: list[Frame] = []
    for segment in segments:
        if isinstance(segment, Pause):
            result += _silence(engine.voice.sample_rate, segment, piece.text, max_frame_s=max_frame_s)
        elif segment.text.strip():
            result += _speak(engine, piece, segment.text, max_frame_s=max_frame_s)
        else:
            result.append(_unspoken(segment))
    return result


def _speak(engine: Engine, piece: Piece, text: str, *, max_frame_s: float) -> list[Frame]:
    """One run of text without break tags through the dictionaries and the engine."""
    spoken = text
    for lexicon in piece.lexicons:
        spoken = lexicon.apply(spoken)
    voice = piece.voice_settings
    options = SynthesisOptions(speed=voice.speed, stability=voice.stability, seed=piece.seed)
    speech = engine.synthesize(spoken, options)
    sliced = frames(spoken, speech, max_frame_s=max_frame_s)
    normalized = [alignment for _, alignment in sliced]
    originals = normalized if spoken == text else remap_alignments(normalized, spoken, text)
    rate = speech.sample_rate
    return [
        (pcm, TimedAlignment(original, n, round(len(pcm) * 1000 / rate)))
        for (pcm, n), original in zip(sliced, originals, strict=True)
    ]


def _silence(rate: int, pause: Pause, original: str, *, max_frame_s: float) -> list[Frame]:
    """A break tag as silence, in frames of at most `max_frame_s`; the tag's characters are
    spread over it in `alignment` and absent from `normalizedAlignment`."""
    import numpy as np

    total = round(pause.seconds * rate)
    whole = pause.alignment(original)
    step = max(1, int(max_frame_s * rate))
    cuts = [*range(0, total, step), total] if total else [0, 0]
    result: list[Frame] = []
    taken = 0
    for index, (start, end) in enumerate(pairwise(cuts)):
        start_ms, end_ms = round(start * 1000 / rate), round(end * 1000 / rate)
        last = index == len(cuts) - 2
        chars, starts, durations = [], [], []
        while taken < len(whole.chars) and (last or whole.char_start_times_ms[taken] < end_ms):
            chars.append(whole.chars[taken])
            starts.append(min(max(whole.char_start_times_ms[taken] - start_ms, 0), end_ms - start_ms))
            durations.append(whole.char_durations_ms[taken])
            taken += 1
        alignment = Alignment(tuple(chars), tuple(starts), tuple(durations))
        pcm = np.zeros(end - start, np.int16)
        result.append((pcm, TimedAlignment(alignment, Alignment(), end_ms - start_ms)))
    return result


def _unspoken(segment: Speech) -> Frame:
    """Whitespace beside a tag: no audio, its characters at the start of what follows."""
    import numpy as np

    chars = tuple(segment.text)
    alignment = Alignment(chars, (0,) * len(chars), (0,) * len(chars))
    return np.zeros(0, np.int16), TimedAlignment(alignment, alignment, 0)
