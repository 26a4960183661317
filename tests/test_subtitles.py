# ruff: noqa: RUF001  (Chinese and Japanese punctuation)
from __future__ import annotations

import json

import pytest

from elevtts.protocol import Alignment
from elevtts.subtitles import SubtitleBuilder, Word, cues, to_json, to_srt, to_vtt


def align(text: str, *, step_ms: int = 100, start_ms: int = 0) -> Alignment:
    """Each character lasts `step_ms`, starting at `start_ms` (relative to the chunk)."""
    n = len(text)
    return Alignment(tuple(text), tuple(start_ms + i * step_ms for i in range(n)), (step_ms,) * n)


def test_words_from_one_chunk() -> None:
    builder = SubtitleBuilder()
    builder.add(align("Hi you "), 0.0)
    assert builder.words() == [Word("Hi", 0.0, 0.2), Word("you", 0.3, 0.6)]


def test_offset_makes_times_absolute() -> None:
    builder = SubtitleBuilder()
    builder.add(align("ab "), 2.5)
    assert builder.words() == [Word("ab", 2.5, 2.7)]


def test_word_spanning_chunks_is_joined() -> None:
    builder = SubtitleBuilder()
    builder.add(align("Hel"), 0.0)
    assert builder.words() == []
    builder.add(align("lo there"), 0.3)
    assert builder.words() == [Word("Hello", 0.0, 0.5)]
    assert builder.finish() == [Word("Hello", 0.0, 0.5), Word("there", 0.6, 1.1)]


def test_last_word_completes_on_finish() -> None:
    builder = SubtitleBuilder()
    builder.add(align("end"), 1.0)
    assert builder.words() == []
    assert builder.finish() == [Word("end", 1.0, 1.3)]


def test_none_alignment_is_skipped() -> None:
    builder = SubtitleBuilder()
    builder.add(None, 0.0)
    builder.add(align("a "), 0.5)
    assert builder.finish() == [Word("a", 0.5, 0.6)]


def test_newlines_and_repeated_spaces_separate_words() -> None:
    builder = SubtitleBuilder()
    builder.add(align("a\n\n b"), 0.0)
    assert [w.text for w in builder.finish()] == ["a", "b"]


def test_a_break_tag_is_silence_not_words() -> None:
    # the local server aligns a <break> tag's own characters over its silence (elevtts.breaks)
    builder = SubtitleBuilder()
    builder.add(align("Title.<break time="), 0.0)  # a tag cut across chunks
    builder.add(align('"1s"/>\n\nThe a<b c> <br>'), 1.8)
    assert [w.text for w in builder.finish()] == ["Title.", "The", "a<b", "c>", "<br>"]
    assert builder.words()[:2] == [Word("Title.", 0.0, 0.6), Word("The", 2.6, 2.9)]
    cut = SubtitleBuilder()
    cut.add(align('End <break time="2'), 0.0)  # a tag cut off is never spoken, nor shown
    assert [w.text for w in cut.finish()] == ["End"]


def test_times_are_monotonic_when_chunks_overlap() -> None:
    builder = SubtitleBuilder()
    builder.add(align("one "), 0.0)  # ends at 0.3
    builder.add(align("two "), 0.1)  # claims to start at 0.1
    words = builder.finish()
    assert words[1].start_s >= words[0].end_s
    assert all(w.end_s >= w.start_s for w in words)


WORDS = [
    Word("Hello", 0.0, 0.4),
    Word("world.", 0.5, 1.0),
    Word("This", 1.1, 1.3),
    Word("is", 1.35, 1.5),
    Word("after", 2.5, 2.9),  # a 1 s pause before it
    Word("a", 3.0, 3.1),
    Word("pause", 3.1, 3.6),
]


def test_cues_break_after_sentence_end() -> None:
    assert [w.text for w in cues(WORDS)[0]] == ["Hello", "world."]


def test_cues_break_at_long_pause() -> None:
    assert [[w.text for w in cue] for cue in cues(WORDS)[1:]] == [["This", "is"], ["after", "a", "pause"]]


def test_cues_respect_max_chars() -> None:
    words = [Word(f"w{i:03d}", i * 0.2, i * 0.2 + 0.1) for i in range(20)]
    groups = cues(words, max_chars=14)
    assert all(len(" ".join(w.text for w in g)) <= 14 for g in groups)
    assert [len(g) for g in groups] == [3] * 6 + [2]


def test_cues_respect_max_duration() -> None:
    words = [Word("a", i * 0.5, i * 0.5 + 0.4) for i in range(10)]
    groups = cues(words, max_duration_s=2.0)
    assert all(g[-1].end_s - g[0].start_s <= 2.0 for g in groups)


def test_overlong_word_gets_its_own_cue() -> None:
    groups = cues([Word("a", 0, 0.1), Word("x" * 60, 0.2, 0.5), Word("b", 0.6, 0.7)])
    assert [len(g) for g in groups] == [1, 1, 1]


def test_srt_format() -> None:
    assert to_srt(WORDS[:4]) == (
        "1\n00:00:00,000 --> 00:00:01,000\nHello world.\n\n2\n00:00:01,100 --> 00:00:01,500\nThis is\n\n"
    )


def test_srt_hours_and_rounding() -> None:
    srt = to_srt([Word("late", 3723.4567, 3724.0)])
    assert "01:02:03,457 --> 01:02:04,000" in srt


def test_vtt_format() -> None:
    vtt = to_vtt(WORDS[:4])
    assert vtt == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nHello world.\n\n00:00:01.100 --> 00:00:01.500\nThis is\n"
    )
    assert "\n\n\n" not in vtt


def test_empty_subtitles() -> None:
    assert to_srt([]) == ""
    assert to_vtt([]) == "WEBVTT\n"
    assert json.loads(to_json([])) == {"words": []}


def test_json_format() -> None:
    data = json.loads(to_json([Word("héllo", 0.12345, 1.0)]))
    assert data == {"words": [{"text": "héllo", "start": 0.123, "end": 1.0}]}


@pytest.mark.parametrize("render", [to_srt, to_vtt])
def test_end_to_end_from_alignment(render: object) -> None:
    builder = SubtitleBuilder()
    builder.add(align("Good morning. Nice "), 0.0)
    builder.add(align("day."), 1.9)
    text = render(builder.finish())  # type: ignore[operator]
    assert "Good morning." in text and "Nice day." in text


def test_resume_ends_the_word_or_drops_a_word_spoken_again() -> None:
    def chunk(text: str) -> Alignment:
        return Alignment(tuple(text), tuple(range(0, 10 * len(text), 10)), (10,) * len(text))

    builder = SubtitleBuilder()
    builder.add(chunk("one tw"), 0.0)
    builder.resume(repeat_word=True)  # the new stream says "two" again from its start
    builder.add(chunk("two three"), 1.0)
    builder.resume(repeat_word=False)  # the new stream starts with a new word
    builder.add(chunk("four"), 2.0)
    assert [w.text for w in builder.finish()] == ["one", "two", "three", "four"]


# -- one sentence rule (issue 10 item 4) and escaping (item 7) -----------------------------------


def spoken(text: str) -> list[Word]:
    """Words of `text`, 0.3 s each with 0.1 s gaps (never a long pause)."""
    return [Word(word, index * 0.4, index * 0.4 + 0.3) for index, word in enumerate(text.split())]


def cue_texts(words: list[Word], **kw: float) -> list[str]:
    return [" ".join(word.text for word in group) for group in cues(words, **kw)]


def test_cues_keep_abbreviations_with_their_sentence() -> None:
    text = "Dr. Smith arrived at 3. He met Mr. J. Jones."
    assert cue_texts(spoken(text), max_chars=80) == ["Dr. Smith arrived at 3.", "He met Mr. J. Jones."]


def test_cues_use_the_splitters_rule_for_continuations_and_numbers() -> None:
    text = "Wait... then go. See Fig. 3 now! Ok"
    assert cue_texts(spoken(text), max_chars=80) == ["Wait... then go.", "See Fig. 3 now!", "Ok"]


def test_cues_end_after_a_closing_quote_on_its_own() -> None:
    assert cue_texts(spoken("« Oui ! » Il part."), max_chars=80) == ["« Oui ! »", "Il part."]


def test_vtt_escapes_markup_and_never_carries_an_arrow() -> None:
    vtt = to_vtt(spoken("AT&T loves <3 and a-->b"), max_chars=80)
    cue_text = vtt.split("\n")[3]
    assert cue_text == "AT&amp;T loves &lt;3 and a--&gt;b"
    assert vtt.count("-->") == 1  # only the timing line's


def test_srt_never_carries_an_arrow_in_cue_text() -> None:
    srt = to_srt(spoken("a-->b and c --> d"), max_chars=80)
    assert srt.count("-->") == 1
    assert srt.split("\n")[2] == "a->b and c -> d"


# -- no-space scripts (issue 16) ---------------------------------------------------------------


def test_chinese_words_end_at_full_width_punctuation_and_cues_keep_no_spaces() -> None:
    builder = SubtitleBuilder()
    builder.add(align("我们今天去公园，然后回家。你来吗？"), 0.0)
    words = builder.finish()
    assert [w.text for w in words] == ["我们今天去公园，", "然后回家。", "你来吗？"]
    srt = to_srt(words)
    assert "\n我们今天去公园，然后回家。\n" in srt
    assert "\n你来吗？\n" in srt


def test_japanese_quote_closing_after_a_stop_stays_with_its_word() -> None:
    builder = SubtitleBuilder()
    builder.add(align("「雨です。」と言った。"), 0.0)
    assert [w.text for w in builder.finish()] == ["「雨です。」", "と言った。"]
