"""Buffering rules: schedule thresholds, word boundaries, flush, try_trigger, auto_mode."""

from __future__ import annotations

from elevtts.server.buffer import TextBuffer


def test_nothing_is_generated_below_the_first_threshold() -> None:
    buffer = TextBuffer((120, 160))
    assert buffer.add("Hello world. " * 9) == []  # 117 characters
    assert buffer.has_speech


def test_reaching_the_threshold_generates_up_to_the_last_complete_word() -> None:
    buffer = TextBuffer((50, 100))
    ready = buffer.add("The quick brown fox jumps over the lazy dog and then some mo")
    assert ready == ["The quick brown fox jumps over the lazy dog and then some"]
    assert buffer.text == " mo"  # the unfinished word waits, with its separating space


def test_schedule_steps_advance_and_the_last_one_repeats() -> None:
    buffer = TextBuffer((50, 60))
    word = "abcd "  # 5 characters
    sizes = []
    for _ in range(60):
        for text in buffer.add(word):
            sizes.append(len(text.strip()))
    # first cut at >= 50 characters, then every cut at >= 60 (the last step repeats)
    assert sizes[0] >= 49 and all(s >= 59 for s in sizes[1:])
    assert len(sizes) >= 4


def test_never_cuts_inside_a_word() -> None:
    buffer = TextBuffer((50,))
    words = [f"word{i}" for i in range(40)] + ["supercalifragilisticexpialidocious"] * 3
    out = []
    for i in range(0, len(words), 3):  # messages of whole words, each ending with a space
        out += buffer.add(" ".join(words[i : i + 3]) + " ")
    out += buffer.flush()
    assert len(out) > 3
    assert " ".join(out).split() == words


def test_flush_generates_everything_even_below_threshold() -> None:
    buffer = TextBuffer((120,))
    buffer.add("Short. ")
    assert buffer.flush() == ["Short."]
    assert not buffer.has_speech


def test_flush_generates_an_unfinished_last_word() -> None:
    buffer = TextBuffer((120,))
    buffer.add("Hello wor")
    assert buffer.flush() == ["Hello wor"]


def test_flush_of_an_empty_buffer_generates_nothing() -> None:
    buffer = TextBuffer()
    buffer.add(" ")
    assert buffer.flush() == []


def test_leading_space_of_the_first_message_is_dropped() -> None:
    buffer = TextBuffer((50,))
    buffer.add(" ")
    buffer.add(" Hello there. ")
    assert buffer.flush() == ["Hello there."]


def test_messages_without_trailing_space_keep_a_word_boundary() -> None:
    buffer = TextBuffer((500,))
    buffer.add("Hello there.")
    buffer.add("How are you?")
    assert buffer.flush() == ["Hello there. How are you?"]


def test_a_later_generation_starts_with_its_separating_space() -> None:
    buffer = TextBuffer((500,))
    buffer.add("First part.")
    assert buffer.flush() == ["First part."]
    buffer.add("Second part.")
    assert buffer.flush() == [" Second part."]


def test_try_trigger_generates_early_above_the_minimum() -> None:
    buffer = TextBuffer((300,))
    assert buffer.add("Too short to trigger. ", try_trigger=True) == []
    ready = buffer.add("This message takes the buffer past fifty characters. ", try_trigger=True)
    assert ready and ready[0].startswith("Too short")


def test_auto_mode_generates_each_complete_sentence_without_schedule() -> None:
    buffer = TextBuffer((500,), auto_mode=True)
    assert buffer.add("Hi.") == ["Hi."]  # a sentence-ending message is complete on arrival
    assert buffer.add("How are") == []
    assert buffer.add("you today? And th") == [" How are you today?"]
    assert buffer.text == " And th"


def test_auto_mode_waits_on_an_abbreviation_at_the_end() -> None:
    buffer = TextBuffer((500,), auto_mode=True)
    assert buffer.add("I met Dr.") == []
    assert buffer.add("Smith today.") == ["I met Dr. Smith today."]


def test_auto_mode_cuts_a_run_on_sentence_at_the_longest_step() -> None:
    buffer = TextBuffer((50, 100), auto_mode=True)
    ready = buffer.add("word " * 30)  # 150 characters, no sentence end
    assert ready and len(ready[0]) <= 150


def test_clear_drops_the_buffer() -> None:
    buffer = TextBuffer()
    buffer.add("unsent words ")
    assert buffer.clear() == "unsent words "
    assert buffer.flush() == []
