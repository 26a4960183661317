"""Text normalization: read numbers, money, Roman numerals and abbreviations as a listener
expects, with a map back to the original characters. Pure.

The engines' own text handling reads `Chapter IV` as "chapter Roman four", `$3.50` as "dollar
three point five zero", `10-12` as "ten dash twelve" and every `St.` as "saint". Each rule below
rewrites one such pattern; the rest of the text is left as it is. English only: the protocol's
`apply_text_normalization` is `auto` (English or unspecified language only), `on` (always) or
`off` (never).

`Normalized.opcodes()` has the shape of `difflib.SequenceMatcher(None, original, spoken)
.get_opcodes()`, which `elevtts.server.remap` computes for dictionary aliases, so alignments of
the spoken text can be carried back to the original characters without guessing.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass

MODES = ("auto", "on", "off")

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_ENDINGS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                    "nine": "ninth", "twelve": "twelfth"}  # fmt: skip


def cardinal(number: int) -> str:
    """`number` in words, American style: 105 -> "one hundred five"."""
    if number < 0:
        return "minus " + cardinal(-number)
    if number < 20:
        return _ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {cardinal(rest)}" if rest else "")
    for scale, name in _SCALES:
        if number >= scale:
            high, rest = divmod(number, scale)
            return f"{cardinal(high)} {name}" + (f" {cardinal(rest)}" if rest else "")
    raise AssertionError("unreachable")


def ordinal(number: int) -> str:
    """21 -> "twenty-first"."""
    words = cardinal(number)
    head, separator, last = words.rpartition("-" if "-" in words.rsplit(" ", 1)[-1] else " ")
    if last in _ORDINAL_ENDINGS:
        last = _ORDINAL_ENDINGS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + separator + last


def year(number: int) -> str:
    """1984 -> "nineteen eighty-four", 1905 -> "nineteen oh five", 2007 -> "two thousand seven",
    1066 -> "ten sixty-six"."""
    if not 1010 <= number <= 2099 or 2000 <= number <= 2009:
        return cardinal(number)
    century, rest = divmod(number, 100)
    if rest == 0:
        return f"{cardinal(century)} hundred"
    return f"{cardinal(century)} {'oh ' + _ONES[rest] if rest < 10 else cardinal(rest)}"


def decimal(digits: str) -> str:
    """ "2.5" -> "two point five"; thousands separators ignored."""
    whole, _, fraction = digits.replace(",", "").partition(".")
    words = cardinal(int(whole or "0"))
    return words + (" point " + " ".join(_ONES[int(d)] for d in fraction) if fraction else "")


def _plural(word: str, count_is_one: bool) -> str:
    return word if count_is_one else word + ("" if word.endswith("s") else "s")


# --- the rules: each turns one match into what should be read (None: leave it) --------------

_CURRENCIES = {
    "$": ("dollar", "cent", "cents"),
    "£": ("pound", "penny", "pence"),
    "€": ("euro", "cent", "cents"),
}
_CURRENCY = re.compile(r"([$£€])\s?(\d[\d,]*)(?:\.(\d+))?(?:\s?(thousand|million|billion|trillion)\b)?")


def _currency(match: re.Match[str], _text: str) -> str | None:
    symbol, whole, fraction, scale = _CURRENCY.fullmatch(match.group()).groups()  # type: ignore[union-attr]
    unit, cent, cents = _CURRENCIES[symbol]
    if scale:  # "$2.5 million" -> "two point five million dollars"
        amount = decimal(whole + (f".{fraction}" if fraction else ""))
        return f"{amount} {scale} {unit}s"
    units = int(whole.replace(",", ""))
    hundredths = int((fraction or "0")[:2].ljust(2, "0"))
    parts = []
    if units or not hundredths:
        parts.append(f"{cardinal(units)} {_plural(unit, units == 1)}")
    if hundredths:
        parts.append(f"{cardinal(hundredths)} {cent if hundredths == 1 else cents}")
    return " and ".join(parts)


_TIME = re.compile(r"(\d{1,2}):(\d{2})(?:\s?([AaPp])\.?\s?[Mm]\.?(?![A-Za-z]))?")


def _time(match: re.Match[str], _text: str) -> str | None:
    hours, minutes, half = _TIME.fullmatch(match.group()).groups()  # type: ignore[union-attr]
    h, m = int(hours), int(minutes)
    if h > 24 or m > 59:
        return None
    if m == 0:
        spoken = f"{cardinal(h)} o'clock" if half or h <= 12 else f"{cardinal(h)} hundred"
    else:
        spoken = f"{cardinal(h)} {'oh ' + _ONES[m] if m < 10 else cardinal(m)}"
    return spoken + (f" {half.lower()} m" if half else "")


def _percent(match: re.Match[str], _text: str) -> str | None:
    return decimal(match.group().rstrip("% ")) + " percent"


def _ordinal(match: re.Match[str], _text: str) -> str | None:
    digits = match.group()[:-2]
    suffix = match.group()[-2:].lower()
    expected = (
        "th" if 10 <= int(digits) % 100 <= 20 else {"1": "st", "2": "nd", "3": "rd"}.get(digits[-1], "th")
    )
    return ordinal(int(digits)) if suffix == expected else None


def _as_read(digits: str) -> str:
    """A bare number as a listener expects: year-like ones as years, others as written."""
    number = int(digits)
    return year(number) if len(digits) == 4 and 1100 <= number <= 2099 else digits


_PAGES = re.compile(r"(pp?)\.\s?(\d+)(?:\s?[-\u2013]\s?(\d+))?")


def _pages(match: re.Match[str], _text: str) -> str | None:
    abbreviation, first, last = _PAGES.fullmatch(match.group()).groups()  # type: ignore[union-attr]
    if last:
        return f"pages {first} to {last}"
    return f"{'pages' if abbreviation == 'pp' else 'page'} {first}"


_RANGE = re.compile(r"(\d{1,4})\s?[-\u2013]\s?(\d{1,4})")


def _range(match: re.Match[str], _text: str) -> str | None:
    first, last = _RANGE.fullmatch(match.group()).groups()  # type: ignore[union-attr]
    if int(first) >= int(last):
        return None  # a score (3-2) or an abbreviated range (1914-18): not "to"
    return f"{_as_read(first)} to {_as_read(last)}"


_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
_ROMAN = re.compile(r"M{0,3}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})")


def roman(numeral: str) -> int | None:
    """The value of a well-formed upper-case Roman numeral, else None."""
    if not numeral or not _ROMAN.fullmatch(numeral):
        return None
    values = [_ROMAN_VALUES[c] for c in numeral]
    return sum(-v if i + 1 < len(values) and v < values[i + 1] else v for i, v in enumerate(values))


def _division(match: re.Match[str], _text: str) -> str | None:
    word, numeral = match.group().split()
    value = roman(numeral.upper() if word.isupper() else numeral)
    return f"{word} {value}" if value else None


_REGNAL_NAMES = [
    "Alexander",
    "Alfonso",
    "Amenhotep",
    "Benedict",
    "Boniface",
    "Catherine",
    "Charles",
    "Clement",
    "Constantine",
    "Edward",
    "Elizabeth",
    "Ferdinand",
    "Francis",
    "Frederick",
    "George",
    "Gregory",
    "Gustav",
    "Henry",
    "Innocent",
    "James",
    "John",
    "Leo",
    "Louis",
    "Mary",
    "Napoleon",
    "Nicholas",
    "Paul",
    "Peter",
    "Philip",
    "Pius",
    "Ptolemy",
    "Ramesses",
    "Richard",
    "Rudolf",
    "Sixtus",
    "Stephen",
    "Urban",
    "Victor",
    "Wilhelm",
    "William",
]


def _regnal(match: re.Match[str], _text: str) -> str | None:
    name, numeral = match.group().split()
    value = roman(numeral)
    return f"{name} the {ordinal(value).capitalize()}" if value else None


def _saint_or_street(match: re.Match[str], text: str) -> str | None:
    after = text[match.end() : match.end() + 3]  # windows, not copies of the whole text
    before = text[max(0, match.start() - 80) : match.start()]
    # "42 Baker St." is an address; "St. Paul" a saint; "Baker St. is" or "St.," a street
    if re.search(r"\d+[a-z]{0,2}\s+(?:[A-Z][\w'-]*\s+)+$", before):
        return "Street"
    return "Saint" if re.match(r"\s+[A-Z]", after) else "Street"


_UNITS = {
    "km": "kilometer", "m": "meter", "cm": "centimeter", "mm": "millimeter", "kg": "kilogram",
    "g": "gram", "mg": "milligram", "lb": "pound", "lbs": "pound", "oz": "ounce", "ft": "foot",
    "mi": "mile", "mph": "miles per hour", "km/h": "kilometers per hour", "kph": "kilometers per hour",
    "ml": "milliliter", "l": "liter", "°C": "degrees Celsius", "°F": "degrees Fahrenheit",
    "Hz": "hertz", "kHz": "kilohertz", "MB": "megabyte", "GB": "gigabyte", "TB": "terabyte",
}  # fmt: skip
_UNIT = re.compile(
    r"(\d[\d,]*(?:\.\d+)?)\s?(" + "|".join(sorted(map(re.escape, _UNITS), key=len, reverse=True)) + ")"
)


def _unit(match: re.Match[str], _text: str) -> str | None:
    amount, unit = _UNIT.fullmatch(match.group()).groups()  # type: ignore[union-attr]
    word = _UNITS[unit]
    one = amount == "1"
    if " " in word:  # "miles per hour", "degrees Celsius"
        return f"{amount} {word}"
    return f"{amount} {'feet' if word == 'foot' and not one else _plural(word, one)}"


def _year(match: re.Match[str], _text: str) -> str | None:
    digits, plural = match.group()[:4], match.group()[4:]
    words = year(int(digits))
    if plural:  # "1980s" -> "nineteen eighties"
        words = words[:-1] + "ies" if words.endswith("y") else words + "s"
    return words


_Rule = Callable[[re.Match[str], str], "str | None"]
# Order matters where two rules match at one place: the first listed wins.
_RULES: tuple[tuple[str, str, _Rule], ...] = (
    ("currency", _CURRENCY.pattern, _currency),
    ("time", r"(?<![\d:])" + _TIME.pattern + r"(?![\d:])", _time),
    ("percent", r"(?<![\d.])\d[\d,]*(?:\.\d+)?\s?%", _percent),
    ("ordinal", r"\b\d+(?:st|nd|rd|th|ST|ND|RD|TH)\b", _ordinal),
    ("pages", r"\b" + _PAGES.pattern + r"\b(?![-\u2013.,/]\d)", _pages),
    ("unit", r"(?<![\w.,])" + _UNIT.pattern + r"(?![\w/])", _unit),
    ("range", r"(?<![\w.,:/\u2013-])" + _RANGE.pattern + r"(?![\w.,:/\u2013-]\d|[\w\u2013-])", _range),
    (
        "division",
        r"\b(?:Chapter|CHAPTER|Part|PART|Book|BOOK|Volume|VOLUME)\s+[IVXLCDM]+\b(?!['\u2019]\w)",
        _division,
    ),
    ("regnal", r"\b(?:" + "|".join(_REGNAL_NAMES) + r")\s+[IVXL]+\b(?!['\u2019]\w)", _regnal),
    ("saint_or_street", r"\bSt\.(?=\s|,|;|$)", _saint_or_street),
    ("year", r"(?<![\w$£€.,:/-])(?:1[1-9]\d\d|20\d\d)(?:s\b)?(?![\w%]|[.,:/-]\d)", _year),
)
_PATTERN = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern, _ in _RULES))
_HANDLERS = {name: handler for name, _, handler in _RULES}


@dataclass(frozen=True)
class Replacement:
    """`original[start:end]` is read as `text[text_start:text_end]`."""

    start: int
    end: int
    text_start: int
    text_end: int


@dataclass(frozen=True)
class Normalized:
    original: str
    text: str
    replacements: tuple[Replacement, ...]  # in order, not overlapping

    def opcodes(self) -> list[tuple[str, int, int, int, int]]:
        """`difflib.SequenceMatcher(None, original, text).get_opcodes()`'s shape, exact."""
        codes: list[tuple[str, int, int, int, int]] = []
        i = j = 0
        for r in self.replacements:
            if r.start > i:
                codes.append(("equal", i, r.start, j, r.text_start))
            codes.append(("replace", r.start, r.end, r.text_start, r.text_end))
            i, j = r.end, r.text_end
        if i < len(self.original) or not codes:
            codes.append(("equal", i, len(self.original), j, len(self.text)))
        return codes

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The original characters that `text[start:end]` was read from (a replacement whole)."""
        return self._to_original(start, at_end=False), self._to_original(end, at_end=True)

    def _to_original(self, position: int, *, at_end: bool) -> int:
        index = bisect_right([r.text_start for r in self.replacements], position) - 1
        if index < 0:
            return position
        r = self.replacements[index]
        if position >= r.text_end or (at_end and position == r.text_start):
            return r.end + (position - r.text_end) if position >= r.text_end else r.start
        return r.end if at_end else r.start


def normalize_text(text: str, *, mode: str = "auto", language: str = "") -> Normalized:
    """`text` as it should be read, with a map back; `mode` as `apply_text_normalization`.

    `auto` normalizes English or unspecified-language text only (the rules are English)."""
    if mode not in MODES:
        raise ValueError(f"apply_text_normalization must be auto, on or off, not {mode!r}")
    english = not language or language.lower() == "en" or language.lower().startswith("en-")
    if mode == "off" or (mode == "auto" and not english):
        return Normalized(text, text, ())
    pieces: list[str] = []
    replacements: list[Replacement] = []
    copied = out_length = 0
    for match in _PATTERN.finditer(text):
        spoken = _HANDLERS[match.lastgroup or ""](match, text)
        if spoken is None or spoken == match.group():
            continue
        pieces.append(text[copied : match.start()])
        out_length += match.start() - copied
        replacements.append(Replacement(match.start(), match.end(), out_length, out_length + len(spoken)))
        pieces.append(spoken)
        out_length += len(spoken)
        copied = match.end()
    pieces.append(text[copied:])
    return Normalized(text, "".join(pieces), tuple(replacements))
