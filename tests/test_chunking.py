from __future__ import annotations

import random

import pytest

from elevtts.chunking import (
    Chunk,
    TextSplitter,
    complete_sentences_end,
    sentence_spans,
    split_text,
    synthesis_pieces,
)

SAMPLE = """# A short history

Mr. Smith met Dr. Jones at 10 a.m. on Baker St. in London. They talked about v1.2.3 of the
tool, which costs $1,000.50 (or 3.14 times more in the U.S. than elsewhere). "Is it worth it?"
asked Prof. Lee. 'No.' Then J. R. R. Tolkien arrived... Everyone laughed!

Visit https://example.com/docs/index.html?a=1.2 or write to someone@example.org. Thanks…
- first item
- second item, with a comma
1. numbered item
2. another one

This final sentence is deliberately long, so that it runs past the limit we set in the tests; it
has clauses — several of them — and it keeps going: on and on, until it finally ends here.
Supercalifragilisticexpialidocious-and-then-some-more-letters-to-make-it-long is one word. End"""


def texts(chunks: list[Chunk]) -> list[str]:
    return [chunk.text for chunk in chunks]


# -- sentence ends -------------------------------------------------------------------------


@pytest.mark.parametrize("mark", [".", "!", "?", "…", "...", "?!"])
def test_sentence_ends_at_terminators(mark: str) -> None:
    assert texts(split_text(f"One{mark} Two")) == [f"One{mark} ", "Two "]
    assert split_text(f"One{mark} Two")[0].boundary == "sentence"


def test_closing_quote_stays_with_its_sentence() -> None:
    assert texts(split_text("He said 'no.' Then he left.")) == ["He said 'no.' ", "Then he left. "]
    assert texts(split_text('She asked "why?" Nobody knew.')) == ['She asked "why?" ', "Nobody knew. "]
    assert texts(split_text("(It was late.) We slept.")) == ["(It was late.) ", "We slept. "]


@pytest.mark.parametrize("abbr", ["Mr.", "Mrs.", "Ms.", "Dr.", "Prof.", "Sr.", "Jr.", "St.", "vs.", "etc."])
def test_no_sentence_end_after_abbreviation(abbr: str) -> None:
    assert texts(split_text(f"Ask {abbr} Smith now. Ok")) == [f"Ask {abbr} Smith now. ", "Ok "]


@pytest.mark.parametrize("abbr", ["e.g.", "i.e.", "a.m.", "p.m.", "U.S."])
def test_no_sentence_end_after_dotted_abbreviation(abbr: str) -> None:
    assert texts(split_text(f"Come {abbr} Later today. Ok")) == [f"Come {abbr} Later today. ", "Ok "]


def test_no_sentence_end_after_initials() -> None:
    assert texts(split_text("J. R. R. Tolkien wrote it. Ok")) == ["J. R. R. Tolkien wrote it. ", "Ok "]


@pytest.mark.parametrize("number", ["3.14", "$1,000.50", "v1.2.3", "10.000"])
def test_no_sentence_end_inside_numbers(number: str) -> None:
    chunks = split_text(f"It is {number} now")
    assert texts(chunks) == [f"It is {number} now "]


@pytest.mark.parametrize("token", ["https://example.com/a.b?x=1.2", "someone@example.org", "www.x.io"])
def test_no_sentence_end_inside_urls_and_emails(token: str) -> None:
    assert texts(split_text(f"See {token} now")) == [f"See {token} now "]


def test_url_at_sentence_end_still_ends_it() -> None:
    assert texts(split_text("See example.com. Then go.")) == ["See example.com. ", "Then go. "]


def test_terminator_at_end_of_input_is_a_sentence_on_flush() -> None:
    assert split_text("Hello there.") == [Chunk("Hello there. ", "sentence")]
    assert split_text("Hello there") == [Chunk("Hello there ", "word")]


# -- streaming -----------------------------------------------------------------------------


def test_sentence_waits_for_the_next_non_space_character() -> None:
    splitter = TextSplitter()
    assert splitter.feed("Hello there.") == []
    assert splitter.feed("  ") == []
    assert splitter.feed("N") == [Chunk("Hello there. ", "sentence")]
    assert splitter.pending() == "N"


def test_abbreviation_at_fragment_end_waits() -> None:
    splitter = TextSplitter()
    assert splitter.feed("Ask Dr.") == []
    assert splitter.feed(" Smith. And") == [Chunk("Ask Dr. Smith. ", "sentence")]


def test_never_cuts_inside_a_word_across_fragments() -> None:
    splitter = TextSplitter(max_chars=10)
    assert splitter.feed("abcdef ghij") == []
    assert splitter.feed("klmnop ") == [Chunk("abcdef ", "word")]
    assert splitter.pending() == "ghijklmnop"


def test_pending_and_flush() -> None:
    splitter = TextSplitter()
    splitter.feed("One. Two thr")
    assert splitter.pending() == "Two thr"
    assert splitter.flush() == [Chunk("Two thr ", "word")]
    assert splitter.pending() == ""
    assert splitter.flush() == []


def test_flush_after_blank_line_is_a_paragraph() -> None:
    splitter = TextSplitter()
    assert splitter.feed("Title\n\n") == []
    assert splitter.flush() == [Chunk("Title ", "paragraph")]


def test_flush_then_continue() -> None:
    splitter = TextSplitter()
    splitter.feed("Hello ")
    assert splitter.flush() == [Chunk("Hello ", "word")]
    assert splitter.feed("world. Again") == [Chunk("world. ", "sentence")]


def test_empty_and_whitespace_input_gives_nothing() -> None:
    assert split_text("") == []
    assert split_text("  \n\n \t ") == []


# -- newlines and whitespace ---------------------------------------------------------------


def test_blank_line_is_a_paragraph_boundary() -> None:
    assert split_text("Title\n\nBody text") == [Chunk("Title ", "paragraph"), Chunk("Body text ", "word")]
    assert split_text("Done.\n \n\nNext")[0] == Chunk("Done. ", "paragraph")


def test_single_newline_is_whitespace_mid_sentence() -> None:
    assert texts(split_text("a line that\ncontinues here")) == ["a line that continues here "]


def test_single_newline_after_sentence_punctuation_ends_chunk() -> None:
    # "Dr." is an abbreviation, but a line ending with it still ends the chunk
    assert texts(split_text("Call the Dr.\nNow")) == ["Call the Dr. ", "Now "]


def test_list_items_end_chunks() -> None:
    assert texts(split_text("Buy:\n- milk\n- eggs\n1. bread\n2) jam")) == [
        "Buy: ",
        "- milk ",
        "- eggs ",
        "1. bread ",
        "2) jam ",
    ]


def test_list_number_is_not_a_sentence_end() -> None:
    assert texts(split_text("1. First thing\n2. Second")) == ["1. First thing ", "2. Second "]


def test_heading_lines_end_chunks() -> None:
    assert texts(split_text("## Setup\nInstall it")) == ["## Setup ", "Install it "]
    assert texts(split_text("Intro text\n# Part two\nMore")) == ["Intro text ", "# Part two ", "More "]


def test_whitespace_runs_collapse() -> None:
    assert texts(split_text("  a \t b   c  ")) == ["a b c "]


def test_every_chunk_ends_with_exactly_one_space() -> None:
    for chunk in split_text(SAMPLE, max_chars=60):
        assert chunk.text.endswith(" ") and not chunk.text.endswith("  ")
        assert chunk.text.strip()


# -- long sentences ------------------------------------------------------------------------


def test_clauses_do_not_split_short_sentences() -> None:
    assert texts(split_text("Well, yes; but: no — fine.")) == ["Well, yes; but: no — fine. "]


def test_long_sentence_is_cut_at_last_clause() -> None:
    chunks = split_text("aaa bbb ccc, ddd eee fff ggg", max_chars=20)
    assert chunks == [Chunk("aaa bbb ccc, ", "clause"), Chunk("ddd eee fff ggg ", "word")]


@pytest.mark.parametrize("mark", [";", ":", ",", " —", " \u2013"])
def test_clause_marks(mark: str) -> None:
    chunks = split_text(f"aaaa bbbb cccc{mark} dddd eeee", max_chars=20)
    assert chunks[0] == Chunk(f"aaaa bbbb cccc{mark} ", "clause")


def test_long_sentence_without_clause_is_cut_between_words() -> None:
    chunks = split_text("one two three four five six", max_chars=10)
    assert chunks == [
        Chunk("one two ", "word"),
        Chunk("three four ", "word"),
        Chunk("five six ", "word"),
    ]
    assert all(len(chunk.text) - 1 <= 10 for chunk in chunks)


def test_overlong_word_is_emitted_alone_uncut() -> None:
    word = "x" * 30
    assert split_text(f"a {word} b", max_chars=10) == [
        Chunk("a ", "word"),
        Chunk(f"{word} ", "word"),
        Chunk("b ", "word"),
    ]


def test_min_chars_merges_short_sentences() -> None:
    assert texts(split_text("Hi. Yes. This is longer. Ok", min_chars=10)) == [
        "Hi. Yes. This is longer. ",
        "Ok ",
    ]


def test_min_chars_does_not_merge_paragraphs() -> None:
    assert texts(split_text("Hi.\n\nYes.", min_chars=10)) == ["Hi. ", "Yes. "]


# -- fragmentation property ----------------------------------------------------------------


@pytest.mark.parametrize("max_chars", [250, 60, 15])
def test_any_fragmentation_gives_the_same_chunks(max_chars: int) -> None:
    expected = split_text(SAMPLE, max_chars=max_chars)
    rng = random.Random(max_chars)
    for _ in range(200):
        splitter = TextSplitter(max_chars=max_chars)
        chunks: list[Chunk] = []
        pos = 0
        while pos < len(SAMPLE):
            size = rng.choice([1, 1, 2, 3, 5, 8, 13, 40])
            chunks += splitter.feed(SAMPLE[pos : pos + size])
            pos += size
        chunks += splitter.flush()
        assert chunks == expected


def test_chunks_reproduce_the_words_in_order() -> None:
    for max_chars in (250, 40, 10):
        chunks = split_text(SAMPLE, max_chars=max_chars)
        assert " ".join(chunk.text for chunk in chunks).split() == SAMPLE.split()


def test_sample_boundaries() -> None:
    chunks = split_text(SAMPLE)
    assert chunks[0] == Chunk("# A short history ", "paragraph")
    assert chunks[1].text == "Mr. Smith met Dr. Jones at 10 a.m. on Baker St. in London. "
    assert "Visit https://example.com/docs/index.html?a=1.2 or write to someone@example.org. " in texts(
        chunks
    )


# -- server side ---------------------------------------------------------------------------


def test_sentence_spans_are_lossless() -> None:
    spans = sentence_spans(SAMPLE)
    assert "".join(spans) == SAMPLE
    assert spans[1] == "Mr. Smith met Dr. Jones at 10 a.m. on Baker St. in London. "


def test_sentence_spans_keep_trailing_whitespace() -> None:
    assert sentence_spans("  One.  Two!\n\nThree") == ["  One.  ", "Two!\n\n", "Three"]
    assert sentence_spans("One.  ") == ["One.  "]
    assert sentence_spans("") == []


def test_sentence_spans_end_of_text() -> None:
    assert sentence_spans("I have 3. Really 3.") == ["I have 3. ", "Really 3."]
    assert sentence_spans("Ask the Dr.") == ["Ask the Dr."]


def test_complete_sentences_end() -> None:
    assert complete_sentences_end("Hello world") == 0
    assert complete_sentences_end("Hello. Wor") == len("Hello. ")
    assert complete_sentences_end("One. Two. Thr") == len("One. Two. ")


def test_complete_sentences_end_at_very_end_of_buffer() -> None:
    assert complete_sentences_end("Hello there.") == len("Hello there.")
    assert complete_sentences_end('He said "hi!"') == len('He said "hi!"')


def test_complete_sentences_end_waits_for_abbreviations_and_numbers() -> None:
    assert complete_sentences_end("Call Dr.") == 0
    assert complete_sentences_end("One. Pi is 3.") == len("One. ")
    assert complete_sentences_end("One. Pi is 3. ") == len("One. Pi is 3. ")


def test_complete_sentences_end_paragraph() -> None:
    assert complete_sentences_end("Title\n\n") == len("Title\n\n")
    assert complete_sentences_end("A line\n") == 0


def test_synthesis_pieces_lossless_and_sentences() -> None:
    pieces = synthesis_pieces(SAMPLE)
    assert "".join(pieces) == SAMPLE
    assert synthesis_pieces("One. Two. ") == ["One. ", "Two. "]


def test_synthesis_first_piece_cut_at_clause() -> None:
    text = "This first sentence is rather long, so it gets cut here, and the rest follows. Next one, short."
    pieces = synthesis_pieces(text, first_max_chars=40)
    assert pieces == [
        "This first sentence is rather long, ",
        "so it gets cut here, and the rest follows. ",
        "Next one, short.",
    ]


def test_synthesis_first_piece_without_clause_is_whole() -> None:
    text = "This first sentence is rather long and has no clause marks at all. Next."
    assert synthesis_pieces(text, first_max_chars=20) == [
        "This first sentence is rather long and has no clause marks at all. ",
        "Next.",
    ]


def test_synthesis_long_pieces_cut_at_clause_then_words() -> None:
    text = "Start. " + "word " * 10 + "end, " + "more " * 3 + "done."
    pieces = synthesis_pieces(text, max_chars=30)
    assert "".join(pieces) == text
    assert all(len(piece.strip()) <= 30 for piece in pieces)
    assert any(piece.endswith("end, ") for piece in pieces)


def test_synthesis_never_cuts_inside_a_word() -> None:
    word = "y" * 50
    pieces = synthesis_pieces(f"{word} {word}", max_chars=20)
    assert pieces == [f"{word} ", word]


def test_finished_sentence_is_released_when_input_pauses() -> None:
    splitter = TextSplitter()
    assert splitter.feed("First sentence. ") == []  # not yet confirmed by a next character
    assert splitter.finished_sentence() == [Chunk("First sentence. ", "sentence")]
    assert splitter.feed("Second one. Third") == [Chunk("Second one. ", "sentence")]


def test_finished_sentence_waits_for_unfinished_text_abbreviations_and_newlines() -> None:
    for text in ("Not finished ", "I met Dr. ", "Line ends.\n", "no space yet."):
        splitter = TextSplitter()
        splitter.feed(text)
        assert splitter.finished_sentence() == [], text


def test_over_long_cut_never_splits_a_break_tag() -> None:
    text = 'One two three four five six <break time="1.5s"/> seven eight nine ten.'
    chunks = split_text(text, max_chars=36)
    assert "".join(chunk.text for chunk in chunks).split() == text.split()
    for chunk in chunks:  # each tag arrives whole, never half-sent
        assert chunk.text.count("<break") == chunk.text.count("/>")


def test_synthesis_pieces_never_cut_inside_a_break_tag() -> None:
    text = 'one two three four five six <break time="1.5s"/> seven eight nine ten eleven twelve.'
    for max_chars in range(10, 60, 3):
        pieces = synthesis_pieces(text, first_max_chars=max_chars, max_chars=max_chars)
        assert "".join(pieces) == text
        assert all(piece.count("<break") == piece.count("/>") for piece in pieces), pieces
