"""The server's connection rules, driven through the pure `Session` with a fake clock (no socket,
no engine, no event loop): each test plays the transport's part by hand, the way h11's tests
drive a connection."""

from __future__ import annotations

import json
from typing import Any

import pytest

from elevtts.protocol import Alignment, AudioFrame, ErrorFrame, FinalFrame
from elevtts.server.alignment import TimedAlignment
from elevtts.server.pacing import (
    FIRST_PIECE_CHARS,
    MAX_PIECE_CHARS,
    MIN_FIRST_PIECE_CHARS,
    MIN_PIECE_CHARS,
    Pace,
    Pacer,
    next_piece,
)
from elevtts.server.session import (
    MAX_UNAUTHENTICATED_MESSAGE_BYTES,
    REMEMBERED_FINISHED_IDS,
    Abandon,
    Action,
    Close,
    Fail,
    FinishAudio,
    Forget,
    ResetAudio,
    Send,
    Session,
    SessionRules,
    Synthesize,
    TextBudget,
)

SENTENCE = "The quick brown fox jumps over the lazy dog. "


def _timing(text: str, duration_ms: int = 100) -> TimedAlignment:
    alignment = Alignment(tuple(text), tuple(range(len(text))), (1,) * len(text))
    return TimedAlignment(alignment, alignment, duration_ms)


class Wire:
    """Plays the transport: performs every action at once, with a clock the test moves."""

    def __init__(
        self,
        *,
        multi: bool = True,
        query: dict[str, str] | None = None,
        rules: SessionRules | None = None,
        pacer: Pacer | None = None,
        voice_id: str = "espeak",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.pacer = pacer or Pacer()
        rules = rules or SessionRules(served_voices=("espeak",))
        self.session = Session(rules, self.pacer, voice_id=voice_id, multi=multi)
        self.now = 0.0
        self.actions: list[Action] = []
        self.pending: dict[int, Synthesize] = {}
        self.finishing: list[int] = []
        headers = headers or {}
        self.do(
            self.session.open(
                query or {},
                api_key_header=headers.get("xi-api-key"),
                authorization_header=headers.get("Authorization"),
                now=self.now,
            )
        )

    def do(self, actions: list[Action]) -> list[Action]:
        for action in actions:
            if isinstance(action, Synthesize):
                self.pending[action.ticket] = action
            elif isinstance(action, Abandon):
                self.pending.pop(action.ticket, None)
            elif isinstance(action, FinishAudio):
                self.finishing.append(action.key)
        self.actions += actions
        return actions

    def send(self, **message: Any) -> list[Action]:
        return self.do(self.session.receive(json.dumps(message), now=self.now))

    def later(self, seconds: float) -> list[Action]:
        self.now += seconds
        return self.do(self.session.tick(now=self.now))

    def speak_one(self, *, held_back: bool = False) -> Synthesize:
        """The engine and encoder finish the oldest pending piece (in one frame)."""
        ticket = min(self.pending)
        piece = self.pending.pop(ticket)
        audio = b"" if held_back else b"A" + piece.text.encode()
        self.do(self.session.audio(ticket, audio, _timing(piece.text), now=self.now))
        self.do(self.session.piece_done(ticket, now=self.now))
        return piece

    def speak_all(self) -> None:
        while self.pending or self.finishing:
            while self.pending:
                self.speak_one()
            while self.finishing:
                self.do(self.session.audio_finished(self.finishing.pop(0), b"", now=self.now))

    # -- what was sent -----------------------------------------------------------------------

    @property
    def frames(self) -> list[AudioFrame | FinalFrame | ErrorFrame]:
        return [a.frame for a in self.actions if isinstance(a, Send)]

    def finals(self) -> list[str | None]:
        return [f.context_id for f in self.frames if isinstance(f, FinalFrame)]

    def spoken(self, context_id: str | None = None) -> str:
        return "".join(
            "".join(f.alignment.chars)
            for f in self.frames
            if isinstance(f, AudioFrame) and f.alignment and f.context_id == context_id
        )

    @property
    def errors(self) -> list[ErrorFrame]:
        return [f for f in self.frames if isinstance(f, ErrorFrame)] + [
            a.frame for a in self.actions if isinstance(a, Fail)
        ]

    @property
    def end(self) -> Fail | Close | None:
        ends = [a for a in self.actions if isinstance(a, Fail | Close)]
        assert len(ends) <= 1, ends
        return ends[0] if ends else None


# ---------------------------------------------------------------------------------------------
# Single stream


def test_single_stream_speaks_everything_then_final_then_close() -> None:
    wire = Wire(multi=False)
    wire.send(text=" ")
    wire.send(text=SENTENCE)
    wire.send(text="")
    wire.speak_all()
    assert wire.spoken() == SENTENCE.strip()
    assert wire.finals() == [None]
    assert isinstance(wire.frames[-1], FinalFrame)
    assert wire.end == Close()
    assert wire.pacer.speaking == 0


def test_text_below_the_schedule_waits_and_flush_generates_it() -> None:
    wire = Wire(multi=False)
    wire.send(text="Short. ")
    assert not wire.pending
    wire.send(flush=True)
    assert [p.text for p in wire.pending.values()] == ["Short."]


def test_inactivity_ends_an_idle_single_stream() -> None:
    wire = Wire(multi=False, query={"inactivity_timeout": "5"})
    wire.send(text="Buffered words. ")
    assert wire.later(4.9) == []
    wire.later(0.2)
    assert isinstance(wire.end, Fail)
    assert wire.end.error.error == "input_timeout_exceeded" and wire.end.error.code == 1008
    assert wire.end.error.reason.startswith(
        "Have not received a new text input within the timeout of 5 seconds"
    )


def test_inactivity_counts_from_the_handshake() -> None:
    wire = Wire(multi=False, query={"inactivity_timeout": "1"})
    wire.later(1.5)
    assert isinstance(wire.end, Fail) and wire.end.error.error == "input_timeout_exceeded"


def test_time_spent_speaking_is_not_inactivity() -> None:
    wire = Wire(multi=False, query={"inactivity_timeout": "1"})
    wire.send(text=SENTENCE * 4)
    assert wire.pending
    assert wire.later(30) == []  # a piece is being synthesized: the context is not idle


def test_inactivity_never_fires_after_end_of_input() -> None:
    """Issue 11 item 3: once the input ended, only finishing is left, however long it takes."""
    wire = Wire(multi=False, query={"inactivity_timeout": "0.01"})
    wire.send(text=SENTENCE)
    wire.send(text="")
    assert wire.later(100) == []  # synthesis still running
    wire.speak_one()
    assert wire.later(100) == []  # the encoder's tail not yet back
    wire.speak_all()
    assert wire.later(100) == []  # isFinal sent, the close handshake under way
    assert wire.end == Close() and not wire.errors


def test_input_after_end_of_input_is_ignored() -> None:
    wire = Wire(multi=False)
    wire.send(text="Done. ")
    wire.send(text="")
    assert wire.send(text="More after the end. ", flush=True) == []
    assert wire.send(text="{not json") == []


def test_voice_settings_may_not_change() -> None:
    wire = Wire(multi=False)
    wire.send(text=" ", voice_settings={"stability": 0.5})
    wire.send(text="x ", voice_settings={"stability": 0.9})
    assert isinstance(wire.end, Fail) and wire.end.error.error == "invalid_input_message"


# ---------------------------------------------------------------------------------------------
# Handshake: query, voice, format, key


def test_an_unknown_voice_is_refused_unless_a_fallback_speaks_it() -> None:
    refused = Wire(voice_id="Rachel")
    assert isinstance(refused.end, Fail) and refused.end.error.error == "voice_not_found"
    rules = SessionRules(served_voices=("espeak",), fallback_voice="espeak")
    fallback = Wire(voice_id="Rachel", rules=rules)
    assert fallback.end is None and fallback.session.voice_id == "espeak"


@pytest.mark.parametrize("name", ["opus_48000_64", "wav_44100", "mp3_1_2"])
def test_formats_this_server_does_not_stream_are_refused(name: str) -> None:
    wire = Wire(query={"output_format": name})
    assert isinstance(wire.end, Fail) and wire.end.error.error == "invalid_output_format"


def test_a_bad_query_value_is_invalid_request() -> None:
    wire = Wire(query={"inactivity_timeout": "999"})
    assert isinstance(wire.end, Fail) and wire.end.error.error == "invalid_request"


def test_the_key_in_the_header_or_the_first_message() -> None:
    rules = SessionRules(served_voices=("espeak",), api_key="sesame")
    assert Wire(rules=rules, headers={"xi-api-key": "sesame"}).end is None
    assert Wire(rules=rules, headers={"Authorization": "Bearer sesame"}).end is None
    assert Wire(rules=rules, query={"authorization": "Bearer sesame"}).end is None
    wrong = Wire(rules=rules, headers={"xi-api-key": "open sesame"})
    assert isinstance(wrong.end, Fail) and wrong.end.error.error == "invalid_api_key"

    in_message = Wire(rules=rules)
    in_message.send(text=" ", xi_api_key="sesame")
    in_message.send(text="Later messages need no key. ", flush=True)
    assert in_message.end is None and in_message.pending

    missing = Wire(rules=rules)
    missing.send(text=" ")
    assert isinstance(missing.end, Fail) and missing.end.error.error == "invalid_api_key"
    assert "sesame" not in json.dumps(missing.end.frame.serialize())


def test_after_a_failure_everything_is_discarded() -> None:
    """Issue 11 item 11: the error and close go out at once; queued input is not processed."""
    wire = Wire()
    wire.send(text=SENTENCE * 3, context_id="a")
    ticket = next(iter(wire.pending))
    actions = wire.send(text="x", context_id="a", voice_settings={"speed": 1.2})
    assert actions[-1] == wire.end and isinstance(wire.end, Fail)
    assert Abandon(ticket) in actions  # the engine's work for this connection is dropped
    assert wire.send(text="more", context_id="b") == []
    assert wire.session.audio(ticket, b"late", _timing("late"), now=1) == []
    assert wire.later(1000) == []
    assert wire.pacer.speaking == 0


# ---------------------------------------------------------------------------------------------
# Multi-context


def test_a_keepalive_never_opens_a_context() -> None:
    wire = Wire()
    assert wire.send(text="") == []
    assert wire.send(text="", context_id="ghost") == []
    assert wire.session.open_contexts == 0 and not wire.frames


def test_close_context_for_an_unknown_id_is_final_at_once() -> None:
    wire = Wire()
    wire.send(context_id="nobody", close_context=True)
    assert wire.finals() == ["nobody"] and wire.session.open_contexts == 0


def test_close_context_without_a_flush_drops_the_unspoken_buffer() -> None:
    wire = Wire()
    wire.send(text="Never spoken. ", context_id="a")
    wire.send(context_id="a", close_context=True)
    wire.speak_all()
    assert not wire.spoken("a") and wire.finals() == ["a"]


def test_a_flushed_turn_is_spoken_in_full_after_close_context() -> None:
    wire = Wire()
    wire.send(text=SENTENCE * 3, context_id="a")
    wire.send(context_id="a", flush=True)
    wire.send(context_id="a", close_context=True)
    wire.speak_all()
    assert wire.spoken("a") == (SENTENCE * 3).strip()
    assert wire.finals() == ["a"]


def test_barge_in_abandons_the_piece_and_sends_final_at_once() -> None:
    wire = Wire(query={"auto_mode": "true"})
    wire.send(text="An agent turn that the user interrupts. ", context_id="agent")
    ticket = next(iter(wire.pending))
    actions = wire.send(context_id="agent", close_context=True)
    assert Abandon(ticket) in actions
    assert wire.finals() == []  # the encoder is reset first
    assert any(isinstance(a, ResetAudio) for a in actions)
    wire.speak_all()
    assert wire.finals() == ["agent"] and not wire.spoken("agent")
    # The abandoned piece's late result is ignored.
    assert wire.session.audio(ticket, b"late", _timing("late"), now=wire.now) == []


def test_a_reused_id_waits_for_its_predecessor() -> None:
    wire = Wire()
    wire.send(text=SENTENCE * 3, context_id="turn", flush=True)
    wire.send(context_id="turn", close_context=True)  # flushed: it is finished, not cut
    first = set(wire.pending)
    wire.send(text="The next turn. ", context_id="turn", flush=True)
    assert set(wire.pending) == first  # nothing of the new turn before the old one ends
    wire.speak_all()
    assert wire.finals() == ["turn"]  # the new context is still open
    assert wire.spoken("turn") == (SENTENCE * 3).strip() + "The next turn."
    wire.send(context_id="turn", close_context=True)
    wire.speak_all()
    assert wire.finals() == ["turn", "turn"]


def test_keepalive_and_late_close_for_a_finished_context_do_nothing() -> None:
    wire = Wire()
    wire.send(text="A turn. ", context_id="turn", flush=True)
    wire.send(context_id="turn", close_context=True)
    wire.speak_all()
    assert wire.finals() == ["turn"]
    assert wire.send(text="", context_id="turn") == []
    assert wire.send(context_id="turn", close_context=True) == []
    assert wire.send(context_id="turn", flush=True) == []
    assert wire.finals() == ["turn"] and wire.session.open_contexts == 0


def test_five_contexts_at_most() -> None:
    wire = Wire()
    for index in range(5):
        wire.send(text=" ", context_id=f"c{index}")
    wire.send(text=" ", context_id="c5")
    assert isinstance(wire.end, Fail)
    assert wire.end.error.error == "max_active_conversations" and wire.end.error.context_id == "c5"


def test_a_closed_context_frees_its_slot() -> None:
    wire = Wire()
    for index in range(5):
        wire.send(text=" ", context_id=f"c{index}")
    wire.send(context_id="c0", close_context=True)
    wire.speak_all()
    wire.send(text=" ", context_id="c5")
    assert wire.end is None and wire.session.open_contexts == 5


def test_per_context_inactivity_closes_only_that_context() -> None:
    wire = Wire(query={"inactivity_timeout": "2"})
    wire.send(text="Idle words. ", context_id="idle")
    wire.send(text="Busy words. ", context_id="busy")
    wire.later(1.5)
    wire.send(text="more ", context_id="busy")
    wire.later(1.0)
    wire.speak_all()
    assert [(e.error, e.context_id) for e in wire.errors] == [("input_timeout_exceeded", "idle")]
    assert wire.finals() == ["idle"] and wire.end is None
    # The error frame comes before the context's isFinal.
    kinds = [type(f).__name__ for f in wire.frames]
    assert kinds.index("ErrorFrame") < kinds.index("FinalFrame")


def test_a_socket_without_contexts_expires() -> None:
    wire = Wire(query={"inactivity_timeout": "2"})
    wire.later(1.5)
    wire.send(text="")  # a connection keep-alive resets the clock
    wire.later(1.5)
    assert wire.end is None
    wire.later(1.0)
    assert isinstance(wire.end, Fail) and wire.end.error.context_id is None


def test_close_socket_speaks_every_context_then_closes() -> None:
    wire = Wire()
    wire.send(text="First context words. ", context_id="a")
    wire.send(text="Second context words. ", context_id="b")
    wire.send(close_socket=True)
    assert wire.end is None
    wire.speak_all()
    assert sorted(wire.finals()) == ["a", "b"]
    assert wire.spoken("a") == "First context words." and wire.spoken("b") == "Second context words."
    assert wire.end == Close()
    assert wire.later(1000) == []


def test_close_socket_without_contexts_closes_at_once() -> None:
    wire = Wire()
    wire.send(close_socket=True)
    assert wire.end == Close()


def test_finished_contexts_are_freed_over_many_turns() -> None:
    """Issue 11 item 10: 2,000 agent turns on one socket hold no more than a bounded record."""
    wire = Wire(query={"auto_mode": "true"})
    for turn in range(2000):
        context_id = f"turn-{turn}"
        wire.send(text="Hello there. ", context_id=context_id)
        wire.send(context_id=context_id, flush=True)
        wire.send(context_id=context_id, close_context=True)
        wire.speak_all()
        assert sum(isinstance(a, Forget) for a in wire.actions) == 1  # the transport frees its encoder
        wire.actions.clear()
    assert wire.session.open_contexts == 0
    assert wire.session.known_contexts <= REMEMBERED_FINISHED_IDS
    assert wire.pacer.speaking == 0


# ---------------------------------------------------------------------------------------------
# Audio the encoder held back; pacing


def test_alignment_of_held_back_audio_joins_the_next_frame() -> None:
    wire = Wire(multi=False)
    wire.send(text=SENTENCE * 2)
    wire.send(text="")
    wire.speak_one(held_back=True)  # the encoder kept this piece's audio
    first = [f for f in wire.frames if isinstance(f, AudioFrame)]
    assert first == []
    wire.speak_all()
    frames = [f for f in wire.frames if isinstance(f, AudioFrame)]
    assert "".join("".join(f.alignment.chars) for f in frames if f.alignment) == (SENTENCE * 2).strip()
    joined = frames[0].alignment
    assert joined is not None
    held = len(joined.chars) - len(frames[0].audio) + 1  # chars of the held-back piece
    # The second piece's times start after the held-back 100 ms.
    assert joined.char_start_times_ms[held] == 100


def test_the_encoder_tail_carries_what_was_held_back() -> None:
    wire = Wire(multi=False)
    wire.send(text="Just this. ")
    wire.send(text="")
    wire.speak_one(held_back=True)
    (key,) = wire.finishing
    wire.finishing.clear()
    wire.do(wire.session.audio_finished(key, b"tail", now=0))
    wire.speak_all()
    audio = [f for f in wire.frames if isinstance(f, AudioFrame)]
    assert [f.audio for f in audio] == [b"tail"]
    assert audio[0].alignment is not None and "".join(audio[0].alignment.chars) == "Just this."
    assert wire.finals() == [None]


def test_pace_learns_a_fixed_and_a_per_character_cost() -> None:
    pace = Pace()
    assert pace.piece_chars(1.5) == MAX_PIECE_CHARS  # nothing measured yet
    for chars in (50, 100, 200):
        pace.record(chars, 0.2 + chars * 0.005)
    fixed, per_char = pace.cost() or (0, 0)
    assert fixed == pytest.approx(0.2) and per_char == pytest.approx(0.005)
    assert pace.piece_chars(1.5) == 260
    assert pace.piece_chars(0.1) == MIN_PIECE_CHARS


def test_the_piece_budget_is_shared_by_the_contexts_speaking() -> None:
    pacer = Pacer()
    for chars in (50, 100, 200):
        pacer.pace("espeak").record(chars, chars * 0.01)
    alone = pacer.piece_chars("espeak")
    pacer.speaking = 3
    assert pacer.piece_chars("espeak") < alone


def test_the_first_piece_is_short_and_pieces_cover_the_text() -> None:
    text = SENTENCE * 10
    piece, rest = next_piece(text, 200, first_max_chars=FIRST_PIECE_CHARS)
    assert len(piece) <= FIRST_PIECE_CHARS and piece + rest == text
    second, _ = next_piece(rest, 200)
    assert 0 < len(second) <= 200 and text.startswith(piece + second)


def test_the_session_cuts_pieces_by_the_pace() -> None:
    pacer = Pacer()
    for chars in (50, 100, 200):
        pacer.pace("espeak").record(chars, 0.1 + chars * 0.02)  # a slow engine: short pieces
    wire = Wire(multi=False, pacer=pacer)
    wire.send(text=SENTENCE * 8)
    wire.send(text="")
    pieces = []
    while wire.pending:
        pieces.append(wire.speak_one().text)
    assert "".join(pieces) == (SENTENCE * 8).rstrip()
    assert len(pieces) > 3 and all(len(p) <= pacer.pace("espeak").piece_chars(1.5) for p in pieces)


LONG_SENTENCE = "When the morning came at last, the travellers packed their bags and walked to the harbour. "


def test_only_a_context_without_audio_yet_gets_a_first_piece_cut_at_a_comma() -> None:
    """Schedule-triggered generations after the first are spoken in whole sentences: a comma cut
    is an audible prosody break, worth it only while the listener waits for the first audio."""
    wire = Wire(multi=False)
    for _ in range(6):  # each message crosses a schedule threshold: one generation per message
        wire.send(text=LONG_SENTENCE * 2)
        while wire.pending:
            wire.speak_one()
    wire.send(text="")
    wire.speak_all()
    pieces = [a.text for a in wire.actions if isinstance(a, Synthesize)]
    assert "".join(pieces) == (LONG_SENTENCE * 12).rstrip()
    assert pieces[0] == "When the morning came at last, "
    assert [p.strip() for p in pieces[1:]] == [
        "the travellers packed their bags and walked to the harbour."
    ] + [LONG_SENTENCE.strip()] * 11


def test_every_new_context_gets_a_short_first_piece() -> None:
    wire = Wire()
    for context_id in ("a", "b"):
        wire.send(text=LONG_SENTENCE * 2, context_id=context_id, flush=True)
    firsts = [a for a in wire.actions if isinstance(a, Synthesize)]
    assert [a.text for a in firsts] == ["When the morning came at last, "] * 2


PARAGRAPH = (
    "Streaming speech starts before the text is complete, so the first words matter most. "
    "The server reads each sentence as it arrives and sends audio frames back at once. "
)


def _piper_like_pacer() -> Pacer:
    pacer = Pacer()
    for chars in (20, 60, 120):
        pacer.pace("espeak").record(chars, 0.05 + chars * 0.002)  # 50 ms a call, 2 ms a character
    return pacer


def test_first_pieces_shrink_while_other_streams_wait_for_their_first_audio() -> None:
    """Eight streams start at once on one engine: each first piece is shorter than the one before,
    so first audio does not grow by a whole first sentence per waiting stream."""
    pacer = _piper_like_pacer()
    wires = [Wire(multi=False, pacer=pacer) for _ in range(8)]
    firsts = []
    for wire in wires:
        wire.send(text=PARAGRAPH, flush=True)
        (first,) = wire.pending.values()
        firsts.append(first)
    assert pacer.waiting == 8
    assert firsts[0].text == "Streaming speech starts before the text is complete, "  # alone: the comma
    lengths = [len(first.text) for first in firsts]
    assert lengths == sorted(lengths, reverse=True) and lengths[1] < lengths[0]
    assert lengths[-1] <= MIN_FIRST_PIECE_CHARS
    assert firsts[-1].text == "Streaming speech "  # cut between words, never inside one
    assert all(first.first for first in firsts)
    for count, wire in enumerate(wires, 1):
        wire.speak_one()  # its first audio: it no longer waits
        assert pacer.waiting == 8 - count
        (second,) = wire.pending.values()
        assert not second.first
    for wire in wires:
        wire.send(text="")
        wire.speak_all()
        assert wire.spoken() == PARAGRAPH.rstrip()
    assert (pacer.waiting, pacer.speaking) == (0, 0)


def test_streams_with_text_below_the_schedule_count_as_waiting() -> None:
    """Streams started together reach their schedule thresholds a few ms apart: the first to
    reach it already knows the others' listeners wait, and keeps its first piece short."""
    pacer = _piper_like_pacer()
    wires = [Wire(multi=False, pacer=pacer) for _ in range(4)]
    for wire in wires[1:]:
        wire.send(text="Streaming speech starts ")  # below the schedule: nothing to synthesize yet
    assert pacer.waiting == 3 and pacer.speaking == 0
    wires[0].send(text=PARAGRAPH, flush=True)
    (first,) = wires[0].pending.values()
    assert len(first.text) <= pacer.first_piece_chars("espeak") < FIRST_PIECE_CHARS
    wires[0].send(text=" ")  # a keep-alive is not text to speak
    for wire in wires:
        wire.send(text="")
        wire.speak_all()
    assert (pacer.waiting, pacer.speaking) == (0, 0)


def test_a_first_piece_without_a_pace_shares_its_characters() -> None:
    pacer = Pacer()
    assert pacer.first_piece_chars("espeak") == FIRST_PIECE_CHARS
    pacer.waiting = 2
    assert pacer.first_piece_chars("espeak") == FIRST_PIECE_CHARS // 2
    pacer.waiting = 8
    assert pacer.first_piece_chars("espeak") == MIN_FIRST_PIECE_CHARS
    pacer = Pacer(synthesis_slots=2)
    pacer.waiting = 2  # one each: nobody waits behind another
    assert pacer.first_piece_chars("espeak") == FIRST_PIECE_CHARS


def test_a_closed_connection_stops_waiting() -> None:
    pacer = _piper_like_pacer()
    wire = Wire(multi=True, pacer=pacer)
    wire.send(text=PARAGRAPH, context_id="a", flush=True)
    wire.send(text=PARAGRAPH, context_id="b", flush=True)
    assert pacer.waiting == 2
    wire.session.connection_lost()
    assert (pacer.waiting, pacer.speaking) == (0, 0)


# ---------------------------------------------------------------------------------------------
# Memory bounds (issue 11 item 5)


def test_a_connection_holding_too_much_text_is_refused() -> None:
    rules = SessionRules(served_voices=("espeak",), max_buffered_chars=1000)
    within = Wire(multi=False, rules=rules)
    within.send(text="x" * 900)  # one word still being typed: all of it stays buffered
    assert within.end is None
    within.session.connection_lost()
    wire = Wire(multi=False, rules=rules)
    wire.send(text="x" * 1200)
    assert isinstance(wire.end, Fail)
    assert (wire.end.error.error, wire.end.error.code) == ("max_character_limit_exceeded", 1009)
    assert rules.budget.held == 0  # a failed connection gives its share back


def test_the_servers_text_budget_is_shared_and_given_back() -> None:
    rules = SessionRules(served_voices=("espeak",), budget=TextBudget(1500))
    first, second = Wire(multi=False, rules=rules), Wire(multi=False, rules=rules)
    first.send(text="x" * 1000)  # one word still being typed: all of it stays buffered
    assert rules.budget.held == 1000
    second.send(text="x" * 1000)
    assert isinstance(second.end, Fail)
    assert (second.end.error.error, second.end.error.code) == ("system_busy", 1013)
    assert first.end is None  # the connection already served is not degraded
    first.send(text="")
    first.speak_all()
    first.session.connection_lost()
    assert rules.budget.held == 0


def test_before_the_key_only_small_messages_are_read() -> None:
    rules = SessionRules(served_voices=("espeak",), api_key="sesame")
    wire = Wire(rules=rules)
    assert wire.session.max_message_bytes == MAX_UNAUTHENTICATED_MESSAGE_BYTES
    wire.send(text=" ", xi_api_key="sesame")
    assert wire.session.max_message_bytes == rules.max_message_bytes
    assert Wire().session.max_message_bytes == rules.max_message_bytes  # no key needed: no limit
