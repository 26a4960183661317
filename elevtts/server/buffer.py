"""When buffered text becomes a generation: the chunk_length_schedule, flush, auto_mode, end of input.

Pure: fed text, returns the texts to synthesize now. Cuts only at word boundaries: the text
handed out ends at the end of a word, and the whitespace and any unfinished word stay buffered,
so a later generation starts with the space that separates it from the previous one.
"""

from __future__ import annotations

from elevtts.breaks import Pause, split_breaks, unfinished_tag_start
from elevtts.chunking import complete_sentences_end
from elevtts.protocol import DEFAULT_SCHEDULE, SCHEDULE_MIN
from elevtts.sentences import words

# try_trigger_generation generates early once this much text is buffered.
TRY_TRIGGER_MIN_CHARS = SCHEDULE_MIN


def _last_word_end(text: str, *, final: bool) -> int:
    """Index just after the last token that is known to be complete.

    A token is complete when something follows it (whitespace, or in Chinese and Japanese the
    next token after a full-width comma or stop: `sentences.WORD`), or at the end when `final`.
    """
    tokens = words(text)
    if not tokens:
        return 0
    if final or tokens[-1].end() < len(text):
        return tokens[-1].end()
    # The tail is a token still being typed: cut before it.
    return tokens[-2].end() if len(tokens) > 1 else 0


def tag_at(text: str, cut: int) -> Pause | None:
    """The break tag that a cut at `cut` would split (`<break` before it, its `>` after), or None."""
    if "<" not in text[:cut]:
        return None  # the common case: no tag can start before the cut
    for segment in split_breaks(text):
        if isinstance(segment, Pause) and segment.start < cut < segment.end:
            return segment
    return None


def _before_tags(text: str, end: int) -> int:
    """`end`, moved back so that no break tag is cut: neither a complete one nor one whose end
    has not arrived yet (`... <break time="1.`), which is held until it is complete."""
    unfinished = unfinished_tag_start(text)
    if unfinished is not None and end > unfinished:
        end = unfinished
    tag = tag_at(text, end)
    return tag.start if tag is not None else end


class TextBuffer:
    """The text buffer of one context."""

    def __init__(self, schedule: tuple[int, ...] = DEFAULT_SCHEDULE, *, auto_mode: bool = False) -> None:
        if not schedule:
            raise ValueError("schedule must not be empty")
        self.schedule = schedule
        self.auto_mode = auto_mode
        self._text = ""
        self._generated = False
        self._step = 0  # index of the next schedule threshold
        self._last_char = ""  # last character received, to keep word boundaries between messages

    @property
    def text(self) -> str:
        return self._text

    @property
    def has_speech(self) -> bool:
        return bool(self._text.strip())

    @property
    def threshold(self) -> int:
        return self.schedule[min(self._step, len(self.schedule) - 1)]

    def add(self, text: str, *, try_trigger: bool = False) -> list[str]:
        """Append a message's text; return what is ready to generate under the rules."""
        if not text:
            return []
        if (
            self._last_char
            and not self._last_char.isspace()
            and not text[0].isspace()
            and unfinished_tag_start(self._text) is None  # a tag may arrive in several messages
        ):
            text = " " + text  # messages that do not end in a space still end a word
        self._last_char = text[-1]
        if not self._generated and not self._text.strip():
            text = text.lstrip()  # nothing yet to separate the first words from
        self._text += text
        ready: list[str] = []
        if self.auto_mode:
            end = complete_sentences_end(self._text)
            if end:
                ready += self._take(len(self._text[:end].rstrip()))
        # auto_mode has no schedule; a sentence that runs on is still cut at the longest step.
        limit = max(self.schedule) if self.auto_mode else self.threshold
        if len(self._text.strip()) >= limit or (
            try_trigger and len(self._text.strip()) >= TRY_TRIGGER_MIN_CHARS
        ):
            taken = self._take(_last_word_end(self._text, final=False))
            if taken and not try_trigger and not self.auto_mode:
                self._step += 1
            ready += taken
        return ready

    def flush(self) -> list[str]:
        """Everything buffered (flush or end of input)."""
        return self._take(_last_word_end(self._text, final=True))

    def clear(self) -> str:
        """Drop the buffer (a context closed without a flush); return what was dropped."""
        dropped, self._text = self._text, ""
        return dropped

    def _take(self, end: int) -> list[str]:
        if end < len(self._text):  # a flush takes everything: a cut-off tag is then never spoken
            end = _before_tags(self._text, end)
        if end <= 0 or not self._text[:end].strip():
            return []
        taken, self._text = self._text[:end], self._text[end:]
        self._generated = True
        return [taken]
