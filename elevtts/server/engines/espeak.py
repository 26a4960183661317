"""espeak-ng ("espeak" and every "espeak-<tag>") through ctypes, with word timings from its word events.

Imported only when a voice loads. libespeak-ng is one global state per process: one library,
initialized once, one lock; each engine selects its language before it speaks (well under 1 ms).
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import numpy as np

from elevtts.server.engines.base import Speech, SynthesisOptions, Voice, WordTiming
from elevtts.server.engines.languages import espeak_library
from elevtts.server.engines.words import (
    _nothing_to_say,
    _speakable,
    _split_unspaced,
    _spread,
    _tokens,
    _word_span,
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
_PHONEMES_IPA = 0x02
_ESPEAK_BASE_WPM = 175
_ESPEAK_LOCK = threading.Lock()  # libespeak-ng is one global state per process


class _Library:
    """libespeak-ng, initialized once per process; what the synthesis callback collects."""

    _instance: _Library | None = None

    @classmethod
    def get(cls) -> _Library:
        with _ESPEAK_LOCK:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def __init__(self) -> None:
        lib_path, data_path = espeak_library()
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
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 200, data_path.encode() if data_path else None, _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise OSError(f"espeak_Initialize failed ({lib_path})")
        self._callback = _SYNTH_CALLBACK(self._on_audio)  # must outlive every synth call
        lib.espeak_SetSynthCallback(self._callback)
        self.lib = lib
        self.rate = rate
        self.language: str | None = None  # the voice file selected now
        self.chunks: list[np.ndarray] = []
        self.events: list[tuple[int, int, int]] = []

    def select(self, identifier: str) -> None:
        """Speak with this voice file from now on (call under the lock)."""
        if identifier != self.language:
            if self.lib.espeak_SetVoiceByName(identifier.encode()) != 0:
                raise OSError(f"espeak-ng has no voice {identifier!r}")
            self.language = identifier

    def _on_audio(self, wav: Any, n: int, events: Any) -> int:
        if n > 0:
            # string_at copies the block; np.ctypeslib.as_array would cache a ctypes type per length.
            self.chunks.append(np.frombuffer(ctypes.string_at(wav, n * 2), dtype=np.int16))
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == _EVENT_WORD and event.length > 0:
                # text_position counts characters (code points) of the input, from 1.
                self.events.append((event.text_position - 1, event.length, event.audio_position))
            i += 1
        return 0  # non-zero would abort synthesis


class EspeakEngine:
    """One espeak-ng language (`identifier`: its voice file, e.g. "roa/fr-BE") with exact word events."""

    def __init__(self, voice: Voice, identifier: str) -> None:
        self.voice = voice
        self._identifier = identifier
        self._library = _Library.get()
        with _ESPEAK_LOCK:
            self._library.select(identifier)  # an unknown language fails here, at load time

    def phonemes(self, text: str) -> str:
        """What this language makes of `text`, in IPA (espeak_TextToPhonemes): the proof that a
        language voice reads its own language, not English."""
        data = ctypes.create_string_buffer(text.encode("utf-8") + b"\0")
        pointer = ctypes.c_void_p(ctypes.addressof(data))
        clauses = []
        with _ESPEAK_LOCK:
            self._library.select(self._identifier)
            while pointer.value:
                out = self._library.lib.espeak_TextToPhonemes(
                    ctypes.byref(pointer), _CHARS_UTF8, _PHONEMES_IPA
                )
                clauses.append((out or b"").decode("utf-8", "replace"))
        return " ".join(c for c in clauses if c)

    def synthesize(self, text: str, options: SynthesisOptions) -> Speech:
        library = self._library
        if _nothing_to_say(text):
            return Speech.empty(library.rate)
        data = text.encode("utf-8") + b"\0"
        buffer = ctypes.create_string_buffer(data)
        wpm = round(min(max(_ESPEAK_BASE_WPM * options.speed, 80), 450))
        lib = library.lib
        with _ESPEAK_LOCK:
            library.select(self._identifier)
            library.chunks, library.events = [], []
            lib.espeak_SetParameter(_PARAM_RATE, wpm, 0)
            rc = lib.espeak_Synth(buffer, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            lib.espeak_Synchronize()
            chunks, events = library.chunks, library.events
            library.chunks, library.events = [], []
        if rc != 0:
            raise RuntimeError(f"espeak_Synth failed with code {rc}")
        pcm = np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)
        return Speech(pcm, library.rate, tuple(_espeak_words(text, events, pcm, library.rate)))


def _espeak_words(
    text: str, events: list[tuple[int, int, int]], pcm: np.ndarray, rate: int
) -> list[WordTiming]:
    """Word timings from espeak word events (char_start, char_len, audio_ms)."""
    tokens = _split_unspaced(text, _tokens(text), (char_start for char_start, _, _ in events))
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
