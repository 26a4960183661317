"""Text normalization, rule by rule, and the map back to the original characters."""

from __future__ import annotations

import itertools
from difflib import SequenceMatcher

import pytest

from elevtts.normalize import cardinal, normalize_text, ordinal, roman, year


def said(text: str) -> str:
    return normalize_text(text, mode="on").text


@pytest.mark.parametrize(
    ("number", "words"),
    [(0, "zero"), (13, "thirteen"), (40, "forty"), (99, "ninety-nine"), (105, "one hundred five"),
     (1000, "one thousand"), (2_500_017, "two million five hundred thousand seventeen")],
)  # fmt: skip
def test_cardinal(number: int, words: str) -> None:
    assert cardinal(number) == words


@pytest.mark.parametrize(
    ("number", "words"),
    [(1, "first"), (2, "second"), (3, "third"), (5, "fifth"), (8, "eighth"), (9, "ninth"), (12, "twelfth"),
     (20, "twentieth"), (21, "twenty-first"), (101, "one hundred first"), (1000, "one thousandth")],
)  # fmt: skip
def test_ordinal(number: int, words: str) -> None:
    assert ordinal(number) == words


@pytest.mark.parametrize(
    ("number", "words"),
    [(1984, "nineteen eighty-four"), (1905, "nineteen oh five"), (1900, "nineteen hundred"),
     (2000, "two thousand"), (2007, "two thousand seven"), (2019, "twenty nineteen"),
     (1066, "ten sixty-six")],
)  # fmt: skip
def test_year(number: int, words: str) -> None:
    assert year(number) == words


def test_roman() -> None:
    assert [roman(n) for n in ("IV", "IX", "XIV", "MCMXC", "VIII")] == [4, 9, 14, 1990, 8]
    assert roman("IIII") is None and roman("VX") is None and roman("") is None


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        # Roman numerals after chapter/part/book/volume
        ("Chapter IV", "Chapter 4"),
        ("CHAPTER XII. The End", "CHAPTER 12. The End"),
        ("Part II and Book III, Volume I", "Part 2 and Book 3, Volume 1"),
        ("Chapter IIII", "Chapter IIII"),  # not a numeral: left alone
        # regnal names
        ("Henry VIII married six times", "Henry the Eighth married six times"),
        ("Louis XIV and Elizabeth II", "Louis the Fourteenth and Elizabeth the Second"),
        ("World War II", "World War II"),  # not a regnal name
        # money
        ("It cost $3.50.", "It cost three dollars and fifty cents."),
        ("$1 or $0.99 or $1,000", "one dollar or ninety-nine cents or one thousand dollars"),
        ("$2.01", "two dollars and one cent"),
        ("£3.50 and €20", "three pounds and fifty pence and twenty euros"),
        ("$2.5 million", "two point five million dollars"),
        # ranges
        ("ages 10-12", "ages 10 to 12"),
        ("from 1914\u20131918", "from nineteen fourteen to nineteen eighteen"),
        ("won 3-2", "won 3-2"),  # a score is not a range
        ("call 555-1234-99", "call 555-1234-99"),  # nor a phone number
        ("the 2024-05-01 release", "the 2024-05-01 release"),  # nor a date
        # St.
        ("St. Paul", "Saint Paul"),
        ("42 Baker St. London", "42 Baker Street London"),
        ("down Baker St. to the river", "down Baker Street to the river"),
        ("on Main St.", "on Main Street"),
        # pages
        ("see p. 5", "see page 5"),
        ("pp. 10-12", "pages 10 to 12"),
        ("pp. 7", "pages 7"),
        # ordinals
        ("the 21st and 2nd and 13th", "the twenty-first and second and thirteenth"),
        ("the 21th", "the 21th"),  # a typo is left alone
        # years
        ("In 1984 and in 1905", "In nineteen eighty-four and in nineteen oh five"),
        ("in the 1980s", "in the nineteen eighties"),
        ("1,984 people and 1984.5", "1,984 people and 1984.5"),
        # times
        ("at 3:30 pm", "at three thirty p m"),
        ("at 10:05 A.M.", "at ten oh five a m"),
        ("at 3:00", "at three o'clock"),
        ("at 15:00", "at fifteen hundred"),
        ("ratio 12:75", "ratio 12:75"),  # not a time
        # percentages
        ("50% and 2.5 %", "fifty percent and two point five percent"),
        # units
        ("5 km, 1 kg, 6 ft, 1 ft", "5 kilometers, 1 kilogram, 6 feet, 1 foot"),
        ("60 mph at 20 °C", "60 miles per hour at 20 degrees Celsius"),
        ("5 kmph", "5 kmph"),  # not a unit we know
        ("nothing to change here", "nothing to change here"),
    ],
)
def test_rules(text: str, spoken: str) -> None:
    assert said(text) == spoken


def test_modes() -> None:
    text = "Chapter IV costs $3.50"
    assert normalize_text(text, mode="off").text == text
    assert normalize_text(text, mode="auto").text == "Chapter 4 costs three dollars and fifty cents"
    assert normalize_text(text, mode="auto", language="en-GB").text.startswith("Chapter 4")
    assert normalize_text(text, mode="auto", language="de").text == text  # English rules only
    assert normalize_text(text, mode="on", language="de").text.startswith("Chapter 4")
    with pytest.raises(ValueError, match=r"^apply_text_normalization must be auto, on or off, not 'yes'$"):
        normalize_text(text, mode="yes")


def test_opcodes_are_what_sequencematcher_would_give_for_the_original_and_spoken_text() -> None:
    original = "Chapter IV: on p. 5, St. Paul paid $3.50 in 1984."
    result = normalize_text(original, mode="on")
    codes = result.opcodes()
    # the same five-tuples remap_alignments reads from SequenceMatcher(None, original, spoken)
    assert {tag for tag, *_ in codes} <= {tag for tag, *_ in SequenceMatcher(None, "ab", "ac").get_opcodes()}
    assert codes[0][1] == 0 and codes[0][3] == 0
    assert codes[-1][2] == len(original) and codes[-1][4] == len(result.text)
    for (_, _, i2, _, j2), (_, i1, _, j1, _) in itertools.pairwise(codes):
        assert (i2, j2) == (i1, j1)  # contiguous on both sides
    for tag, i1, i2, j1, j2 in codes:
        if tag == "equal":
            assert original[i1:i2] == result.text[j1:j2]
    replaced = [(original[i1:i2], result.text[j1:j2]) for tag, i1, i2, j1, j2 in codes if tag == "replace"]
    assert replaced == [
        ("Chapter IV", "Chapter 4"),
        ("p. 5", "page 5"),
        ("St.", "Saint"),
        ("$3.50", "three dollars and fifty cents"),
        ("1984", "nineteen eighty-four"),
    ]
    assert normalize_text("", mode="on").opcodes() == [("equal", 0, 0, 0, 0)]
    assert normalize_text("plain", mode="on").opcodes() == [("equal", 0, 5, 0, 5)]


def test_original_span_maps_spoken_words_back() -> None:
    result = normalize_text("Pay $3.50 now", mode="on")
    assert result.text == "Pay three dollars and fifty cents now"
    start = result.text.index("dollars")
    assert result.original_span(start, start + len("dollars")) == (4, 9)  # the whole "$3.50"
    now = result.text.index("now")
    assert result.original_span(now, now + 3) == (10, 13)
    assert result.original_span(0, 3) == (0, 3)
