from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from elevtts.protocol import DictionaryLocator
from elevtts.server.dictionary import DictionaryStore, Lexicon, load_lexicon

HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon" '
    'alphabet="ipa" xml:lang="en-US">\n'
)


def write_pls(tmp_path: Path, name: str, lexemes: str) -> Path:
    path = tmp_path / name
    path.write_text(HEADER + lexemes + "</lexicon>\n", encoding="utf-8")
    return path


def lexeme(grapheme: str, alias: str) -> str:
    return f"<lexeme><grapheme>{grapheme}</grapheme><alias>{alias}</alias></lexeme>\n"


def test_load_lexicon_ids_and_rules(tmp_path: Path) -> None:
    path = write_pls(tmp_path, "My Tech Terms.pls", lexeme("UN", "United Nations") + lexeme("SQL", "sequel"))
    lexicon = load_lexicon(path)
    assert lexicon.dictionary_id == "my-tech-terms"
    assert lexicon.name == "My Tech Terms"
    assert lexicon.version_id == hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert lexicon.rules == (("UN", "United Nations"), ("SQL", "sequel"))


def test_version_changes_with_content(tmp_path: Path) -> None:
    first = load_lexicon(write_pls(tmp_path, "a.pls", lexeme("x", "ex")))
    second = load_lexicon(write_pls(tmp_path, "a.pls", lexeme("x", "why")))
    assert first.dictionary_id == second.dictionary_id
    assert first.version_id != second.version_id


def test_several_graphemes_share_an_alias(tmp_path: Path) -> None:
    pls = "<lexeme><grapheme>colour</grapheme><grapheme>color</grapheme><alias>kuller</alias></lexeme>"
    lexicon = load_lexicon(write_pls(tmp_path, "c.pls", pls))
    assert lexicon.apply("color and colour") == "kuller and kuller"


def test_phoneme_only_entries_are_ignored(tmp_path: Path) -> None:
    pls = (
        "<lexeme><grapheme>tomato</grapheme><phoneme>t\u0259\u02c8m\u0251\u02d0to\u028a</phoneme></lexeme>"
        + lexeme("UN", "U N")
    )
    lexicon = load_lexicon(write_pls(tmp_path, "p.pls", pls))
    assert lexicon.rules == (("UN", "U N"),)
    assert lexicon.apply("tomato at the UN") == "tomato at the U N"


def test_apply_whole_words_only() -> None:
    lexicon = Lexicon("d", "v", "d", (("cat", "kitty"),))
    assert lexicon.apply("cat, concat, cats, cat.") == "kitty, concat, cats, kitty."


def test_apply_is_case_sensitive() -> None:
    lexicon = Lexicon("d", "v", "d", (("SQL", "sequel"),))
    assert lexicon.apply("SQL sql Sql") == "sequel sql Sql"


def test_apply_longest_grapheme_first() -> None:
    lexicon = Lexicon("d", "v", "d", (("New", "Knew"), ("New York", "Big Apple")))
    assert lexicon.apply("New York is New") == "Big Apple is Knew"


def test_apply_does_not_rewrite_aliases() -> None:
    lexicon = Lexicon("d", "v", "d", (("a", "b"), ("b", "c")))
    assert lexicon.apply("a b") == "b c"


def test_apply_graphemes_with_symbols() -> None:
    lexicon = Lexicon("d", "v", "d", (("C++", "C plus plus"),))
    assert lexicon.apply("I like C++ and C++11.") == "I like C plus plus and C++11."


def test_empty_lexicon_changes_nothing() -> None:
    assert Lexicon("d", "v", "d", ()).apply("text") == "text"


def test_entity_declarations_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.pls"
    path.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE lexicon [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>\n'
        '<lexicon version="1.0"><lexeme><grapheme>x</grapheme><alias>&b;</alias></lexeme></lexicon>',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="DOCTYPE and ENTITY declarations are not allowed"):
        load_lexicon(path)


def test_utf16_doctype_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "wide.pls"
    path.write_bytes('<!DOCTYPE x><lexicon version="1.0"/>'.encode("utf-16"))
    with pytest.raises(ValueError, match="DOCTYPE"):
        load_lexicon(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("<lexicon><lexeme>", "not well-formed XML"),
        ("<notalexicon/>", "root element must be <lexicon>"),
        ("<lexicon><lexeme><alias>x</alias></lexeme></lexicon>", "lexeme 1 needs a non-empty <grapheme>"),
        (
            "<lexicon><lexeme><grapheme> </grapheme><alias>x</alias></lexeme></lexicon>",
            "non-empty <grapheme>",
        ),
    ],
)
def test_malformed_files_raise_value_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.pls"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as info:
        load_lexicon(path)
    assert "bad" in str(info.value)


def test_missing_file_raises_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read lexicon"):
        load_lexicon(tmp_path / "missing.pls")


def test_store_get_by_version_and_latest(tmp_path: Path) -> None:
    old = load_lexicon(write_pls(tmp_path, "terms.pls", lexeme("x", "old")))
    new = load_lexicon(write_pls(tmp_path, "terms.pls", lexeme("x", "new")))
    store = DictionaryStore([old, new])
    assert store.get("terms") is new
    assert store.get("terms", old.version_id) is old
    assert store.list() == [old, new]


def test_store_unknown_id_and_version_have_clear_messages() -> None:
    store = DictionaryStore([Lexicon("terms", "abc", "terms", ())])
    with pytest.raises(KeyError) as info:
        store.get("nope")
    assert info.value.args[0] == "pronunciation dictionary 'nope' not found"
    with pytest.raises(KeyError) as info:
        store.get("terms", "zzz")
    assert info.value.args[0] == "pronunciation dictionary 'terms' has no version 'zzz'"


def test_store_apply_in_locator_order() -> None:
    first = Lexicon("first", "1", "first", (("a", "b"),))
    second = Lexicon("second", "2", "second", (("b", "c"),))
    store = DictionaryStore([first, second])
    locators = [DictionaryLocator("first"), DictionaryLocator("second", "2")]
    assert store.apply("a", locators) == "c"
    assert store.apply("a", locators[::-1]) == "b"
    with pytest.raises(KeyError):
        store.apply("a", [DictionaryLocator("missing")])


# ---------------------------------------------------------------------------------------------
# Hostile files in every encoding: the parser refuses any DTD, whatever the bytes look like

ENCODINGS = {  # name -> (bytes of a document, the encoding its declaration names)
    "utf-8": lambda text: text.encode("utf-8"),
    "utf-8 BOM": lambda text: text.encode("utf-8-sig"),
    "utf-16le": lambda text: text.encode("utf-16-le"),
    "utf-16le BOM": lambda text: b"\xff\xfe" + text.encode("utf-16-le"),
    "utf-16be": lambda text: text.encode("utf-16-be"),
    "utf-16be BOM": lambda text: b"\xfe\xff" + text.encode("utf-16-be"),
    "utf-32le BOM": lambda text: b"\xff\xfe\x00\x00" + text.encode("utf-32-le"),
    "utf-32be BOM": lambda text: b"\x00\x00\xfe\xff" + text.encode("utf-32-be"),
    "utf-32le": lambda text: text.encode("utf-32-le"),
    "utf-32be": lambda text: text.encode("utf-32-be"),
}
DECLARED = {
    "utf-8": "UTF-8",
    "utf-8 BOM": "UTF-8",
    "utf-16le": "UTF-16LE",
    "utf-16le BOM": "UTF-16",
    "utf-16be": "UTF-16BE",
    "utf-16be BOM": "UTF-16",
    "utf-32le BOM": "UTF-32",
    "utf-32be BOM": "UTF-32",
    "utf-32le": "UTF-32LE",
    "utf-32be": "UTF-32BE",
}
BODY = '<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon">'
HOSTILE = {
    "billion laughs": (
        '<!DOCTYPE lexicon [<!ENTITY a "hahahahaha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>\n'
        f"{BODY}<lexeme><grapheme>x</grapheme><alias>&d;</alias></lexeme></lexicon>"
    ),
    "external entity": (
        '<!DOCTYPE lexicon [<!ENTITY secret SYSTEM "file:///etc/hostname">]>\n'
        f"{BODY}<lexeme><grapheme>x</grapheme><alias>&secret;</alias></lexeme></lexicon>"
    ),
    "external DTD": f'<!DOCTYPE lexicon SYSTEM "http://127.0.0.1:9/pls.dtd">\n{BODY}</lexicon>',
    "plain DOCTYPE": f"<!DOCTYPE lexicon>\n{BODY}</lexicon>",
}


def document(encoding: str, rest: str) -> bytes:
    return ENCODINGS[encoding](f'<?xml version="1.0" encoding="{DECLARED[encoding]}"?>\n{rest}')


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("attack", HOSTILE)
def test_hostile_lexicons_are_refused_in_every_encoding(tmp_path: Path, encoding: str, attack: str) -> None:
    path = tmp_path / "hostile.pls"
    path.write_bytes(document(encoding, HOSTILE[attack]))
    with pytest.raises(ValueError, match=r"^hostile: DOCTYPE and ENTITY declarations are not allowed"):
        load_lexicon(path)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_valid_lexicons_load_in_every_encoding(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "fine.pls"
    rest = f"{BODY}{lexeme('Zoë', 'Zoey')}{lexeme('SQL', 'sequel')}</lexicon>"
    path.write_bytes(document(encoding, rest))
    assert load_lexicon(path).rules == (("Zoë", "Zoey"), ("SQL", "sequel"))


@pytest.mark.parametrize("declared", ["UTF-16-BE", "Shift_JIS", "no-such-encoding"])
def test_an_encoding_the_parser_cannot_read_is_a_clear_error(tmp_path: Path, declared: str) -> None:
    path = tmp_path / "odd.pls"
    path.write_bytes(f'<?xml version="1.0" encoding="{declared}"?>\n{BODY}</lexicon>'.encode("utf-16-be"))
    with pytest.raises(ValueError, match=r"^odd: cannot read this lexicon \("):
        load_lexicon(path)
