"""One connection's protocol rules, without the connection: events in, actions out.

Pure (sans-I/O, in the manner of h11 and python-websockets' `protocol.py`): no asyncio, no
websockets, no threads, no clock. A transport feeds it and performs what it returns:

    events (methods)                              actions (returned, in order)
    open(query, keys, now)    the handshake       Send(frame)          send this frame
    receive(raw, now)         one client frame    Synthesize(ticket)   synthesize this piece
    audio(ticket, ..., now)   one encoded frame   Abandon(ticket)      that piece is no longer wanted
    piece_done(ticket, now)   the piece is over   FinishAudio(key)     flush the context's encoder
    audio_finished(key, ..)   the encoder tail    ResetAudio(key)      drop what the encoder holds
    tick(now)                 time passes         Forget(key)          the context ended: free its encoder
    internal_error()          the engine failed   Fail(error)          send its error frame, close with
                                                                       its code; discard further input
                                                  Close()              close normally (1000)

`now` is any monotonic clock in seconds; `tick` is due every `tick_interval` seconds.

The rules (protocol.md sections 4-7):
- the first message (or the handshake) carries the API key when the server has one;
- single stream: one context; `{"text": ""}` ends the input: everything is spoken, `isFinal`, 1000;
- multi-context: up to five contexts; a keep-alive (empty text) never opens one; `close_context`
  without a covering flush cancels what is not spoken yet (barge-in), a flushed turn is finished;
  a reused id opens a new context that speaks once its predecessor has ended; `close_socket`
  speaks every context out, then closes; a context that has sent `isFinal` is freed;
- inactivity: a context idle past the timeout is closed with an error frame (multi) or ends the
  stream (single); never once the input has ended;
- each generation is synthesized piece by piece, sized by the shared `Pacer`; the frames the
  encoder held back are joined to the next frame that carries audio.
"""

from __future__ import annotations

import hmac
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import count

from elevtts.formats import LOCAL_FORMATS, FormatError, OutputFormat, parse_output_format
from elevtts.protocol import (
    DEFAULT_CONTEXT_ID,
    MAX_CONTEXTS,
    MAX_CONTEXTS_MESSAGE,
    MAX_MESSAGE_BYTES,
    AudioFrame,
    AuthError,
    ClientMessage,
    CloseCode,
    ErrorFrame,
    ErrorName,
    FinalFrame,
    ProtocolError,
    StreamParams,
    VoiceSettings,
    inactivity_message,
    parse_client_message,
)
from elevtts.server.alignment import TimedAlignment
from elevtts.server.buffer import tag_at
from elevtts.server.context import Context, ContextSettings, Generation, is_keepalive
from elevtts.server.dictionary import DictionaryStore, Lexicon
from elevtts.server.pacing import FIRST_PIECE_CHARS, Pacer, next_piece

log = logging.getLogger("elevtts.server")

# Ids of freed contexts remembered so a late keep-alive or close for them stays a no-op.
REMEMBERED_FINISHED_IDS = 64
# Memory bounds: text held (buffered, queued, not yet synthesized) per connection and by every
# connection together; and the largest message read before the key is known.
MAX_BUFFERED_CHARS = 2_000_000
MAX_TOTAL_BUFFERED_CHARS = 16_000_000
MAX_UNAUTHENTICATED_MESSAGE_BYTES = 64 * 1024
INTERNAL_ERROR_MESSAGE = "We are sorry, something went wrong. You are not charged for this request."
LIST_VOICES_HINT = "list them with `elevtts voices` or GET /v1/voices"
OPUS_EXTRA_HINT = "this server lacks the Opus encoder: install its 'opus' extra (pip install -e '.[opus]')"


# ---------------------------------------------------------------------------------------------
# Actions


@dataclass(frozen=True)
class Send:
    frame: AudioFrame | FinalFrame | ErrorFrame


@dataclass(frozen=True)
class Synthesize:
    """Synthesize `text` (after the lexicons) and encode it with context `key`'s encoder."""

    ticket: int
    key: int
    text: str
    voice_settings: VoiceSettings
    seed: int | None = None
    lexicons: tuple[Lexicon, ...] = ()
    # The context's listener has had no audio yet: a transport should run this piece before the
    # pieces of contexts already speaking (their listeners have audio to play meanwhile).
    first: bool = False


@dataclass(frozen=True)
class Abandon:
    ticket: int


@dataclass(frozen=True)
class FinishAudio:
    key: int


@dataclass(frozen=True)
class ResetAudio:
    key: int


@dataclass(frozen=True)
class Forget:
    key: int


@dataclass(frozen=True)
class Fail:
    error: ProtocolError

    @property
    def frame(self) -> ErrorFrame:
        return ErrorFrame.from_error(self.error)


@dataclass(frozen=True)
class Close:
    code: CloseCode = CloseCode.NORMAL


Action = Send | Synthesize | Abandon | FinishAudio | ResetAudio | Forget | Fail | Close


def inactivity_error(timeout: float, context_id: str | None) -> ProtocolError:
    return ProtocolError(
        ErrorName.INPUT_TIMEOUT_EXCEEDED,
        inactivity_message(timeout, json_form=True),
        reason=inactivity_message(timeout, json_form=False),
        context_id=context_id,
    )


def internal_error() -> ProtocolError:
    return ProtocolError(ErrorName.INTERNAL_ERROR, INTERNAL_ERROR_MESSAGE, code=CloseCode.INTERNAL_ERROR)


def local_output_format(name: str, *, opus_encoder: bool = True) -> OutputFormat:
    """The `OutputFormat` this server produces for `name`; `invalid_output_format` otherwise.
    `opus_encoder`: whether PyAV (the 'opus' extra) is installed."""
    offered = [f for f in LOCAL_FORMATS if opus_encoder or not f.startswith("opus")]
    supported = ", ".join(offered)
    try:
        fmt = parse_output_format(name)
    except FormatError:
        fmt = None
    if fmt is None:
        message = f"unknown output_format {name!r}; supported values: {supported}"
        raise ProtocolError(ErrorName.INVALID_OUTPUT_FORMAT, message)
    if not fmt.streamable:
        message = (
            f"output_format {name!r}: {fmt.codec} is offered over HTTP only, never on a WebSocket; "
            f"use one of {supported}"
        )
        raise ProtocolError(ErrorName.INVALID_OUTPUT_FORMAT, message)
    if fmt.codec == "opus" and not opus_encoder:
        raise ProtocolError(ErrorName.INVALID_OUTPUT_FORMAT, f"output_format {name!r}: {OPUS_EXTRA_HINT}")
    if name not in offered:
        message = (
            f"output_format {name!r}: {fmt.codec} is not supported by this server; use one of {supported}"
        )
        raise ProtocolError(ErrorName.INVALID_OUTPUT_FORMAT, message)
    return fmt


def cut_piece(
    text: str, max_chars: int, *, first: bool = False, first_max_chars: int | None = None
) -> tuple[str, str]:
    """The next piece of a generation to synthesize and the text after it (the pace's cut);
    a break tag is never cut in two. `first` (or `first_max_chars`, from the pacer): the
    listener waits for its first audio (see `next_piece`)."""
    if first and first_max_chars is None:
        first_max_chars = FIRST_PIECE_CHARS
    piece, rest = next_piece(text, max_chars, first_max_chars=first_max_chars)
    if (tag := tag_at(text, len(piece))) is not None:
        return text[: tag.end], text[tag.end :]
    return piece, rest


def bearer(value: str | None) -> str | None:
    """The key in an `Authorization` value, with or without its `Bearer ` prefix."""
    if value is None:
        return None
    value = value.strip()
    return value[7:].strip() if value.lower().startswith("bearer ") else value


def keys_match(given: str, expected: str) -> bool:
    """Constant-time comparison (the key must not leak through timing)."""
    return hmac.compare_digest(given.strip().encode(), expected.encode())


# ---------------------------------------------------------------------------------------------
# The session


@dataclass(eq=False)
class _Live:
    """A context the session is speaking (or waiting to speak)."""

    key: int
    context: Context
    lexicons: tuple[Lexicon, ...]
    last_activity: float
    after: _Live | None = None  # the earlier context of the same id, which must end first
    generation: Generation | None = None
    rest: str = ""  # the current generation's text not yet handed to the engine
    voiced: bool = False  # the listener has had audio from this context
    ticket: int | None = None  # the piece being synthesized
    carry: TimedAlignment | None = None  # alignment of audio the encoder still holds
    finishing: bool = False  # waiting for the encoder's tail
    final_after_finish: bool = False
    speaking: bool = False
    asked: bool = False  # it has been sent text to speak
    waiting: bool = False  # asked or speaking, and its listener has had no audio yet
    done: bool = False


class TextBudget:
    """The text every connection holds, against one limit (one per server)."""

    def __init__(self, limit: int = MAX_TOTAL_BUFFERED_CHARS) -> None:
        self.limit = limit
        self.held = 0


@dataclass
class SessionRules:
    """What the server decides for every connection."""

    served_voices: tuple[str, ...] = ()
    fallback_voice: str | None = None
    api_key: str | None = field(default=None, repr=False)
    dictionaries: DictionaryStore = field(default_factory=DictionaryStore)
    max_message_bytes: int = MAX_MESSAGE_BYTES
    max_buffered_chars: int = MAX_BUFFERED_CHARS
    budget: TextBudget = field(default_factory=TextBudget)  # shared by every session of a server
    # Multilingual voices ("espeak"): how a language_code picks the voice that speaks it (None: a
    # code it does not speak). Every other voice accepts and ignores language_code.
    language_voices: Mapping[str, Callable[[str], str | None]] = field(default_factory=dict)
    opus_encoder: bool = False  # PyAV is installed: opus_48000_* can be offered


class Session:
    def __init__(self, rules: SessionRules, pacer: Pacer, *, voice_id: str, multi: bool) -> None:
        self.rules = rules
        self.pacer = pacer
        self.requested_voice = voice_id
        self.voice_id = voice_id  # the voice that speaks: the fallback, or the language's voice
        self.fallback_used = False
        self.multi = multi
        self.params = StreamParams()
        self.output_format = parse_output_format("mp3_44100_128")
        self.authenticated = rules.api_key is None
        self.closed = False  # a Fail or Close was returned: nothing more will happen
        self._input_ended = False  # `{"text": ""}` or `close_socket`: speak what is left, then close
        self._last_message = 0.0
        self._contexts: dict[str | None, _Live] = {}  # the newest context of each id
        self._live: list[_Live] = []  # every context not yet done (a reused id may have two)
        self._tickets: dict[int, _Live] = {}
        self._finished_ids: OrderedDict[str | None, None] = OrderedDict()
        self._keys = count(1)
        self._held = 0  # this session's share of the text budget

    # -- events ------------------------------------------------------------------------------

    def open(
        self,
        query: Mapping[str, str],
        *,
        api_key_header: str | None = None,
        authorization_header: str | None = None,
        now: float,
    ) -> list[Action]:
        """The handshake: the query, the voice, a key in the headers or the query."""
        self._last_message = now
        try:
            self.params = StreamParams.from_query(query)
            self.output_format = local_output_format(
                self.params.output_format, opus_encoder=self.rules.opus_encoder
            )
            self.voice_id = self._resolve_voice(self.requested_voice)
            if not self.authenticated:
                key = api_key_header
                if key is None:
                    key = bearer(authorization_header) or bearer(self.params.authorization)
                if key is not None:
                    self._verify(key)
        except ProtocolError as exc:
            return self._fail(exc)
        return []

    def receive(self, raw: str | bytes, *, now: float) -> list[Action]:
        """One client frame. After the input ended or the session failed, input is discarded."""
        if self.closed or self._input_ended:
            return []
        self._last_message = now
        try:
            message = parse_client_message(raw)
            if not self.authenticated:
                self._verify_message_key(message)
            actions = self._on_multi(message, now) if self.multi else self._on_single(message, now)
            self._check_memory()
        except ProtocolError as exc:
            return self._fail(exc)
        return actions + self._close_if_ended()

    def audio(self, ticket: int, audio: bytes, timing: TimedAlignment, *, now: float) -> list[Action]:
        """One encoded frame of a piece (empty when the encoder held its audio back)."""
        live = self._tickets.get(ticket)
        if live is None or self.closed:
            return []
        if live.carry is not None:
            timing, live.carry = live.carry.then(timing), None
        if not audio:
            live.carry = timing
            return []
        live.voiced = True
        self._update_waiting(live)
        return [Send(AudioFrame(audio, timing.original, timing.normalized, live.context.id))]

    def piece_done(self, ticket: int, *, now: float) -> list[Action]:
        live = self._tickets.pop(ticket, None)
        if live is None or self.closed:
            return []
        live.ticket = None
        actions = self._advance(live, now)
        self._account()
        return actions

    def audio_finished(self, key: int, audio: bytes, *, now: float) -> list[Action]:
        """The encoder's tail for context `key`: it goes out with any alignment carried."""
        live = next((each for each in self._live if each.key == key), None)
        if live is None or self.closed:
            return []
        live.finishing = False
        timing, live.carry = live.carry or TimedAlignment(), None
        actions: list[Action] = []
        if audio or timing.original.chars:
            live.voiced = live.voiced or bool(audio)
            self._update_waiting(live)
            actions.append(Send(AudioFrame(audio, timing.original, timing.normalized, live.context.id)))
        if live.final_after_finish:
            actions.append(Send(FinalFrame(live.context.id)))
            return actions + self._retire(live, now)
        return actions + self._advance(live, now)

    def tick(self, *, now: float) -> list[Action]:
        """Time passes: idle contexts expire. Never once the input has ended."""
        if self.closed or self._input_ended:
            return []
        timeout = self.params.inactivity_timeout
        actions: list[Action] = []
        for live in list(self._contexts.values()):
            context = live.context
            if context.closing or not context.idle or now - live.last_activity <= timeout:
                continue
            if not self.multi:
                return self._fail(inactivity_error(timeout, None))
            context.close()
            # The error goes out before the context's isFinal.
            actions.append(Send(ErrorFrame.from_error(inactivity_error(timeout, context.id))))
            actions += self._advance(live, now)
        if not self._live and now - self._last_message > timeout:
            return actions + self._fail(inactivity_error(timeout, None))
        return actions

    def internal_error(self) -> list[Action]:
        return [] if self.closed else self._fail(internal_error())

    def connection_lost(self) -> None:
        """The transport is gone: give back the engine share and the text budget of every context."""
        self.closed = True
        for live in self._live:
            self._speaking(live, on=False)
        self.rules.budget.held -= self._held
        self._held = 0

    @property
    def max_message_bytes(self) -> int:
        """The largest message to read now: small until the key is known, so a stranger's
        16 MiB is refused before it is held."""
        if self.authenticated:
            return self.rules.max_message_bytes
        return min(self.rules.max_message_bytes, MAX_UNAUTHENTICATED_MESSAGE_BYTES)

    @property
    def tick_interval(self) -> float:
        return min(0.25, self.params.inactivity_timeout / 4)

    @property
    def open_contexts(self) -> int:
        """Contexts not yet ended (what the five-context cap counts)."""
        return len(self._live)

    @property
    def known_contexts(self) -> int:
        """Context records held, ended or not (bounded: ended contexts are freed)."""
        return len(self._contexts) + len(self._live) + len(self._finished_ids)

    # -- messages ----------------------------------------------------------------------------

    def _on_single(self, message: ClientMessage, now: float) -> list[Action]:
        live = self._contexts.get(None)
        if live is None:
            live = self._open(None, message, now)
        else:
            live.context.settings.check_unchanged(message, None)
        live.last_activity = now
        if message.text == "":
            live.context.end_of_input()
            self._input_ended = True
        elif message.text is not None:
            live.context.receive(message.text, try_trigger=message.try_trigger_generation)
            if message.text.strip():
                live.asked = True
                self._update_waiting(live)
        if message.flush:
            live.context.flush()
        return self._advance(live, now)

    def _on_multi(self, message: ClientMessage, now: float) -> list[Action]:
        if message.close_socket:
            self._input_ended = True
            actions: list[Action] = []
            for each in list(self._contexts.values()):
                each.context.end_of_input()  # every context speaks what it has, then ends
                actions += self._advance(each, now)
            return actions
        context_id = message.context_id or DEFAULT_CONTEXT_ID
        live = self._contexts.get(context_id)
        predecessor = None
        if (live is not None and live.context.closing) or (live is None and context_id in self._finished_ids):
            if not message.text:
                return []  # closed already: a keep-alive, flush or close has nothing left to do
            # The id is reused: a new context, not linked to the old one, that speaks once the old
            # one has ended.
            predecessor, live = live, None
        if live is None:
            if is_keepalive(message):
                return []  # a connection keep-alive, or one for a context that does not exist
            if message.close_context and not message.flush:
                return [Send(FinalFrame(context_id))]
            live = self._open(context_id, message, now, after=predecessor)
        else:
            live.context.settings.check_unchanged(message, context_id)
        live.last_activity = now
        if message.text:
            live.context.receive(message.text, try_trigger=message.try_trigger_generation)
            if message.text.strip():
                live.asked = True
                self._update_waiting(live)
        if message.flush:
            live.context.flush()
        actions = []
        if message.close_context:
            live.context.close()
            if live.generation is not None and live.generation.cancelled and live.ticket is not None:
                # A barge-in: the piece being synthesized is dropped, its isFinal goes out at once.
                actions.append(Abandon(live.ticket))
                del self._tickets[live.ticket]
                live.ticket = None
        return actions + self._advance(live, now)

    def _open(
        self, context_id: str | None, message: ClientMessage, now: float, *, after: _Live | None = None
    ) -> _Live:
        if self.multi and len(self._live) >= MAX_CONTEXTS:
            raise ProtocolError(
                ErrorName.MAX_ACTIVE_CONVERSATIONS, MAX_CONTEXTS_MESSAGE, context_id=context_id
            )
        settings = ContextSettings.from_message(message)
        live = _Live(
            key=next(self._keys),
            context=Context(context_id, settings, auto_mode=self.params.auto_mode),
            lexicons=self._lexicons(settings, context_id),
            last_activity=now,
            after=after,
        )
        self._contexts[context_id] = live
        self._live.append(live)
        self._finished_ids.pop(context_id, None)
        return live

    def _lexicons(self, settings: ContextSettings, context_id: str | None) -> tuple[Lexicon, ...]:
        lexicons = []
        for locator in settings.dictionary_locators:
            try:
                lexicons.append(
                    self.rules.dictionaries.get(locator.pronunciation_dictionary_id, locator.version_id)
                )
            except KeyError as exc:
                raise ProtocolError(
                    ErrorName.PRONUNCIATION_DICTIONARY_NOT_FOUND, str(exc.args[0]), context_id=context_id
                ) from None
        return tuple(lexicons)

    # -- speaking ----------------------------------------------------------------------------

    def _advance(self, live: _Live, now: float) -> list[Action]:
        """Take the context as far as it can go without the engine: the next piece, or its end."""
        actions: list[Action] = []
        while not live.done and live.ticket is None and not live.finishing:
            if live.after is not None:
                if not live.after.done:
                    return actions
                live.after = None
            generation = live.generation
            if generation is None:
                generation = live.context.next_generation()
                if generation is None:
                    if live.context.finished:
                        actions += self._finish_audio(live, final=True)
                    return actions
                live.generation, live.rest = generation, generation.text
                self._speaking(live, on=True)
            if generation.cancelled:
                # What the encoder still holds is dropped, so after a barge-in nothing of that turn
                # reaches the client but its isFinal.
                self._end_generation(live, now)
                live.carry = None
                actions.append(ResetAudio(live.key))
                continue
            piece = self._cut_piece(live)
            if piece is not None:
                ticket = next(self._keys)
                live.ticket = ticket
                self._tickets[ticket] = live
                settings = live.context.settings
                actions.append(
                    Synthesize(
                        ticket,
                        live.key,
                        piece,
                        settings.voice_settings,
                        self.params.seed,
                        live.lexicons,
                        first=not live.voiced,
                    )
                )
                return actions
            self._end_generation(live, now)
            if live.context.idle and generation.covered:
                actions += self._finish_audio(live, final=False)  # a flushed turn is delivered whole
        return actions

    def _cut_piece(self, live: _Live) -> str | None:
        """The next piece of the current generation: its length follows the engine's pace and how
        many contexts share it now. Only a context that has not yet produced audio gets a short
        first piece: a cut inside a sentence is an audible break, worth it only while the listener
        waits. None when the generation has been handed out in full."""
        while live.rest.strip():
            max_chars = self.pacer.piece_chars(self.voice_id)
            first_max = None if live.voiced else self.pacer.first_piece_chars(self.voice_id)
            piece, live.rest = cut_piece(live.rest, max_chars, first_max_chars=first_max)
            if piece.strip():
                return piece
        return None

    def _end_generation(self, live: _Live, now: float) -> None:
        assert live.generation is not None
        live.context.done(live.generation)
        live.generation, live.rest = None, ""
        live.last_activity = now
        self._speaking(live, on=False)

    def _finish_audio(self, live: _Live, *, final: bool) -> list[Action]:
        live.finishing, live.final_after_finish = True, final
        return [FinishAudio(live.key)]

    def _speaking(self, live: _Live, *, on: bool) -> None:
        if live.speaking != on:
            live.speaking = on
            self.pacer.speaking += 1 if on else -1
        self._update_waiting(live)

    def _update_waiting(self, live: _Live) -> None:
        """The pacer counts the contexts whose listeners wait for their first audio: sent text
        (even below the schedule: streams started together reach it a few ms apart), no audio."""
        waiting = (live.speaking or live.asked) and not live.voiced and not live.done and not self.closed
        if live.waiting != waiting:
            live.waiting = waiting
            self.pacer.waiting += 1 if waiting else -1

    def _retire(self, live: _Live, now: float) -> list[Action]:
        """The context has sent isFinal: free it, let a successor of the same id begin."""
        live.done = True
        self._update_waiting(live)
        self._live.remove(live)
        context_id = live.context.id
        if self._contexts.get(context_id) is live:
            del self._contexts[context_id]
            self._finished_ids[context_id] = None
            while len(self._finished_ids) > REMEMBERED_FINISHED_IDS:
                self._finished_ids.popitem(last=False)
        actions: list[Action] = [Forget(live.key)]
        for each in list(self._live):
            if each.after is live:
                actions += self._advance(each, now)
        return actions + self._close_if_ended()

    def _close_if_ended(self) -> list[Action]:
        if self._input_ended and not self._live and not self.closed:
            self.closed = True
            return [Close()]
        return []

    def _fail(self, error: ProtocolError) -> list[Action]:
        actions: list[Action] = [Abandon(ticket) for ticket in self._tickets]
        self._tickets.clear()
        self.connection_lost()
        return [*actions, Fail(error)]

    # -- memory ------------------------------------------------------------------------------

    def _account(self) -> int:
        """Update this session's share of the server's text budget; return it."""
        held = 0
        for live in self._live:
            context = live.context
            held += len(context.buffer.text) + len(live.rest) + sum(len(g.text) for g in context.queue)
        if not self.closed:
            self.rules.budget.held += held - self._held
            self._held = held
        return held

    def _check_memory(self) -> None:
        held = self._account()
        if held > self.rules.max_buffered_chars:
            raise ProtocolError(
                ErrorName.MAX_CHARACTER_LIMIT_EXCEEDED,
                f"this connection holds more than {self.rules.max_buffered_chars} characters not yet "
                "spoken; send less text at once",
                code=CloseCode.MESSAGE_TOO_BIG,
            )
        budget = self.rules.budget
        if budget.held > budget.limit:
            raise ProtocolError(
                ErrorName.SYSTEM_BUSY,
                "the server holds too much text not yet spoken; try again later",
                code=CloseCode.TRY_AGAIN_LATER,
            )

    # -- auth and voices ---------------------------------------------------------------------

    def _verify_message_key(self, message: ClientMessage) -> None:
        key = message.api_key if message.api_key is not None else bearer(message.authorization)
        if key is None:
            raise AuthError("No API key was provided: send it in the xi-api-key header or the first message.")
        self._verify(key)

    def _verify(self, key: str) -> None:
        if not keys_match(key, self.rules.api_key or ""):
            raise AuthError("Invalid API key.")
        self.authenticated = True

    def _resolve_voice(self, voice_id: str) -> str:
        """The voice that speaks for a requested id: itself or the fallback voice, and for a
        multilingual voice the one its language_code picks."""
        served = self.rules.served_voices
        if voice_id not in served:
            if self.rules.fallback_voice is None:
                message = f"unknown voice {voice_id!r}; {LIST_VOICES_HINT}"
                raise ProtocolError(ErrorName.VOICE_NOT_FOUND, message)
            voice_id = self.rules.fallback_voice
            self.fallback_used = True
        code = self.params.language_code
        if code is None:
            return voice_id
        pick = self.rules.language_voices.get(voice_id)
        if pick is None:
            # As the live service does: a single-language voice ignores another language_code.
            log.debug("language_code %r ignored: voice %r speaks one language", code, voice_id)
            return voice_id
        picked = pick(code)
        if picked is None:
            message = (
                f"language_code {code!r} is not a language the {voice_id} voice speaks; list them with "
                f"`elevtts voices --json` or GET /v1/voices (its verified_languages)"
            )
            raise ProtocolError(ErrorName.INVALID_REQUEST, message)
        return picked
