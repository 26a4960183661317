"""How long the pieces handed to the engine are: the pace model and the next-piece cut.

Pure: the transport measures how long each piece took and records it; the session asks how long
the next piece may be. A piece is sized to take about `PIECE_BUDGET_S` to synthesize, a budget
shared by every context waiting for the engine: a context's frames then stay well under 3 s apart
(pipecat gives up on a context after 3 s without audio), and a barge-in waits for one short piece
at most.

A context's first piece (its listener has heard nothing yet) is short: at most
`FIRST_PIECE_CHARS`, cut at a comma. While other contexts wait for their first audio too, the
time one such piece takes is shared by all of them, so first audio under load does not grow by
a whole first sentence per waiting stream; such a piece may end between words.
"""

from __future__ import annotations

import math
from collections import deque

from elevtts.chunking import synthesis_pieces

PIECE_BUDGET_S = 1.5
FIRST_PIECE_CHARS = 80  # a context's first piece is short, so its audio comes fast
MIN_FIRST_PIECE_CHARS = 20  # about four words: below that the engine's cost per call dominates
MIN_PIECE_CHARS, MAX_PIECE_CHARS = 40, 300


class Pace:
    """How long an engine takes for a piece of text, learned from the pieces it synthesizes.

    A line through the recent (characters, seconds) samples: a fixed cost per call plus a cost
    per character (Piper pays about 0.1-0.2 s per call, then a few ms per character).
    """

    def __init__(self, samples: int = 16) -> None:
        self._samples: deque[tuple[int, float]] = deque(maxlen=samples)

    def record(self, chars: int, seconds: float) -> None:
        if chars > 0 and seconds >= 0:
            self._samples.append((chars, seconds))

    def cost(self) -> tuple[float, float] | None:
        """(seconds per call, seconds per character), or None before the first sample."""
        if not self._samples:
            return None
        count = len(self._samples)
        mean_n = sum(n for n, _ in self._samples) / count
        mean_t = sum(t for _, t in self._samples) / count
        var_n = sum((n - mean_n) ** 2 for n, _ in self._samples)
        if var_n > 0:
            per_char = sum((n - mean_n) * (t - mean_t) for n, t in self._samples) / var_n
            fixed = mean_t - per_char * mean_n
            if per_char > 0 and fixed >= 0:
                return fixed, per_char
        return 0.0, mean_t / mean_n  # too few distinct lengths for a line: all of it per character

    def piece_chars(self, budget_s: float, *, shortest: int = MIN_PIECE_CHARS) -> int:
        """The longest piece that should be synthesized within `budget_s` (at least `shortest`)."""
        cost = self.cost()
        if cost is None or cost[1] <= 0:
            return MAX_PIECE_CHARS
        fixed, per_char = cost
        return int(min(MAX_PIECE_CHARS, max(shortest, (budget_s - fixed) / per_char)))

    def seconds(self, chars: int) -> float | None:
        """How long a piece of `chars` characters takes; None before the first sample."""
        cost = self.cost()
        return None if cost is None else cost[0] + cost[1] * chars


class Pacer:
    """The pace of every voice and how many contexts share the engine now (one per server)."""

    def __init__(self, *, synthesis_slots: int = 1) -> None:
        self.synthesis_slots = max(1, synthesis_slots)
        self.paces: dict[str, Pace] = {}
        self.speaking = 0  # contexts with a generation to speak, on every connection
        self.waiting = 0  # of those, contexts whose listener has had no audio yet

    def pace(self, voice_id: str) -> Pace:
        return self.paces.setdefault(voice_id, Pace())

    def piece_chars(self, voice_id: str) -> int:
        """How long the next piece may be: the budget is shared by every context that is speaking."""
        sharers = max(1, math.ceil(self.speaking / self.synthesis_slots))
        return self.pace(voice_id).piece_chars(PIECE_BUDGET_S / sharers)

    def first_piece_chars(self, voice_id: str) -> int:
        """How long a context's first piece may be: `FIRST_PIECE_CHARS` when it waits alone; when
        others wait for their first audio too, short enough that the time one such piece takes
        alone is shared by all of them (never under `MIN_FIRST_PIECE_CHARS`)."""
        waiters = math.ceil(max(1, self.waiting) / self.synthesis_slots)
        if waiters <= 1:
            return FIRST_PIECE_CHARS
        pace = self.pace(voice_id)
        alone = pace.seconds(FIRST_PIECE_CHARS)
        if alone is None:  # nothing measured yet: share the characters instead of the time
            return max(MIN_FIRST_PIECE_CHARS, FIRST_PIECE_CHARS // waiters)
        chars = pace.piece_chars(alone / waiters, shortest=MIN_FIRST_PIECE_CHARS)
        return min(FIRST_PIECE_CHARS, chars)


def next_piece(text: str, max_chars: int, *, first_max_chars: int | None = None) -> tuple[str, str]:
    """The next piece to synthesize (cut as `synthesis_pieces` cuts) and the text after it.

    `first_max_chars`: this is a context's first piece. Up to `FIRST_PIECE_CHARS` it is cut at a
    comma if one fits (a long sentence without one stays whole, as `synthesis_pieces` does); below
    that, others are waiting: the piece never exceeds it, cut between words if need be.
    """
    window = text[: 4 * max_chars + FIRST_PIECE_CHARS]  # enough to find the piece, cheap on long text
    if first_max_chars is None:
        pieces = synthesis_pieces(window, first_max_chars=max_chars, max_chars=max_chars)
    elif first_max_chars < FIRST_PIECE_CHARS:
        pieces = synthesis_pieces(window, first_max_chars=first_max_chars, max_chars=first_max_chars)
    else:
        first_max = min(first_max_chars, max_chars)
        pieces = synthesis_pieces(window, first_max_chars=first_max, max_chars=max_chars)
    piece = pieces[0] if pieces else window
    return piece, text[len(piece) :]
