"""The local server: the stream-input and multi-stream-input WebSocket endpoints, and `GET /v1/voices`.

This module moves data between sockets and the pure core (`protocol`, `context`, `buffer`):
it parses each message, applies it to the context, runs one worker task per context that
synthesizes its generations piece by piece off the event loop, and sends the frames.

Close codes: 1000 after `isFinal` (single stream) or `close_socket` (multi); 1008 for bad input,
auth, inactivity and refused requests, after a JSON error frame; 1009 for an oversized message;
1011 when the engine fails (logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from elevtts.chunking import synthesis_pieces
from elevtts.protocol import (
    DEFAULT_CONTEXT_ID,
    MAX_CONTEXTS,
    MAX_CONTEXTS_MESSAGE,
    Alignment,
    AudioFrame,
    AuthError,
    ClientMessage,
    CloseCode,
    ErrorFrame,
    FinalFrame,
    ProtocolError,
    StreamParams,
    inactivity_message,
    parse_client_message,
)
from elevtts.redact import protect_websockets_logs
from elevtts.server.alignment import frames
from elevtts.server.context import Context, ContextSettings, Generation, is_keepalive
from elevtts.server.dictionary import DictionaryStore, Lexicon
from elevtts.server.encode import Encoder, OutputFormat, parse_output_format
from elevtts.server.engines import Engine, SynthesisOptions, UnknownVoiceError, available_voices, get_engine
from elevtts.server.remap import remap_alignments

log = logging.getLogger("elevtts.server")

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # what the live service accepts
MAX_FRAME_SECONDS = 1.0  # audio per frame: keeps every frame far below the SDK's 1 MiB limit
# A piece is sized to take about PIECE_BUDGET_S to synthesize, a budget shared by every context
# waiting for the engine: a context's frames then stay well under 3 s apart (pipecat gives up on a
# context after 3 s without audio), and a barge-in waits for one short piece at most.
PIECE_BUDGET_S = 1.5
FIRST_PIECE_CHARS = 80  # the first piece of a generation is short, so its audio comes fast
MIN_PIECE_CHARS, MAX_PIECE_CHARS = 40, 300
WARM_UP_TEXTS = ("Warming up.", "One moment.", "The voice is getting ready to speak, it takes only a moment.")
SINGLE_PATH, MULTI_PATH = "stream-input", "multi-stream-input"
MODELS_WITHOUT_WEBSOCKET = frozenset({"eleven_v3"})


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    api_key: str | None = field(default=None, repr=False)
    voices: tuple[str, ...] = ()  # served voice ids; empty = every available voice
    dictionaries: DictionaryStore = field(default_factory=DictionaryStore)
    synthesis_slots: int = 1  # pieces synthesized at once, shared fairly by every context
    ssl_context: ssl.SSLContext | None = None
    max_message_bytes: int = MAX_MESSAGE_BYTES  # larger client messages are refused with 1009
    fallback_voice: str | None = None  # speaks any unknown voice_id (agents configured for the service)


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

    def piece_chars(self, budget_s: float) -> int:
        """The longest piece that should be synthesized within `budget_s`."""
        cost = self.cost()
        if cost is None or cost[1] <= 0:
            return MAX_PIECE_CHARS
        fixed, per_char = cost
        return int(min(MAX_PIECE_CHARS, max(MIN_PIECE_CHARS, (budget_s - fixed) / per_char)))


class StreamServer:
    """The server's shared state: engines, the synthesis slots, the open connections."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.slots = asyncio.Semaphore(config.synthesis_slots)
        self.voice_ids = config.voices or tuple(v.voice_id for v in available_voices())
        self.paces: dict[str, Pace] = {}
        self.speaking = 0  # contexts with a generation to speak, on every connection

    def pace(self, voice_id: str) -> Pace:
        return self.paces.setdefault(voice_id, Pace())

    def piece_chars(self, voice_id: str) -> int:
        """How long the next piece may be: the budget is shared by every context that is speaking."""
        sharers = max(1, math.ceil(self.speaking / self.config.synthesis_slots))
        return self.pace(voice_id).piece_chars(PIECE_BUDGET_S / sharers)

    def resolve_voice(self, voice_id: str) -> str:
        """The served voice for a requested id: itself, or the fallback voice if one is set."""
        if voice_id in self.voice_ids:
            return voice_id
        fallback = self.config.fallback_voice
        if fallback is None:
            raise UnknownVoiceError(voice_id, self.voice_ids)
        log.info("voice %r is not served here: speaking it with %r", voice_id, fallback)
        return fallback

    def engine(self, voice_id: str) -> Engine:
        return get_engine(self.resolve_voice(voice_id))

    async def preload(self, voice_ids: Iterable[str] | None = None) -> None:
        """Load voices now (default: every served one), so the first request does not pay for it.

        Each voice speaks a few texts: the first run warms the engine up, the others give a first
        measure of its pace.
        """
        for voice_id in self.voice_ids if voice_ids is None else voice_ids:
            engine = await asyncio.to_thread(get_engine, voice_id)
            for index, text in enumerate(WARM_UP_TEXTS):
                started = time.perf_counter()
                await asyncio.to_thread(engine.synthesize, text, SynthesisOptions())
                if index:
                    self.pace(voice_id).record(len(text), time.perf_counter() - started)

    # -- HTTP ------------------------------------------------------------------------------

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path.rstrip("/")
        if path == "/v1/voices":
            voices = [v.to_json() for v in available_voices() if v.voice_id in self.voice_ids]
            return _json_response(connection, HTTPStatus.OK, {"voices": voices})
        if path in ("", "/health"):
            return _json_response(connection, HTTPStatus.OK, {"status": "ok"})
        route = _route(request.path)
        if route is None:
            return _json_response(
                connection,
                HTTPStatus.NOT_FOUND,
                {"detail": {"status": "not_found", "message": "no such path"}},
            )
        query = dict(parse_qsl(urlsplit(request.path).query))
        if query.get("model_id") in MODELS_WITHOUT_WEBSOCKET:
            message = f"model {query['model_id']} is not available over WebSockets"
            return _json_response(
                connection,
                HTTPStatus.FORBIDDEN,
                {"detail": {"status": "model_not_allowed", "message": message}},
            )
        return None

    # -- WebSocket -------------------------------------------------------------------------

    async def handle(self, connection: ServerConnection) -> None:
        route = _route(connection.request.path if connection.request else "")
        if route is None:  # process_request refused it already
            return
        voice_id, multi = route
        stream = Stream(self, connection, voice_id, multi=multi)
        try:
            await stream.run()
        except ProtocolError as exc:
            await stream.fail(exc)
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("internal error on %s", _peer(connection))
            await stream.fail(
                ProtocolError(
                    "internal_error",
                    "We are sorry, something went wrong. You are not charged for this request.",
                    code=CloseCode.INTERNAL_ERROR,
                )
            )
        finally:
            await stream.stop()


def _json_response(connection: ServerConnection, status: HTTPStatus, data: Any) -> Response:
    response = connection.respond(status, json.dumps(data) + "\n")
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response


def _route(path: str) -> tuple[str, bool] | None:
    """`(voice_id, multi)` for the two endpoints, None for any other path."""
    parts = urlsplit(path).path.strip("/").split("/")
    if len(parts) == 4 and parts[:2] == ["v1", "text-to-speech"] and parts[3] in (SINGLE_PATH, MULTI_PATH):
        return unquote(parts[2]), parts[3] == MULTI_PATH
    return None


def _peer(connection: ServerConnection) -> str:
    try:
        host, port, *_ = connection.remote_address
        return f"{host}:{port}"
    except (TypeError, ValueError):
        return "client"


def _bearer(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value[7:].strip() if value.lower().startswith("bearer ") else value


class Stream:
    """One WebSocket connection: a single stream (one context) or up to five contexts."""

    def __init__(
        self, server: StreamServer, connection: ServerConnection, voice_id: str, *, multi: bool
    ) -> None:
        self.server = server
        self.connection = connection
        self.voice_id = voice_id
        self.multi = multi
        self.contexts: dict[str | None, ContextWorker] = {}  # the newest context of each id
        self.workers: list[ContextWorker] = []  # every context not yet done (a reused id may have two)
        self.closing = False  # the client ended its input: speak what is left, then close
        self.failed = False
        self.authenticated = server.config.api_key is None
        self.last_message = time.monotonic()
        self._watchdog: asyncio.Task[None] | None = None
        self.params = StreamParams()
        self.engine: Engine
        self.output_format: OutputFormat

    async def run(self) -> None:
        request = self.connection.request
        assert request is not None
        self.params = StreamParams.from_query(dict(parse_qsl(urlsplit(request.path).query)))
        self.output_format = parse_output_format(self.params.output_format)
        try:
            self.voice_id = self.server.resolve_voice(self.voice_id)
            self.engine = await asyncio.to_thread(self.server.engine, self.voice_id)
        except UnknownVoiceError as exc:
            raise ProtocolError("voice_not_found", str(exc)) from None
        self._check_handshake_key(request.headers)
        self._watchdog = asyncio.create_task(self._watch_inactivity())
        first = True
        async for raw in self.connection:
            self.last_message = time.monotonic()
            message = parse_client_message(raw)
            if first:
                self._check_message_key(message)
                first = False
            if self.multi:
                await self._on_multi(message)
            else:
                await self._on_single(message)
            if self.closing:
                break
        if self.closing and not self.failed:
            await self._drain()

    # -- auth ------------------------------------------------------------------------------

    def _check_handshake_key(self, headers: Headers) -> None:
        if self.authenticated:
            return
        key = headers.get("xi-api-key")
        if key is None:
            key = _bearer(headers.get("Authorization")) or _bearer(self.params.authorization)
        if key is not None:
            self._verify(key)

    def _check_message_key(self, message: ClientMessage) -> None:
        if self.authenticated:
            return
        key = message.api_key if message.api_key is not None else _bearer(message.authorization)
        if key is None:
            raise AuthError("No API key was provided: send it in the xi-api-key header or the first message.")
        self._verify(key)

    def _verify(self, key: str) -> None:
        expected = self.server.config.api_key or ""
        if not hmac.compare_digest(key.strip().encode(), expected.encode()):
            raise AuthError("Invalid API key.")
        self.authenticated = True

    # -- single stream -----------------------------------------------------------------------

    async def _on_single(self, message: ClientMessage) -> None:
        worker = self.contexts.get(None)
        if worker is None:
            worker = self._open(None, message)
        else:
            worker.context.settings.check_unchanged(message, None)
        worker.touch()
        text = message.text
        if text == "":
            worker.context.end_of_input()
            self.closing = True
        elif text is not None:
            worker.context.receive(text, try_trigger=message.try_trigger_generation)
        if message.flush:
            worker.context.flush()
        worker.wake()

    # -- multi-context -----------------------------------------------------------------------

    async def _on_multi(self, message: ClientMessage) -> None:
        if message.close_socket:
            for each in self.contexts.values():
                each.context.end_of_input()  # every context speaks what it has, then ends
                each.wake()
            self.closing = True
            return
        context_id = message.context_id or DEFAULT_CONTEXT_ID
        worker: ContextWorker | None = self.contexts.get(context_id)
        predecessor = None
        if worker is not None and worker.context.closing:
            if not message.text:
                return  # closed already: a keep-alive, flush or close has nothing left to do
            # The id is reused: a new context, not linked to the old one, that speaks once the old
            # one has ended. The reader goes on meanwhile, so other contexts are not held up.
            predecessor, worker = (None if worker.done else worker), None
        if worker is None:
            if is_keepalive(message):
                return  # a connection keep-alive, or one for a context that does not exist
            if message.close_context and not message.flush:
                await self._send(FinalFrame(context_id).serialize())
                return
            worker = self._open(context_id, message, after=predecessor)
        else:
            worker.context.settings.check_unchanged(message, context_id)
        worker.touch()
        if message.text:
            worker.context.receive(message.text, try_trigger=message.try_trigger_generation)
        if message.flush:
            worker.context.flush()
        if message.close_context:
            worker.context.close()
        worker.wake()

    def _open(
        self, context_id: str | None, message: ClientMessage, *, after: ContextWorker | None = None
    ) -> ContextWorker:
        self.workers = [w for w in self.workers if not w.done]
        if self.multi and len(self.workers) >= MAX_CONTEXTS:
            raise ProtocolError("max_active_conversations", MAX_CONTEXTS_MESSAGE, context_id=context_id)
        settings = ContextSettings.from_message(message)
        lexicons = self._lexicons(settings, context_id)
        context = Context(context_id, settings, auto_mode=self.params.auto_mode)
        worker = ContextWorker(self, context, lexicons, after=after)
        self.contexts[context_id] = worker
        self.workers.append(worker)
        return worker

    def _lexicons(self, settings: ContextSettings, context_id: str | None) -> list[Lexicon]:
        lexicons = []
        for locator in settings.dictionary_locators:
            try:
                lexicons.append(
                    self.server.config.dictionaries.get(
                        locator.pronunciation_dictionary_id, locator.version_id
                    )
                )
            except KeyError as exc:
                raise ProtocolError(
                    "pronunciation_dictionary_not_found", str(exc.args[0]), context_id=context_id
                ) from None
        return lexicons

    # -- inactivity ------------------------------------------------------------------------

    async def _watch_inactivity(self) -> None:
        timeout = self.params.inactivity_timeout
        while True:
            await asyncio.sleep(min(0.25, timeout / 4))
            now = time.monotonic()
            for worker in list(self.contexts.values()):
                if worker.expired(now, timeout):
                    await self._expire(worker, timeout)
                    if not self.multi:
                        return
            active = any(not w.done for w in self.workers)
            if not active and now - self.last_message > timeout:
                await self.fail(_inactivity_error(timeout, None))
                return

    async def _expire(self, worker: ContextWorker, timeout: float) -> None:
        context_id = worker.context.id
        if not self.multi:
            await self.fail(_inactivity_error(timeout, None))
            return
        log.info("context %s idle for %gs: closing it", context_id, timeout)
        worker.context.close()
        # The error goes out before the worker can send the context's isFinal.
        await self._send(ErrorFrame.from_error(_inactivity_error(timeout, context_id)).serialize())
        worker.wake()

    # -- output ----------------------------------------------------------------------------

    async def _send(self, frame: str) -> None:
        await self.connection.send(frame)

    async def _drain(self) -> None:
        """Let every context speak what it must, then close normally."""
        workers = list(self.workers)
        if workers:
            await asyncio.gather(*(w.task for w in workers))
        await self.connection.close(CloseCode.NORMAL)

    async def fail(self, exc: ProtocolError) -> None:
        """Send the JSON error frame, then close with its code. The server goes on serving others."""
        self.failed = True
        log.info("closing %s: %s (%s)", _peer(self.connection), exc.error, exc.message)
        with contextlib.suppress(ConnectionClosed):
            await self.connection.send(ErrorFrame.from_error(exc).serialize())
        await self.connection.close(exc.code, exc.reason[:120])

    async def stop(self) -> None:
        """Cancel every task this connection started."""
        tasks = [w.task for w in self.workers]
        if self._watchdog is not None:
            tasks.append(self._watchdog)
        current = asyncio.current_task()
        for task in tasks:
            if task is not current:
                task.cancel()
        await asyncio.gather(*(t for t in tasks if t is not current), return_exceptions=True)


def _inactivity_error(timeout: float, context_id: str | None) -> ProtocolError:
    return ProtocolError(
        "input_timeout_exceeded",
        inactivity_message(timeout, json_form=True),
        reason=inactivity_message(timeout, json_form=False),
        context_id=context_id,
    )


class ContextWorker:
    """Synthesizes one context's generations in order and sends its frames."""

    def __init__(
        self, stream: Stream, context: Context, lexicons: list[Lexicon], *, after: ContextWorker | None = None
    ) -> None:
        self.stream = stream
        self._after = after  # the earlier context of the same id, which must end first
        self.context = context
        self.lexicons = lexicons
        self.last_activity = time.monotonic()
        self.encoder = Encoder(stream.output_format, stream.engine.voice.sample_rate)
        voice = context.settings.voice_settings
        self.options = SynthesisOptions(speed=voice.speed, stability=voice.stability, seed=stream.params.seed)
        self.done = False
        self.finished_event = asyncio.Event()
        self._wake = asyncio.Event()
        self.sample_rate = stream.engine.voice.sample_rate
        self._carry: tuple[Alignment, Alignment, int] | None = None  # alignment whose audio the encoder holds
        self.task = asyncio.create_task(self._run())

    def wake(self) -> None:
        self._wake.set()

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    def expired(self, now: float, timeout: float) -> bool:
        """Idle for longer than the timeout (time spent speaking does not count)."""
        context = self.context
        return not context.closing and context.idle and now - self.last_activity > timeout

    async def _run(self) -> None:
        try:
            if self._after is not None:
                await self._after.finished_event.wait()
                self._after = None
            while True:
                generation = self.context.next_generation()
                if generation is None:
                    if self.context.finished:
                        break
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                await self._speak(generation)
                self.context.done(generation)
                if generation.cancelled:
                    # A barge-in: what the encoder still holds is dropped, so after the close
                    # nothing of that turn reaches the client but its isFinal.
                    self._carry = None
                    self.encoder.finish()
                elif self.context.idle and generation.covered:
                    await self._finish_encoding()  # a flushed turn is delivered whole
                self.touch()
            await self._finish_encoding()
            await self.stream._send(FinalFrame(self.context.id).serialize())
        except ConnectionClosed:
            pass
        finally:
            self.done = True
            self.finished_event.set()

    async def _speak(self, generation: Generation) -> None:
        server, voice_id = self.stream.server, self.stream.voice_id
        rest, first = generation.text, True
        server.speaking += 1
        try:
            while rest.strip():
                if generation.cancelled:
                    return
                # Cut one piece at a time: its length follows the engine's pace and how many
                # contexts share it now.
                piece, rest = _next_piece(rest, server.piece_chars(voice_id), first=first)
                first = False
                if not piece.strip():
                    continue
                sliced = await self._synthesize_unless_cancelled(generation, piece)
                if sliced is None:
                    return
                # Each frame is encoded and sent as soon as it exists: the first audio does not wait
                # for the rest of the piece.
                for pcm, original, normalized in sliced:
                    if generation.cancelled:
                        return
                    audio = await asyncio.to_thread(self.encoder.encode, pcm)
                    await self._emit(audio, original, normalized, round(len(pcm) * 1000 / self.sample_rate))
        finally:
            server.speaking -= 1

    async def _synthesize_unless_cancelled(
        self, generation: Generation, piece: str
    ) -> list[tuple[Any, Alignment, Alignment]] | None:
        """Synthesize one piece in a slot; None as soon as the generation is cancelled (barge-in).

        Neither the wait for a slot nor the synthesis holds a cancelled context back: its isFinal
        goes out at once. A cancelled piece's thread still runs to its end and keeps the slot
        until then, so the engine is never oversubscribed.
        """
        slots = self.stream.server.slots
        request = asyncio.ensure_future(slots.acquire())
        try:
            granted = await self._unless_cancelled(request, generation)
        except BaseException:
            _give_up(request, slots)
            raise
        if not granted:
            _give_up(request, slots)
            return None
        started = time.perf_counter()
        job = asyncio.ensure_future(asyncio.to_thread(self._synthesize, piece))

        def finished(job: asyncio.Future[Any]) -> None:
            slots.release()
            if not job.cancelled() and job.exception() is None:
                self.stream.server.pace(self.stream.voice_id).record(
                    len(piece), time.perf_counter() - started
                )

        job.add_done_callback(finished)
        return job.result() if await self._unless_cancelled(job, generation) else None

    async def _unless_cancelled(self, job: asyncio.Future[Any], generation: Generation) -> bool:
        """Wait for `job`: True when it is done, False as soon as the generation is cancelled."""
        while not job.done():
            self._wake.clear()  # any message wakes the worker; only a cancellation ends the wait
            if generation.cancelled:
                return False
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait((job, woken), return_when=asyncio.FIRST_COMPLETED)
            finally:
                woken.cancel()
        return True

    def _synthesize(self, piece: str) -> list[tuple[Any, Alignment, Alignment]]:
        """One piece as PCM frames with their alignments (runs in a worker thread)."""
        spoken = piece
        for lexicon in self.lexicons:
            spoken = lexicon.apply(spoken)
        speech = self.stream.engine.synthesize(spoken, self.options)
        sliced = frames(spoken, speech, max_frame_s=MAX_FRAME_SECONDS)
        normalized = [alignment for _, alignment in sliced]
        originals = normalized if spoken == piece else remap_alignments(normalized, spoken, piece)
        return [(pcm, original, n) for (pcm, n), original in zip(sliced, originals, strict=True)]

    async def _emit(self, audio: bytes, original: Alignment, normalized: Alignment, duration_ms: int) -> None:
        if self._carry is not None:
            # The encoder held back the previous frame's audio: it comes out with this one.
            carried_original, carried_normalized, carried_ms = self._carry
            original = _join(carried_original, original, carried_ms)
            normalized = _join(carried_normalized, normalized, carried_ms)
            duration_ms += carried_ms
            self._carry = None
        if not audio:
            self._carry = (original, normalized, duration_ms)
            return
        await self._send_frame(audio, original, normalized)

    async def _finish_encoding(self) -> None:
        """Flush the encoder: the audio it still holds goes out with any alignment carried."""
        tail = await asyncio.to_thread(self.encoder.finish)
        original, normalized, _ = self._carry or (Alignment(), Alignment(), 0)
        self._carry = None
        await self._send_frame(tail, original, normalized)

    async def _send_frame(self, audio: bytes, original: Alignment, normalized: Alignment) -> None:
        if not audio and not original.chars:
            return
        frame = AudioFrame(audio, original, normalized, self.context.id)
        await self.stream._send(frame.serialize())


def _give_up(request: asyncio.Future[Any], slots: asyncio.Semaphore) -> None:
    """Withdraw a slot request: cancel it, or give back the slot it got meanwhile."""
    if not request.cancel() and not request.cancelled() and request.exception() is None:
        slots.release()


def _next_piece(text: str, max_chars: int, *, first: bool) -> tuple[str, str]:
    """The next piece to synthesize (cut as `synthesis_pieces` cuts) and the text after it."""
    window = text[: 4 * max_chars + FIRST_PIECE_CHARS]  # enough to find the piece, cheap on long text
    first_max = min(FIRST_PIECE_CHARS, max_chars) if first else max_chars
    pieces = synthesis_pieces(window, first_max_chars=first_max, max_chars=max_chars)
    piece = pieces[0] if pieces else window
    return piece, text[len(piece) :]


def _join(first: Alignment, second: Alignment, offset_ms: int) -> Alignment:
    """Alignments of two consecutive frames as one; the second starts `offset_ms` in."""
    return Alignment(
        first.chars + second.chars,
        first.char_start_times_ms + tuple(t + offset_ms for t in second.char_start_times_ms),
        first.char_durations_ms + second.char_durations_ms,
    )


# ---------------------------------------------------------------------------------------------
# Running the server


async def start_server(config: ServerConfig, *, preload: bool = True) -> tuple[Server, StreamServer]:
    """Start listening (port 0 picks a free port); returns the websockets server and our state."""
    protect_websockets_logs()
    app = StreamServer(config)
    if preload:
        await app.preload()
    server = await serve(
        app.handle,
        config.host,
        config.port,
        process_request=app.process_request,
        max_size=config.max_message_bytes,
        ssl=config.ssl_context,
        server_header="elevtts",
        compression=None,  # base64 audio barely compresses; deflate would only cost CPU and latency
    )
    return server, app


def server_url(server: Server, *, tls: bool = False) -> str:
    host, port = next(iter(server.sockets)).getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"{'wss' if tls else 'ws'}://{host}:{port}"


async def serve_forever(
    config: ServerConfig, *, ready: Callable[[str], Awaitable[None] | None] | None = None
) -> None:
    """Run until cancelled (Ctrl-C / SIGTERM are turned into a cancel by the caller)."""
    server, _ = await start_server(config)
    async with server:
        if ready is not None:
            result = ready(server_url(server, tls=config.ssl_context is not None))
            if asyncio.iscoroutine(result):
                await result
        await server.serve_forever()
