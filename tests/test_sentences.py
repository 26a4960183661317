# ruff: noqa: RUF001
"""The one sentence-end rule: abbreviations, continuations, other languages, and pysbd as a yardstick."""

from __future__ import annotations

import pysbd
import pytest

from elevtts.chunking import TextSplitter, sentence_spans, split_text, synthesis_pieces
from elevtts.sentences import ABBREVIATIONS, ends_sentence, lookahead_decided, words
from elevtts.server.buffer import TextBuffer

# Each case is a text as its sentences. A split anywhere else is a false split: an audible pause.
TRICKY = [
    ["Dr. Smith arrived at 3.", "He was late."],
    ["See Fig. 3 for details.", "It shows the trend."],
    ["Apple Inc. makes phones.", "The Co. founder left."],
    ["She has a Ph.D. in physics.", "Her thesis won a prize."],
    ["Gov. Brown met Sen. Harris and Gen. Lee.", "They talked."],
    ["He lives on St. James Street.", "It is quiet."],
    ["The meeting is on Jan. 5 at noon.", "Bring notes."],
    ["It costs approx. 5 dollars.", "That is cheap."],
    ["The dept. head agreed.", "We celebrated."],
    ["Wait... then we go.", "Fine."],
    ['"Stop!" she said.', "Nobody moved."],
    ["Item No. 7 is sold out.", "Sorry."],
    ["Mr. and Mrs. Smith arrived.", "They sat down."],
    ["J. R. R. Tolkien wrote it.", "It sold well."],
    ["The U.S. economy grew.", "Markets rallied."],
    ["It happened at 5 p.m. yesterday.", "We left."],
    ["Version 3.14 is out.", "Update now."],
    ["Visit example.com for more.", "Thanks."],
    ["Mt. Everest is tall.", "Climbers know it."],
    ["I was born in Sept. 1990.", "It rained."],
    ["Capt. Hook and Lt. Dan left.", "Sgt. Pepper stayed."],
    ["Oh no... not again.", "Yes, again."],
    ["Is it 3 vs. 4?", "Four."],
    ["Ask Prof. Lee, e.g. by mail.", "He answers."],
    ["Why? because I said so.", "Go."],
    ["Call me.", "Then we talk."],
    ["I said no.", "Then I left."],
    ["Read art. 5 of the law.", "It is short."],
    ["Born c. 1900 in Rome, he left.", "He never returned."],
    ["He works at Apple Inc.", "The company is big."],  # we miss this end: a merge, not a pause
    ["Meet me at 5 p.m. tomorrow.", "Bye."],
    ["I love the U.K.", "It rains a lot."],  # missed too: dotted capitals never end
    ["Is this No. 1?", "Yes."],
    ['He yelled "Run!" and we ran.', "Fast."],
    ["Prices rose 5 pct. in May.", "Again."],
    ["It was approx. -5 degrees.", "Cold."],
]


def _split_points(sentences: list[str]) -> set[int]:
    """Word counts before each sentence start except the first: where the text should split."""
    points, count = set(), 0
    for sentence in sentences[:-1]:
        count += len(sentence.split())
        points.add(count)
    return points


def _false_splits(gold: list[str], found: list[str]) -> int:
    return len(_split_points(found) - _split_points(gold))


def _ours(text: str) -> list[str]:
    return [chunk.text for chunk in split_text(text, max_chars=1000)]


@pytest.mark.parametrize("gold", TRICKY, ids=[case[0] for case in TRICKY])
def test_no_false_split_on_tricky_sentences(gold: list[str]) -> None:
    text = " ".join(gold)
    found = [chunk.strip() for chunk in _ours(text)]
    assert _false_splits(gold, found) == 0, found
    assert [span.strip() for span in sentence_spans(text)] == found  # the server reads it alike


def test_false_splits_no_more_than_pysbd() -> None:
    segmenter = pysbd.Segmenter(language="en", clean=False)
    ours = sum(_false_splits(gold, _ours(" ".join(gold))) for gold in TRICKY)
    theirs = sum(_false_splits(gold, segmenter.segment(" ".join(gold))) for gold in TRICKY)
    missed = sum(len(_split_points(gold) - _split_points(_ours(" ".join(gold)))) for gold in TRICKY)
    print(f"false splits on {len(TRICKY)} cases: elevtts {ours}, pysbd {theirs} (elevtts missed {missed})")
    assert ours == 0
    assert ours <= theirs


@pytest.mark.parametrize(
    "abbreviation",
    ["fig", "no", "inc", "co", "ph.d", "gov", "sen", "gen", "st", "approx", "dept", "jan", "sept"],
)
def test_abbreviation_list_carries_the_issue_examples(abbreviation: str) -> None:
    assert abbreviation in ABBREVIATIONS or ends_sentence(f"{abbreviation}.", next_word="5") is False


def test_everyday_words_in_the_list_end_sentences_unless_a_number_follows() -> None:
    assert ends_sentence("no.", next_word="Then")
    assert not ends_sentence("No.", next_word="5")
    assert ends_sentence("me.", next_word="Then")


def test_a_lowercase_word_on_the_same_line_continues_the_sentence() -> None:
    assert not ends_sentence("Wait...", next_word="then")
    assert not ends_sentence("Stop!", next_word="«she")
    assert ends_sentence("Wait...", next_word="then", same_line=False)  # a new line (a list, a verse)


def test_streaming_lookahead_waits_past_opening_quotes() -> None:
    assert not lookahead_decided("")
    assert not lookahead_decided("\u201c")
    assert lookahead_decided("\u201cT")
    assert lookahead_decided("» ")  # a token of quotes only: known once whitespace follows


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_decisions_do_not_depend_on_fragmentation(size: int) -> None:
    text = (
        " ".join(" ".join(case) for case in TRICKY)
        + " 今日は晴れです。「明日は？」と聞いた。« Oui ! » Il part."
    )
    whole = _ours(text)
    splitter = TextSplitter(max_chars=1000)
    pieces = []
    for start in range(0, len(text), size):
        pieces += splitter.feed(text[start : start + size])
    pieces += splitter.flush()
    assert [chunk.text for chunk in pieces] == whole


# -- other languages (issue 16) ----------------------------------------------------------------


def test_german_quotes_and_abbreviations() -> None:
    text = "„Kommst du?“ fragte sie. Er kam um 3 Uhr, z.B. mit Dr. Müller. Nr. 5 ist frei."
    assert [c.strip() for c in _ours(text)] == [
        "„Kommst du?“ fragte sie.",
        "Er kam um 3 Uhr, z.B. mit Dr. Müller.",
        "Nr. 5 ist frei.",
    ]


def test_french_spaced_punctuation_and_guillemets() -> None:
    text = "« Vraiment ? » demanda-t-il. « Oui ! » Elle partit. Mme. Curie arriva."
    assert [c.strip() for c in _ours(text)] == [
        "« Vraiment ? » demanda-t-il.",
        "« Oui ! »",
        "Elle partit.",
        "Mme. Curie arriva.",
    ]


def test_spanish_inverted_openers() -> None:
    text = "¿Dónde está? ¡Aquí! La Sra. García llegó."
    assert [c.strip() for c in _ours(text)] == ["¿Dónde está?", "¡Aquí!", "La Sra. García llegó."]
    assert not ends_sentence("está?", next_word="¿qué")  # lowercase after the opener: continues


def test_chinese_and_japanese_sentences_end_without_a_space() -> None:
    chinese = "我们今天去公园。你来吗？好的！"
    assert [c.text for c in split_text(chinese)] == ["我们今天去公园。 ", "你来吗？ ", "好的！ "]
    assert sentence_spans(chinese) == ["我们今天去公园。", "你来吗？", "好的！"]
    japanese = "「明日は雨です。」と彼は言った。傘を持って。"
    assert sentence_spans(japanese) == ["「明日は雨です。」と彼は言った。", "傘を持って。"]


def test_no_space_scripts_cut_over_long_sentences_at_their_commas() -> None:
    text = "我们今天去公园，然后去博物馆，最后回家吃饭，大家都很开心。"
    chunks = split_text(text, max_chars=16)
    assert [c.text for c in chunks] == ["我们今天去公园，然后去博物馆， ", "最后回家吃饭，大家都很开心。 "]
    assert all(chunk.text.rstrip()[-1] in "，。" for chunk in chunks)


def test_tokens_keep_words_of_spaced_scripts_whole() -> None:
    assert [m.group() for m in words("Hello, wörld. Ça va?")] == ["Hello,", "wörld.", "Ça", "va?"]
    assert [m.group() for m in words("我们，你们、他们。")] == ["我们，", "你们、", "他们。"]


def test_schedule_cuts_chinese_at_a_comma_not_mid_phrase() -> None:
    buffer = TextBuffer((12,))
    ready = buffer.add("我们今天去公园，然后去博物馆，最后回")  # 18 characters, no space anywhere
    assert ready == ["我们今天去公园，然后去博物馆，"]
    assert buffer.text == "最后回"  # the unfinished phrase waits for more text


def test_synthesis_pieces_cut_japanese_at_its_punctuation() -> None:
    text = "今日はとても良い天気なので、公園に行って、友達と一緒にお弁当を食べました。明日も晴れます。"
    pieces = synthesis_pieces(text, first_max_chars=12, max_chars=24)
    assert "".join(pieces) == text
    assert pieces == [
        "今日はとても良い天気なので、",
        "公園に行って、友達と一緒にお弁当を食べました。",
        "明日も晴れます。",
    ]
