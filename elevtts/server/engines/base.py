"""The engine interface: what a voice is, what synthesis returns, and the one engine error.

Pure and light: no numpy at import (a `Speech` carries a numpy array, made by the engines).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from elevtts.errors import ElevttsError

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Voice:
    """A voice as listed by GET /v1/voices."""

    voice_id: str
    name: str
    engine: str
    language: str
    sample_rate: int
    description: str

    def to_json(self) -> dict[str, Any]:
        return {
            "voice_id": self.voice_id,
            "name": self.name,
            "category": "local",
            "labels": {"engine": self.engine, "language": self.language},
            "description": self.description,
            "sample_rate": self.sample_rate,
            "preview_url": None,
        }


@dataclass(frozen=True)
class WordTiming:
    """One spoken word: `text[start_char:end_char]`, heard from `start_s` to `end_s`."""

    start_char: int
    end_char: int
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Speech:
    """Synthesized audio (int16 mono) and the timings of its words, relative to its start."""

    pcm: np.ndarray
    sample_rate: int
    words: tuple[WordTiming, ...] = ()

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / self.sample_rate

    @classmethod
    def empty(cls, sample_rate: int) -> Speech:
        import numpy as np

        return cls(np.zeros(0, np.int16), sample_rate)


@dataclass(frozen=True)
class SynthesisOptions:
    speed: float = 1.0  # 0.7-1.2 from voice_settings; really changes the speaking rate
    stability: float = 0.5  # 0.5 = the engine's defaults, 1.0 = no randomness
    seed: int | None = None  # best effort; neither built-in engine can honour it per call


class Engine(Protocol):
    voice: Voice

    def synthesize(self, text: str, options: SynthesisOptions) -> Speech:
        """Blocking and thread-safe. Never raises for text with nothing to say (returns a short Speech)."""
        ...


class UnknownVoiceError(ElevttsError, LookupError):
    """No available voice has this id."""

    def __init__(self, voice_id: str, available: Sequence[str]) -> None:
        self.voice_id = voice_id
        self.available = tuple(available)
        super().__init__(
            f"unknown voice {voice_id!r}; available voices: {', '.join(self.available) or '(none)'}"
        )
