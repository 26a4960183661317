"""Pronunciation dictionaries: W3C PLS lexicons applied as text aliases.

Only `<alias>` entries are applied: the engines take text, so a `<phoneme>` entry without an
alias is ignored. Files with a DOCTYPE or ENTITY declaration are refused (no entity expansion):
the parser itself (defusedxml, `forbid_dtd=True`) refuses them as it meets them, so no guess
about the encoding decides what is safe. expat reads UTF-8 and UTF-16 (with or without a BOM,
from the declaration); UTF-32, which expat lacks, is recognised by the XML spec's Appendix F
signatures and decoded first.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from elevtts.protocol import DictionaryLocator

PLS_NAMESPACE = "http://www.w3.org/2005/01/pronunciation-lexicon"
_UTF32_SIGNATURES = (  # XML 1.0 Appendix F: a BOM, or "<" in four bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
)


@dataclass(frozen=True)
class Lexicon:
    """One loaded lexicon: `rules` are (grapheme, alias) pairs in file order."""

    dictionary_id: str
    version_id: str
    name: str
    rules: tuple[tuple[str, str], ...]

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        graphemes = sorted({g for g, _ in self.rules}, key=len, reverse=True)
        if not graphemes:
            return None
        return re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, graphemes)) + r")(?!\w)")

    @cached_property
    def _aliases(self) -> dict[str, str]:
        aliases: dict[str, str] = {}
        for grapheme, alias in self.rules:
            aliases.setdefault(grapheme, alias)  # the first entry for a grapheme wins
        return aliases

    def apply(self, text: str) -> str:
        """Replace whole-word, case-sensitive grapheme matches by their alias, longest first.

        One pass: an alias is never replaced again.
        """
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: self._aliases[m.group()], text)


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64].strip("-")
    return slug or "dictionary"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _utf32_text(data: bytes) -> str | bytes:
    """UTF-32 decoded to text (expat cannot read it); any other bytes as they are."""
    for signature, encoding in _UTF32_SIGNATURES:
        if data.startswith(signature):
            return data.decode(encoding).removeprefix("\ufeff")
    return data


def parse_lexicon(data: bytes, *, name: str) -> Lexicon:
    """Parse PLS bytes; `name` gives the id (a slug of it). `ValueError` if malformed."""
    try:
        root = fromstring(_utf32_text(data), forbid_dtd=True)
    except DefusedXmlException:
        raise ValueError(f"{name}: DOCTYPE and ENTITY declarations are not allowed in a lexicon") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name}: not valid UTF-32 ({exc.reason})") from None
    except ET.ParseError as exc:
        raise ValueError(f"{name}: not well-formed XML ({exc})") from None
    except (ValueError, LookupError) as exc:  # pyexpat: a declared encoding it cannot read
        raise ValueError(f"{name}: cannot read this lexicon ({exc})") from None
    if _local(root.tag) != "lexicon":
        raise ValueError(f"{name}: the root element must be <lexicon>, not <{_local(root.tag)}>")
    rules: list[tuple[str, str]] = []
    for number, lexeme in enumerate((e for e in root if _local(e.tag) == "lexeme"), start=1):
        graphemes = [(e.text or "").strip() for e in lexeme if _local(e.tag) == "grapheme"]
        aliases = [(e.text or "").strip() for e in lexeme if _local(e.tag) == "alias"]
        if not graphemes or not all(graphemes):
            raise ValueError(f"{name}: lexeme {number} needs a non-empty <grapheme>")
        if aliases:
            rules += [(grapheme, aliases[0]) for grapheme in graphemes]
    return Lexicon(
        dictionary_id=_slug(name),
        version_id=hashlib.sha256(data).hexdigest()[:12],
        name=name,
        rules=tuple(rules),
    )


def load_lexicon(path: Path) -> Lexicon:
    """Load a .pls file: id from the file name (slug), version from the content's sha256."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read lexicon {path}: {exc.strerror}") from None
    return parse_lexicon(data, name=Path(path).stem)


class DictionaryStore:
    """Lexicons by id and version; `get` without a version gives the latest added."""

    def __init__(self, lexicons: Iterable[Lexicon] = ()) -> None:
        self._versions: dict[str, dict[str, Lexicon]] = {}
        for lexicon in lexicons:
            self.add(lexicon)

    def add(self, lexicon: Lexicon) -> None:
        versions = self._versions.setdefault(lexicon.dictionary_id, {})
        versions.pop(lexicon.version_id, None)  # re-adding makes it the latest again
        versions[lexicon.version_id] = lexicon

    def get(self, dictionary_id: str, version_id: str | None = None) -> Lexicon:
        """The lexicon; `KeyError` whose first argument is a readable message."""
        versions = self._versions.get(dictionary_id)
        if not versions:
            raise KeyError(f"pronunciation dictionary {dictionary_id!r} not found")
        if version_id is None:
            return next(reversed(versions.values()))
        if version_id not in versions:
            raise KeyError(f"pronunciation dictionary {dictionary_id!r} has no version {version_id!r}")
        return versions[version_id]

    def list(self) -> list[Lexicon]:
        """Every stored lexicon version, in the order added."""
        return [lexicon for versions in self._versions.values() for lexicon in versions.values()]

    def apply(self, text: str, locators: Iterable[DictionaryLocator]) -> str:
        """Apply the located lexicons in order (`KeyError` for an unknown one)."""
        for lexicon in [self.get(loc.pronunciation_dictionary_id, loc.version_id) for loc in locators]:
            text = lexicon.apply(text)
        return text
