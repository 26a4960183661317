"""A context: one stream of text and its audio, with its settings, buffer and queue of generations.

Pure. The single-stream endpoint is one context that ends on `{"text": ""}`; the multi-context
endpoint holds up to five. The rules that matter when a context is closed live here:

- a flush covers everything received before it (queued or buffered): that is spoken in full;
- `close_context` cancels what no flush covers (queued by the schedule or `auto_mode`, and the
  unflushed buffer), so a barge-in stops at once, while a flushed turn is finished.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from elevtts.protocol import (
    DEFAULT_SCHEDULE,
    VOICE_SETTINGS_CHANGED,
    ClientMessage,
    DictionaryLocator,
    ProtocolError,
    VoiceSettings,
)
from elevtts.server.buffer import TextBuffer


@dataclass(frozen=True)
class ContextSettings:
    """What the first message of a context fixes for its lifetime."""

    voice_settings: VoiceSettings = field(default_factory=VoiceSettings)
    schedule: tuple[int, ...] = DEFAULT_SCHEDULE
    dictionary_locators: tuple[DictionaryLocator, ...] = ()

    @classmethod
    def from_message(cls, message: ClientMessage) -> ContextSettings:
        return cls(
            voice_settings=message.voice_settings or VoiceSettings(),
            schedule=message.schedule or DEFAULT_SCHEDULE,
            dictionary_locators=message.dictionary_locators or (),
        )

    def check_unchanged(self, message: ClientMessage, context_id: str | None) -> None:
        """Later messages may omit the settings or repeat them, never change them."""
        if message.voice_settings is not None and message.voice_settings != self.voice_settings:
            raise ProtocolError("invalid_input_message", VOICE_SETTINGS_CHANGED, context_id=context_id)
        if message.schedule is not None and message.schedule != self.schedule:
            raise ProtocolError(
                "invalid_input_message",
                "generation_config must be provided in the first message and then either be "
                "not provided or not change.",
                context_id=context_id,
            )


def is_keepalive(message: ClientMessage) -> bool:
    """Empty text and nothing else: it only resets a context's inactivity clock (multi-context).

    It never opens a context: pipecat sends one for a context whose audio it is still playing,
    which the server may have finished already.
    """
    return (
        not message.text
        and not message.flush
        and not message.close_context
        and message.voice_settings is None
        and message.schedule is None
        and not message.dictionary_locators
    )


@dataclass(eq=False)
class Generation:
    """A piece of buffered text handed to the engine."""

    text: str
    covered: bool = False  # by a flush or the end of input: spoken even if the context is closed
    cancelled: bool = False


class Context:
    def __init__(self, context_id: str | None, settings: ContextSettings, *, auto_mode: bool) -> None:
        self.id = context_id
        self.settings = settings
        self.buffer = TextBuffer(settings.schedule, auto_mode=auto_mode)
        self.queue: deque[Generation] = deque()
        self.current: Generation | None = None
        self.closing = False  # no more input will be taken

    def receive(self, text: str, *, try_trigger: bool = False) -> None:
        if self.closing:
            return
        self.queue.extend(Generation(t) for t in self.buffer.add(text, try_trigger=try_trigger))

    def flush(self) -> None:
        """Generate everything buffered; all of it, and everything queued, is now covered."""
        if self.closing:
            return
        self.queue.extend(Generation(t) for t in self.buffer.flush())
        for generation in self.queue:
            generation.covered = True
        if self.current is not None:
            self.current.covered = True

    def end_of_input(self) -> None:
        """Single stream `{"text": ""}`, or `close_socket`: speak everything, then finish."""
        self.flush()
        self.closing = True

    def close(self) -> list[Generation]:
        """`close_context`: keep covered work, cancel the rest. Returns the cancelled generations."""
        if self.closing:
            return []
        self.buffer.clear()
        cancelled = [g for g in self.queue if not g.covered]
        if self.current is not None and not self.current.covered:
            cancelled.append(self.current)
        for generation in cancelled:
            generation.cancelled = True
        self.queue = deque(g for g in self.queue if g.covered)
        self.closing = True
        return cancelled

    def next_generation(self) -> Generation | None:
        """Take the next generation to synthesize (the worker calls `done` when it is through)."""
        self.current = self.queue.popleft() if self.queue else None
        return self.current

    def done(self, generation: Generation) -> None:
        if self.current is generation:
            self.current = None

    @property
    def idle(self) -> bool:
        return not self.queue and self.current is None

    @property
    def finished(self) -> bool:
        """Closed and nothing left to speak: time for `isFinal`."""
        return self.closing and self.idle
