"""Speech -> frames with character alignments: properties over real espeak speech, and exact cases."""

from __future__ import annotations

import numpy as np
import pytest

from elevtts.protocol import Alignment
from elevtts.server.alignment import TimedAlignment, char_timings, frames, join
from elevtts.server.engines import Engine, Speech, SynthesisOptions, WordTiming, get_engine

TEXTS = [
    "Hello, world! This has been a test.",
    "  It costs $42 in 2024, Dr. Smith said.  ",
    "The quick brown fox jumps over the lazy dog while seven curious children watch from the bridge.",
    "Wait... what?! — no; really: yes.",
    "Café naïve résumé, über straße.",
    "One",
    "...",
    "",
]


@pytest.fixture(scope="module")
def espeak() -> Engine:
    return get_engine("espeak")


@pytest.fixture(scope="module")
def spoken(espeak: Engine) -> list[tuple[str, Speech]]:
    return [(text, espeak.synthesize(text, SynthesisOptions())) for text in TEXTS]


def test_char_timings_cover_every_char(spoken: list[tuple[str, Speech]]) -> None:
    for text, speech in spoken:
        timings = char_timings(text, speech)
        assert len(timings) == len(text)
        total_ms = round(speech.duration_s * 1000)
        starts = [start for start, _ in timings]
        assert starts == sorted(starts)
        for start, duration in timings:
            assert 0 <= start <= total_ms
            assert duration >= 0
            assert start + duration <= total_ms


def test_char_timings_follow_the_words(spoken: list[tuple[str, Speech]]) -> None:
    for text, speech in spoken:
        timings = char_timings(text, speech)
        if timings:
            assert timings[0][0] == 0
        for word in speech.words:
            assert timings[word.start_char][0] == round(word.start_s * 1000)
            last_start, last_duration = timings[word.end_char - 1]
            assert abs(last_start + last_duration - word.end_s * 1000) <= 1


@pytest.mark.parametrize("max_frame_s", [0.1, 0.35, 1.0, 10.0])
def test_frames_properties(spoken: list[tuple[str, Speech]], max_frame_s: float) -> None:
    for text, speech in spoken:
        result = frames(text, speech, max_frame_s=max_frame_s)
        assert result
        assert "".join(c for _, alignment in result for c in alignment.chars) == text
        assert np.array_equal(np.concatenate([pcm for pcm, _ in result]), speech.pcm)
        max_samples = int(max_frame_s * speech.sample_rate)
        for pcm, alignment in result:
            assert 0 < len(pcm) <= max_samples or (len(speech.pcm) == 0 and len(result) == 1)
            frame_ms = round(len(pcm) / speech.sample_rate * 1000)
            assert len(alignment.chars) == len(alignment.char_start_times_ms)
            assert len(alignment.chars) == len(alignment.char_durations_ms)
            starts = list(alignment.char_start_times_ms)
            assert starts == sorted(starts)
            for start, duration in zip(starts, alignment.char_durations_ms, strict=True):
                assert 0 <= start <= frame_ms
                assert duration >= 0
                assert start + duration <= frame_ms


def test_frames_keep_absolute_times(spoken: list[tuple[str, Speech]]) -> None:
    """Frame offset + relative start gives back the piece's own char start (to rounding)."""
    for text, speech in spoken:
        absolute = [start for start, _ in char_timings(text, speech)]
        rebuilt: list[float] = []
        offset = 0.0
        for pcm, alignment in frames(text, speech, max_frame_s=0.5):
            rebuilt += [offset + start for start in alignment.char_start_times_ms]
            offset += len(pcm) / speech.sample_rate * 1000
        assert len(rebuilt) == len(absolute)
        assert all(abs(a - b) <= 1 for a, b in zip(rebuilt, absolute, strict=True))


def test_frames_prefer_cutting_between_words(espeak: Engine) -> None:
    text = TEXTS[2]
    speech = espeak.synthesize(text, SynthesisOptions())
    for _, alignment in frames(text, speech, max_frame_s=1.0)[:-1]:
        chunk = "".join(alignment.chars)
        assert chunk.rstrip()[-1:].isalpha()
        assert not chunk.rstrip().endswith(("qu", "bro", "chil"))  # not cut mid-word
        words = chunk.split()
        assert all(word in text.split() or word.rstrip(".") in text for word in words)


def make_speech(seconds: float, words: list[WordTiming], rate: int = 1000) -> Speech:
    return Speech(np.ones(round(seconds * rate), np.int16), rate, tuple(words))


def test_exact_char_timings() -> None:
    # "ab, cd" -> "ab" 0.1-0.3 s, "cd" 0.5-0.9 s; audio 1 s.
    speech = make_speech(1.0, [WordTiming(0, 2, 0.1, 0.3), WordTiming(4, 6, 0.5, 0.9)])
    assert char_timings("ab, cd", speech) == [
        (100, 100),
        (200, 100),
        (300, 100),  # "," and " " share the gap 0.3-0.5
        (400, 100),
        (500, 200),
        (700, 200),
    ]
    # Chars before the first word start at 0; chars after the last share the tail.
    speech = make_speech(1.0, [WordTiming(2, 4, 0.2, 0.6)])
    assert char_timings("  ab!", speech) == [(0, 100), (100, 100), (200, 200), (400, 200), (600, 400)]


def test_cut_lands_in_the_silence() -> None:
    words = [WordTiming(0, 3, 0.0, 0.6), WordTiming(4, 7, 0.8, 1.4), WordTiming(8, 11, 1.5, 1.9)]
    speech = make_speech(2.0, words)
    result = frames("one two six", speech, max_frame_s=1.0)
    assert [len(pcm) for pcm, _ in result] == [700, 750, 550]  # mid-silence: 0.7 s, then 1.45 s
    assert ["".join(a.chars) for _, a in result] == ["one ", "two ", "six"]
    assert result[1][1].char_start_times_ms[0] == 100  # "t" at 0.8 s, frame starts at 0.7 s


def test_empty_speech_gives_one_frame_with_all_chars() -> None:
    speech = Speech(np.zeros(0, np.int16), 22050)
    (result,) = frames(" ... ", speech)
    pcm, alignment = result
    assert len(pcm) == 0
    assert "".join(alignment.chars) == " ... "
    assert set(alignment.char_start_times_ms) == {0}
    assert set(alignment.char_durations_ms) == {0}


def test_no_text_still_frames_the_audio() -> None:
    speech = make_speech(2.5, [])
    result = frames("", speech, max_frame_s=1.0)
    assert [len(pcm) for pcm, _ in result] == [1000, 1000, 500]
    assert all(a.chars == () for _, a in result)


def test_a_held_back_frame_joins_the_next_with_its_times_offset() -> None:
    first = Alignment(("H", "i"), (0, 40), (40, 40))
    second = Alignment((" ", "y", "o"), (0, 10, 50), (10, 40, 40))
    joined = TimedAlignment(first, first, 80).then(TimedAlignment(second, second, 90))
    assert joined.original == Alignment(("H", "i", " ", "y", "o"), (0, 40, 80, 90, 130), (40, 40, 10, 40, 40))
    assert joined.normalized == joined.original and joined.duration_ms == 170
    assert join(Alignment(), second, 0) == second
