from __future__ import annotations

import random

import pytest

from elevtts.markdown import MarkdownStripper, strip_markdown, strip_markdown_document


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("a *b* c", "a b c"),
        ("a **b** c", "a b c"),
        ("a ***b*** c", "a b c"),
        ("a _b_ c", "a b c"),
        ("a __b__ c", "a b c"),
        ("a ~~b~~ c", "a b c"),
        ("**bold *and italic* too**", "bold and italic too"),
    ],
)
def test_emphasis_markers_removed(source: str, expected: str) -> None:
    assert strip_markdown(source) == expected


def test_underscores_inside_words_and_lone_asterisks_stay() -> None:
    assert strip_markdown("use snake_case_name here") == "use snake_case_name here"
    assert strip_markdown("2 * 3 * 4 = 24") == "2 * 3 * 4 = 24"


def test_inline_code_keeps_its_text_verbatim() -> None:
    assert strip_markdown("run `pip install x` now") == "run pip install x now"
    assert strip_markdown("see ``a `b` c`` and `*x*`") == "see a `b` c and *x*"


def test_fenced_code_block_dropped() -> None:
    text = "Before:\n```python\nprint('*hi*')\n```\nAfter."
    assert strip_markdown(text) == "Before:\n\nAfter."
    assert strip_markdown("A\n~~~\ncode\n~~~\nB") == "A\n\nB"


def test_fence_must_match_to_close() -> None:
    assert strip_markdown("````\n```\nstill code\n````\nout") == "\nout"


def test_unclosed_fence_drops_the_rest() -> None:
    assert strip_markdown("Text\n```\ncode\nmore") == "Text\n"


def test_heading_marker_removed_and_ended_as_sentence() -> None:
    assert strip_markdown("# Title\nBody") == "Title.\nBody"
    assert strip_markdown("### Why? ###\n") == "Why?\n"
    assert strip_markdown("#hashtag") == "#hashtag"


@pytest.mark.parametrize("marker", ["-", "*", "+", "•", "1.", "12)"])
def test_list_markers_removed(marker: str) -> None:
    assert strip_markdown(f"{marker} milk\n") == "milk.\n"


def test_task_list_checkbox_removed() -> None:
    assert strip_markdown("- [ ] todo\n- [x] done") == "todo.\ndone."


def test_nested_list_item() -> None:
    assert strip_markdown("  - inner, item!") == "inner, item!"


def test_blockquote_marker_removed() -> None:
    assert strip_markdown("> quoted\n>> deeper\n> - item") == "quoted\ndeeper\nitem."


def test_links_and_images() -> None:
    assert strip_markdown("[the docs](https://x.y/a_b) and ![a cat](cat.png)") == "the docs and a cat"
    assert strip_markdown("[text][ref] and note[^1]") == "text and note"
    assert strip_markdown("<https://example.com/x>") == "https://example.com/x"


def test_reference_definitions_dropped() -> None:
    assert strip_markdown("See [a][1].\n[1]: https://x.y\n") == "See a.\n"


def test_html_tags_removed() -> None:
    assert strip_markdown("<b>bold</b> and<br/>next <!-- hidden -->end") == "bold and next end"
    assert strip_markdown("a < b and c > d") == "a < b and c > d"


@pytest.mark.parametrize("rule", ["---", "***", "___", "- - -", "* * *"])
def test_horizontal_rules_become_blank_lines(rule: str) -> None:
    assert strip_markdown(f"A\n{rule}\nB") == "A\n\nB"


def test_table_rows_become_sentences() -> None:
    table = "| Name | Age |\n|:-----|----:|\n| **Bob** | 42 |\n"
    assert strip_markdown(table) == "Name, Age.\nBob, 42.\n"


def test_escapes_are_literal() -> None:
    assert strip_markdown(r"\*not emphasis\* and \# nope") == "*not emphasis* and # nope"


def test_plain_text_unchanged() -> None:
    text = "Hello there. This is plain, with (parentheses) and 3.14!\n\nNew paragraph."
    assert strip_markdown(text) == text


# -- incremental ---------------------------------------------------------------------------

DOCUMENT = """# Plan

Here is **the plan**, with `code` and a [link](https://x.y).
- first *item*
- second item

```sh
rm -rf *
```
| a | b |
|---|---|
| 1 | 2 |
> Quote with _emphasis_ here
A long plain paragraph that goes on, with some *stressed words* and more words after them.
Done"""


def test_feed_holds_a_partial_line() -> None:
    stripper = MarkdownStripper()
    assert stripper.feed("# Tit") == ""
    assert stripper.feed("le\n- it") == "Title.\n"
    assert stripper.flush() == "it."


def test_code_fence_state_carries_across_feeds() -> None:
    stripper = MarkdownStripper()
    assert stripper.feed("```\n") == ""
    assert stripper.feed("secret *code*\n") == ""
    assert stripper.feed("```\nvisible\n") == "\nvisible\n"


def test_plain_lines_stream_before_their_newline() -> None:
    stripper = MarkdownStripper()
    assert stripper.feed("Hello **big** wor") == "Hello big "
    assert stripper.feed("ld and *more") == "world and "
    assert stripper.feed(" words* end\n") == "more words end\n"


def test_open_construct_is_held() -> None:
    stripper = MarkdownStripper()
    assert stripper.feed("See [the") == "See "
    assert stripper.feed(" docs](http") == ""
    assert stripper.feed("://x.y) now") == "the docs "
    assert stripper.flush() == "now"


def test_any_fragmentation_gives_the_same_text() -> None:
    expected = strip_markdown(DOCUMENT)
    assert "*" not in expected and "#" not in expected and "rm -rf" not in expected
    rng = random.Random(7)
    for _ in range(200):
        stripper = MarkdownStripper()
        out = []
        pos = 0
        while pos < len(DOCUMENT):
            size = rng.choice([1, 2, 3, 7, 20])
            out.append(stripper.feed(DOCUMENT[pos : pos + size]))
            pos += size
        out.append(stripper.flush())
        assert "".join(out) == expected


# -- parentheses in link URLs (issue 10 item 6) ------------------------------------------------


@pytest.mark.parametrize("strip", [strip_markdown, strip_markdown_document])
def test_link_url_with_parentheses_leaves_nothing_spoken(strip: object) -> None:
    assert callable(strip)
    source = "See [the docs](https://en.wikipedia.org/wiki/Foo_(bar)) now."
    assert strip(source).strip() == "See the docs now."
    image = "A ![cat (sitting)](https://x.y/cat_(1).png) here."
    assert strip(image).strip() == "A cat (sitting) here."
    titled = '[a](https://x.y/a_(b) "Title") b'
    assert strip(titled).strip() == "a b"


# -- whole documents through markdown-it-py ----------------------------------------------------

FULL = """# Getting **started**

Install it with `pip`, then read [the guide](https://x.y/guide_(v2)).
Second line of the *same* paragraph.

```python
print("never spoken")
```

    indented code, never spoken

- first *item*
- second item with <b>html</b>

1. numbered
2. list

> A quote.

<div>raw html block</div>

| Name | Age |
|------|----:|
| **Bob** | 42 |

![diagram](d.png) and a ~~struck~~ word.

---
Setext heading
==============
End
"""


def test_document_speaks_the_words_and_no_markup() -> None:
    spoken = strip_markdown_document(FULL)
    for never in ("#", "**", "`", "https", "x.y", "print", "indented code", "<", ">", "|", "~~", "raw html"):
        assert never not in spoken, never
    paragraphs = [p.strip() for p in spoken.split("\n\n") if p.strip()]
    assert paragraphs == [
        "Getting started.",
        "Install it with pip, then read the guide.\nSecond line of the same paragraph.",
        "first item.\nsecond item with html.",
        "numbered.\nlist.",
        "A quote.",
        "Name, Age.\nBob, 42.",
        "diagram and a struck word.",
        "Setext heading.",
        "End",
    ]


def test_document_and_stream_agree_on_plain_prose() -> None:
    text = "Hello there. This is plain, with (parentheses) and 3.14!\n\nNew paragraph."
    assert strip_markdown_document(text).strip() == strip_markdown(text).strip()


def test_empty_document() -> None:
    assert strip_markdown_document("") == ""
    assert strip_markdown_document("```\ncode only\n```\n").strip() == ""


@pytest.mark.parametrize("strip", [strip_markdown, strip_markdown_document])
def test_break_tags_survive_while_other_html_goes(strip: object) -> None:
    assert callable(strip)
    source = 'Wait <break time="1.5s"/> for <b>it</b>.\n\n<break time="2s" />\n\nDone.'
    spoken = strip(source)
    assert spoken.count('<break time="1.5s"/>') == 1
    assert spoken.count('<break time="2s" />') == 1
    assert "<b>" not in spoken
