"""The TTS engines, run for real: espeak-ng (fast) and the Piper neural voice (marked `neural`)."""

from __future__ import annotations

import unicodedata
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numpy as np
import pytest

from elevtts.server import engines
from elevtts.server.engines import (
    Engine,
    Speech,
    SynthesisOptions,
    UnknownVoiceError,
    Voice,
    WordTiming,
    available_voices,
    get_engine,
    register_engine,
)

SENTENCE = "The quick brown fox jumps over the lazy dog while seven curious children watch from the bridge."
TEXTS = [
    SENTENCE,
    "Hello, world! This has been a test.",
    "  It costs $42 in 2024, Dr. Smith said.  ",
    "Café, naïve résumé — works (mostly).",
]
ENGINES = ["espeak", pytest.param("joe", marks=pytest.mark.neural)]


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Engine:
    return get_engine(request.param)


def strip_punctuation(token: str) -> str:
    """ "(mostly)." -> "mostly", but "$42" stays (a symbol, not punctuation)."""
    punctuation = "".join(ch for ch in set(token) if unicodedata.category(ch).startswith("P"))
    return token.strip(punctuation)


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if len(pcm) else 0.0


def test_available_voices_lists_both_builtins() -> None:
    voices = {voice.voice_id: voice for voice in available_voices()}
    assert {"joe", "espeak"} <= voices.keys()
    assert voices["joe"].engine == "piper"
    assert voices["espeak"].engine == "espeak"
    data = voices["joe"].to_json()
    assert data["voice_id"] == "joe"
    assert data["category"] == "local"
    assert data["labels"]["language"] == "en"
    assert data["sample_rate"] == 22050


def test_unknown_voice_says_how_to_list_the_voices() -> None:
    # 140+ ids would drown the message: it names the listing instead.
    with pytest.raises(UnknownVoiceError) as info:
        get_engine("Rachel")
    assert isinstance(info.value, LookupError)
    assert "Rachel" in str(info.value)
    assert "elevtts voices" in str(info.value)
    assert "GET /v1/voices" in str(info.value)
    assert "espeak-de" not in str(info.value)


def test_get_engine_caches() -> None:
    assert get_engine("espeak") is get_engine("espeak")


class FakeEngine:
    voice = Voice("fake-test", "Fake", "fake", "en", 16000, "one second of silence")

    def synthesize(self, text: str, options: SynthesisOptions) -> Speech:
        return Speech(np.zeros(16000, np.int16), 16000, (WordTiming(0, len(text), 0.0, 1.0),))


@pytest.fixture
def fake_voice() -> object:
    register_engine(FakeEngine.voice, FakeEngine)
    yield FakeEngine.voice
    engines._REGISTRY.pop(FakeEngine.voice.voice_id)  # no public unregister: keep other tests clean


def test_register_engine(fake_voice: Voice) -> None:
    assert fake_voice in available_voices()
    engine = get_engine("fake-test")
    assert isinstance(engine, FakeEngine)
    assert get_engine("fake-test") is engine
    assert engine.synthesize("hi", SynthesisOptions()).duration_s == 1.0


@pytest.mark.parametrize("text", TEXTS)
def test_speech_is_plausible(engine: Engine, text: str) -> None:
    speech = engine.synthesize(text, SynthesisOptions())
    assert speech.pcm.dtype == np.int16
    assert speech.pcm.ndim == 1
    assert speech.sample_rate == engine.voice.sample_rate
    n_words = len(text.split())
    assert 0.2 * n_words <= speech.duration_s <= 0.8 * n_words + 0.5
    assert rms(speech.pcm) > 500


@pytest.mark.parametrize("text", TEXTS)
def test_word_timings_point_at_the_words(engine: Engine, text: str) -> None:
    speech = engine.synthesize(text, SynthesisOptions())
    words = speech.words
    spoken = [token for token in text.split() if any(ch.isalnum() for ch in token)]
    assert len(words) == len(spoken)
    for word, token in zip(words, spoken, strict=True):
        assert text[word.start_char : word.end_char] == strip_punctuation(token)
        assert 0 <= word.start_s <= word.end_s <= speech.duration_s + 1e-9
    for before, after in pairwise(words):
        assert before.end_char <= after.start_char
        assert before.start_s <= after.start_s
        assert before.end_s <= after.start_s + 1e-9
    # Real timings, not an even spread: the words do not all last the same.
    durations = {round(w.end_s - w.start_s, 3) for w in words}
    assert len(words) < 3 or len(durations) > 2


def test_words_follow_the_audio(engine: Engine) -> None:
    """The first word starts near the start of sound, the last ends near its end."""
    speech = engine.synthesize(SENTENCE, SynthesisOptions())
    loud = np.flatnonzero(np.abs(speech.pcm.astype(np.int32)) > 1000) / speech.sample_rate
    assert abs(speech.words[0].start_s - loud[0]) < 0.15
    assert abs(speech.words[-1].end_s - loud[-1]) < 0.25


def test_speed_changes_the_speaking_rate(engine: Engine) -> None:
    slow = engine.synthesize(SENTENCE, SynthesisOptions(speed=0.7, stability=1.0))
    normal = engine.synthesize(SENTENCE, SynthesisOptions(speed=1.0, stability=1.0))
    fast = engine.synthesize(SENTENCE, SynthesisOptions(speed=1.2, stability=1.0))
    assert slow.duration_s > normal.duration_s * 1.2
    assert fast.duration_s < normal.duration_s * 0.95


@pytest.mark.parametrize("text", ["", " ", "...", " , . ! ", "—", "\n\t"])
def test_nothing_to_say_does_not_raise(engine: Engine, text: str) -> None:
    speech = engine.synthesize(text, SynthesisOptions())
    assert speech.duration_s < 0.5
    assert speech.words == ()


def test_concurrent_calls_match_serial_ones(engine: Engine) -> None:
    options = SynthesisOptions(stability=1.0)
    texts = ["One two three.", "Four five six seven.", "Eight nine.", "Ten."] * 2
    serial = [engine.synthesize(text, options) for text in texts]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda text: engine.synthesize(text, options), texts))
    # espeak's output jitters by a few samples from call to call, so compare the shape of it.
    for a, b in zip(serial, parallel, strict=True):
        assert abs(a.duration_s - b.duration_s) < 0.02
        assert [(w.start_char, w.end_char) for w in a.words] == [(w.start_char, w.end_char) for w in b.words]
        assert all(abs(x.start_s - y.start_s) < 0.02 for x, y in zip(a.words, b.words, strict=True))


@pytest.mark.neural
def test_piper_stability_one_is_deterministic() -> None:
    engine = get_engine("joe")
    options = SynthesisOptions(stability=1.0)
    first = engine.synthesize(SENTENCE, options)
    second = engine.synthesize(SENTENCE, options)
    assert np.array_equal(first.pcm, second.pcm)
    assert first.words == second.words


@pytest.mark.neural
def test_piper_merged_function_words_still_get_their_own_timing() -> None:
    # Piper's espeak says "from the" as one phoneme word; each token still gets its own slot.
    text = "They came from the north and went into the woods."
    speech = get_engine("joe").synthesize(text, SynthesisOptions(stability=1.0))
    by_word = {text[w.start_char : w.end_char]: w for w in speech.words}
    assert by_word["from"].end_s <= by_word["north"].start_s
    assert by_word["from"].end_s - by_word["from"].start_s < 0.4


def test_the_registry_imports_no_engine_until_one_loads() -> None:
    import json
    import subprocess
    import sys

    code = (
        "import json, sys; from elevtts.server.engines import available_voices; available_voices(); "
        "import elevtts.server.session; "
        "print(json.dumps([m for m in ('numpy', 'piper', 'onnxruntime', 'elevtts.server.engines.piper', "
        "'elevtts.server.engines.espeak') if m in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []
