"""`<break time="..."/>` tags: speech segments, pauses, the character map, streamed tags."""

from __future__ import annotations

import pytest

from elevtts.breaks import MAX_BREAK_S, Pause, Speech, split_breaks, spoken_text, unfinished_tag_start


def covered(text: str) -> str:
    """The original text rebuilt from the segments' spans: checks they are lossless and ordered."""
    out = ""
    for segment in split_breaks(text):
        start = segment.start
        assert start == len(out)
        out += segment.text if isinstance(segment, Speech) else text[start : segment.end]
    return out


def test_a_break_is_a_pause_between_two_speech_segments() -> None:
    text = 'Hello <break time="1.5s"/> world.'
    assert split_breaks(text) == [Speech("Hello ", 0), Pause(1.5, 6, 26), Speech(" world.", 26)]
    assert spoken_text(text) == "Hello  world."
    assert covered(text) == text


@pytest.mark.parametrize(
    ("tag", "seconds"),
    [
        ('<break time="1.5s"/>', 1.5),
        ('<break time="750ms"/>', 0.75),
        ("<break time='2s' />", 2.0),
        ('<break time="0.5s">', 0.5),
        ('<BREAK TIME="1S"/>', 1.0),
        ("<break time=1s/>", 1.0),
        ('<break time="5s"/>', MAX_BREAK_S),  # capped as the live API documents
        ('<break time="10000ms"/>', MAX_BREAK_S),
    ],
)
def test_times_in_seconds_or_milliseconds(tag: str, seconds: float) -> None:
    segments = split_breaks(f"a {tag} b")
    assert [s for s in segments if isinstance(s, Pause)] == [Pause(seconds, 2, 2 + len(tag))]


@pytest.mark.parametrize(
    "tag",
    [
        "<break/>",
        '<break time="soon"/>',
        '<break time="1.5"/>',
        '<break time="1.5h"/>',
        '<break time="-1s"/>',
        '<break strength="x-strong"/>',
        '<break time="1s"',  # cut off before its `>`
        "<break",
    ],
)
def test_a_malformed_tag_is_dropped_never_spoken(tag: str) -> None:
    text = f"Hello {tag} world"
    assert "break" not in spoken_text(text).lower()
    assert "<" not in spoken_text(text)
    pauses = [s for s in split_breaks(text) if isinstance(s, Pause)]
    assert [p.seconds for p in pauses] == [0.0]
    assert covered(text) == text


def test_text_without_tags_is_one_segment_and_other_markup_is_left_alone() -> None:
    assert split_breaks("a < b and <breakfast> c") == [Speech("a < b and <breakfast> c", 0)]
    assert split_breaks("") == []


def test_several_tags_and_the_character_map() -> None:
    text = 'One.<break time="1s"/>Two.<break time="250ms"/>Three.'
    segments = split_breaks(text)
    assert [type(s).__name__ for s in segments] == ["Speech", "Pause", "Speech", "Pause", "Speech"]
    for segment in segments:
        if isinstance(segment, Speech):
            assert text[segment.start : segment.start + len(segment.text)] == segment.text
    assert covered(text) == text


def test_pause_alignment_spreads_the_tags_characters_over_the_silence() -> None:
    text = 'Hi <break time="1s"/> there'
    pause = next(s for s in split_breaks(text) if isinstance(s, Pause))
    alignment = pause.alignment(text, start_ms=400)
    assert "".join(alignment.chars) == '<break time="1s"/>'
    assert alignment.char_start_times_ms[0] == 400
    assert sum(alignment.char_durations_ms) == 1000
    ends = [s + d for s, d in zip(alignment.char_start_times_ms, alignment.char_durations_ms, strict=True)]
    assert ends[-1] == 1400
    assert list(alignment.char_start_times_ms[1:]) == ends[:-1]  # contiguous, never going back


def test_malformed_tag_alignment_takes_no_time() -> None:
    text = "a <break/> b"
    pause = next(s for s in split_breaks(text) if isinstance(s, Pause))
    alignment = pause.alignment(text, start_ms=100)
    assert set(alignment.char_start_times_ms) == {100}
    assert set(alignment.char_durations_ms) == {0}


@pytest.mark.parametrize(
    ("buffer", "start"),
    [
        ("Hello <", 6),
        ("Hello <bre", 6),
        ('Hello <break time="1', 6),
        ('Hello <break time="1s" /', 6),
        ('Hello <break time="1s"/>', None),
        ("Hello <b> x", None),
        ("a < b", None),
        ("Hello", None),
    ],
)
def test_an_unfinished_tag_at_the_end_of_a_stream_is_held(buffer: str, start: int | None) -> None:
    assert unfinished_tag_start(buffer) == start
