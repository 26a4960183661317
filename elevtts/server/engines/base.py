"""The engine interface: what a voice is, what synthesis returns, and the one engine error.

Pure and light: no numpy at import (a `Speech` carries a numpy array, made by the engines).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from elevtts.errors import ElevttsError, UsageError

if TYPE_CHECKING:
    import numpy as np


# The live API lists a voice's languages per model; every model_id speaks them all here.
VERIFIED_MODEL_ID = "eleven_flash_v2_5"


@dataclass(frozen=True)
class Voice:
    """A voice as listed by GET /v1/voices.

    `language` is ISO 639-1 where one exists, else espeak's tag. `locales` are the language codes
    the voice speaks as (language, locale) pairs: one for most voices, every espeak-ng language for
    the multilingual `espeak`, whose `language_code` picks one. A voice that `shares_engine_with`
    another is warmed up by warming that one.
    """

    voice_id: str
    name: str
    engine: str
    language: str
    sample_rate: int
    description: str
    locales: tuple[tuple[str, str], ...] = ()
    shares_engine_with: str | None = None

    @property
    def multilingual(self) -> bool:
        return len(self.locales) > 1

    def to_json(self) -> dict[str, Any]:
        return {
            "voice_id": self.voice_id,
            "name": self.name,
            "category": "local",
            "labels": {"engine": self.engine, "language": self.language},
            "description": self.description,
            "sample_rate": self.sample_rate,
            "preview_url": None,
            # The live API's shape (VerifiedVoiceLanguageResponseModel).
            "verified_languages": [
                {
                    "language": language,
                    "model_id": VERIFIED_MODEL_ID,
                    "accent": None,
                    "locale": locale,
                    "preview_url": None,
                }
                for language, locale in self.locales or ((self.language, self.language),)
            ],
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


LIST_VOICES_HINT = "list them with `elevtts voices` or GET /v1/voices"


class UnknownVoiceError(ElevttsError, LookupError):
    """No available voice has this id (the message points at the listing, not at 140+ ids)."""

    def __init__(self, voice_id: str, available: Sequence[str]) -> None:
        self.voice_id = voice_id
        self.available = tuple(available)
        super().__init__(f"unknown voice {voice_id!r}; {LIST_VOICES_HINT}")


class VoiceModelError(UsageError):
    """A local voice model that is missing, invalid, clashes with another voice id or fails to load."""
