"""Context rules: what a flush covers, what close_context cancels, end of input, settings."""

from __future__ import annotations

import pytest

from elevtts.protocol import ClientMessage, ProtocolError, VoiceSettings
from elevtts.server.context import Context, ContextSettings


def _context(schedule: tuple[int, ...] = (50,), *, auto_mode: bool = False) -> Context:
    return Context("c", ContextSettings(schedule=schedule), auto_mode=auto_mode)


def _texts(context: Context) -> list[str]:
    return [g.text for g in context.queue]


def test_flush_covers_queued_and_buffered_text() -> None:
    context = _context(auto_mode=True)
    context.receive("One sentence.")
    context.receive("Unfinished")
    context.flush()
    assert _texts(context) == ["One sentence.", " Unfinished"]
    assert all(g.covered for g in context.queue)


def test_close_without_flush_cancels_everything_uncovered() -> None:
    context = _context(auto_mode=True)
    context.receive("First sentence.")
    running = context.next_generation()
    context.receive("Second sentence.")
    context.receive("Buffered")
    cancelled = context.close()
    assert running is not None and running.cancelled
    assert [g.text for g in cancelled] == [" Second sentence.", "First sentence."]
    assert not context.queue and context.buffer.text == ""
    context.done(running)
    assert context.finished


def test_flush_then_close_keeps_the_flushed_turn() -> None:
    context = _context(auto_mode=True)
    context.receive("Spoken in full.")
    running = context.next_generation()
    context.receive("Also spoken")
    context.flush()
    context.receive("Not covered.")  # after the flush: cancelled by the close
    assert context.close() != []
    assert running is not None and running.covered and not running.cancelled
    assert _texts(context) == [" Also spoken"]
    assert not context.finished  # covered work is still to be spoken


def test_end_of_input_speaks_everything_then_finishes() -> None:
    context = _context((500,))
    context.receive("All of this ")
    context.end_of_input()
    generation = context.next_generation()
    assert generation is not None and generation.text == "All of this"
    assert not context.finished
    context.done(generation)
    assert context.finished


def test_input_after_close_is_ignored() -> None:
    context = _context()
    context.close()
    context.receive("late text " * 10)
    context.flush()
    assert context.idle and context.finished


def test_settings_may_be_repeated_but_not_changed() -> None:
    settings = ContextSettings(voice_settings=VoiceSettings(stability=0.4))
    settings.check_unchanged(ClientMessage(text="x", voice_settings=VoiceSettings(stability=0.4)), "c")
    settings.check_unchanged(ClientMessage(text="x"), "c")
    with pytest.raises(ProtocolError) as caught:
        settings.check_unchanged(ClientMessage(text="x", voice_settings=VoiceSettings(stability=0.9)), "c")
    assert "voice_settings field must be provided in the first message" in caught.value.reason
    assert caught.value.context_id == "c"
    with pytest.raises(ProtocolError):
        settings.check_unchanged(ClientMessage(text="x", schedule=(60,)), "c")


def test_settings_from_a_bare_opener_are_the_defaults() -> None:
    settings = ContextSettings.from_message(ClientMessage(text=" "))
    assert settings == ContextSettings()
