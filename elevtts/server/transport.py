"""The WebSocket transport: bytes and time only, around the pure `Session`.

Each connection reads frames and hands them to its session, performs the actions it returns
(frames go out through one queue, in the order the session decided them), runs the engine and
the encoder off the event loop, and calls `tick` as time passes. It knows no protocol rule: those
live in `session` (connection rules), `routes` (which path is what) and `pacing`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from elevtts.protocol import close_reason
from elevtts.redact import protect_websockets_logs
from elevtts.server.alignment import TimedAlignment, frames
from elevtts.server.config import ServerConfig
from elevtts.server.encode import Encoder, opus_available
from elevtts.server.engines import Engine, SynthesisOptions, available_voices, get_engine, language_voices
from elevtts.server.pacing import Pacer
from elevtts.server.remap import remap_alignments
from elevtts.server.routes import JsonResponse, route
from elevtts.server.session import (
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

log = logging.getLogger("elevtts.server")

MAX_FRAME_SECONDS = 1.0  # audio per frame: keeps every frame far below the SDK's 1 MiB limit
WARM_UP_TEXTS = ("Warming up.", "One moment.", "The voice is getting ready to speak, it takes only a moment.")

Frame = tuple[Any, TimedAlignment]  # PCM samples and their alignments


class StreamServer:
    """The server's shared state: the session rules, the engine slots, the pace of each voice."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.slots = asyncio.Semaphore(config.synthesis_slots)
        self.voice_ids = config.voices or tuple(v.voice_id for v in available_voices())
        self.pacer = Pacer(synthesis_slots=config.synthesis_slots)
        self.rules = SessionRules(
            served_voices=self.voice_ids,
            fallback_voice=config.fallback_voice,
            api_key=config.api_key,
            dictionaries=config.dictionaries,
            max_message_bytes=config.max_message_bytes,
            max_buffered_chars=config.max_buffered_chars,
            budget=TextBudget(config.max_total_buffered_chars),
            language_voices=language_voices(),
            opus_encoder=opus_available(),
        )
        self.connections = 0
        # Sessions opened at the handshake, until their handler takes them (weak: a handshake
        # that fails after process_request leaves nothing behind).
        self._opening: weakref.WeakKeyDictionary[ServerConnection, tuple[Session, list[Action]]] = (
            weakref.WeakKeyDictionary()
        )

    async def preload(self, voice_ids: Iterable[str] | None = None) -> None:
        """Load voices now (default: every served one), so the first request does not pay for it.

        Each voice speaks a few texts: the first run warms the engine up, the others give a first
        measure of its pace. By default a voice that shares another's engine (the espeak-ng
        languages) is left to load on first use, which takes a millisecond.
        """
        if voice_ids is None:
            shared = {v.voice_id for v in available_voices() if v.shares_engine_with is not None}
            voice_ids = [v for v in self.voice_ids if v not in shared]
        for voice_id in voice_ids:
            engine = await asyncio.to_thread(get_engine, voice_id)
            for index, text in enumerate(WARM_UP_TEXTS):
                started = time.perf_counter()
                await asyncio.to_thread(engine.synthesize, text, SynthesisOptions())
                if index:
                    self.pacer.pace(voice_id).record(len(text), time.perf_counter() - started)

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """HTTP before the upgrade: answer the JSON routes, let the WebSocket endpoints through."""

        def voices() -> list[dict[str, Any]]:
            return [v.to_json() for v in available_voices() if v.voice_id in self.voice_ids]

        # Counted from the handshake, so the limit holds under a burst of new connections.
        full = self.connections + len(self._opening) >= self.config.max_connections
        target = route(request.path, voices=voices, full=full)
        if not isinstance(target, JsonResponse):
            # The session opens here, before any frame is read, so that the size limit it sets
            # (small until the key is known) applies to the very first message.
            session = Session(self.rules, self.pacer, voice_id=target.voice_id, multi=target.multi)
            opened = session.open(
                target.query,
                api_key_header=request.headers.get("xi-api-key"),
                authorization_header=request.headers.get("Authorization"),
                now=asyncio.get_running_loop().time(),
            )
            connection.protocol.max_message_size = session.max_message_bytes
            self._opening[connection] = (session, opened)
            return None
        response = connection.respond(target.status, json.dumps(target.body) + "\n")
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "application/json"
        return response

    async def handle(self, connection: ServerConnection) -> None:
        opening = self._opening.pop(connection, None)
        if opening is None:  # process_request answered it already
            return
        session, opened = opening
        self.connections += 1
        try:
            await Connection(self, connection, session).run(opened)
        finally:
            self.connections -= 1


class _Job:
    """One piece on its way through the engine and the encoder."""

    def __init__(self) -> None:
        self.abandoned = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class Connection:
    """Drives one session over one WebSocket connection."""

    def __init__(self, server: StreamServer, connection: ServerConnection, session: Session) -> None:
        self.server = server
        self.connection = connection
        self.session = session
        self.engine: Engine | None = None
        self.outbox: asyncio.Queue[Send | Fail | Close] = asyncio.Queue()
        self.encoders: dict[int, Encoder] = {}
        self.jobs: dict[int, _Job] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self._loop = asyncio.get_running_loop()

    def now(self) -> float:
        return self._loop.time()

    async def run(self, opened: list[Action]) -> None:
        """`opened`: what the session said to the handshake."""
        sender = asyncio.create_task(self._send_all())
        try:
            self.perform(opened)
            if self.session.fallback_used:
                log.info(
                    "voice %r is not served here: speaking it with %r",
                    self.session.requested_voice,
                    self.session.voice_id,
                )
            if not self.session.closed:
                self.engine = await self._guard(asyncio.to_thread(get_engine, self.session.voice_id))
                self._spawn(self._tick())
            await self._read_all()
            if self.session.closed:  # our close is under way: let the sender finish it
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(sender), self.connection.close_timeout or 10)
        finally:
            self.session.connection_lost()
            for task in [sender, *self.tasks]:
                task.cancel()
            await asyncio.gather(sender, *self.tasks, return_exceptions=True)

    async def _read_all(self) -> None:
        """Every frame goes to the session (which discards input it no longer wants), so a close
        handshake never waits behind queued input."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                raw = await self.connection.recv(decode=False)  # the session checks the UTF-8
                self.perform(self.session.receive(raw, now=self.now()))

    async def _tick(self) -> None:
        while not self.session.closed:
            await asyncio.sleep(self.session.tick_interval)
            self.perform(self.session.tick(now=self.now()))

    # -- actions -----------------------------------------------------------------------------

    def perform(self, actions: list[Action]) -> None:
        # The size limit follows the session: small until the key is known.
        self.connection.protocol.max_message_size = self.session.max_message_bytes
        for action in actions:
            if isinstance(action, Send | Close):
                self.outbox.put_nowait(action)
            elif isinstance(action, Fail):
                self._discard_outbox()  # the error goes out at once
                self.outbox.put_nowait(action)
            elif isinstance(action, Synthesize):
                job = self.jobs[action.ticket] = _Job()
                job.task = self._spawn(self._synthesize(action, job))
            elif isinstance(action, Abandon):
                abandoned = self.jobs.pop(action.ticket, None)
                if abandoned is not None:
                    abandoned.abandoned.set()
            elif isinstance(action, FinishAudio):
                self._spawn(self._finish_audio(action.key))
            elif isinstance(action, ResetAudio | Forget):
                self.encoders.pop(action.key, None)  # a fresh encoder starts the next audio

    def _discard_outbox(self) -> None:
        while not self.outbox.empty():
            self.outbox.get_nowait()
            self.outbox.task_done()

    async def _send_all(self) -> None:
        while True:
            action = await self.outbox.get()
            try:
                if isinstance(action, Send):
                    await self.connection.send(action.frame.serialize())
                elif isinstance(action, Fail):
                    error = action.error
                    log.info("closing %s: %s (%s)", _peer(self.connection), error.error, error.message)
                    with contextlib.suppress(ConnectionClosed):
                        await self.connection.send(action.frame.serialize())
                    await self.connection.close(error.code, close_reason(error.reason))
                    return
                else:
                    await self.connection.close(action.code)
                    return
            except ConnectionClosed:
                return
            finally:
                self.outbox.task_done()

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self._internal_error(error)

    async def _guard(self, awaitable: Awaitable[Any]) -> Any:
        try:
            return await awaitable
        except (asyncio.CancelledError, ConnectionClosed):
            raise
        except Exception as error:
            self._internal_error(error)
            return None

    def _internal_error(self, error: BaseException) -> None:
        """An unexpected failure ends this connection with 1011 (logged); the server goes on."""
        if isinstance(error, ConnectionClosed):
            return
        log.error("internal error on %s", _peer(self.connection), exc_info=error)
        self.perform(self.session.internal_error())

    def _encoder(self, key: int) -> Encoder:
        if key not in self.encoders:
            assert self.engine is not None
            self.encoders[key] = Encoder(self.session.output_format, self.engine.voice.sample_rate)
        return self.encoders[key]

    # -- the engine --------------------------------------------------------------------------

    async def _synthesize(self, action: Synthesize, job: _Job) -> None:
        """One piece in a slot. Neither the wait for a slot nor the synthesis holds an abandoned
        piece back; its thread still runs to its end and keeps the slot until then, so the engine
        is never oversubscribed."""
        slots = self.server.slots
        if not await self._until(asyncio.ensure_future(slots.acquire()), job, release=slots.release):
            return
        started = time.perf_counter()
        synthesis = asyncio.ensure_future(asyncio.to_thread(self._pieces, action))

        def finished(done: asyncio.Future[Any]) -> None:
            slots.release()
            if not done.cancelled() and done.exception() is None:
                pace = self.server.pacer.pace(self.session.voice_id)
                pace.record(len(action.text), time.perf_counter() - started)

        synthesis.add_done_callback(finished)
        if not await self._until(synthesis, job):
            return
        encoder = self._encoder(action.key)
        for pcm, timing in synthesis.result():
            # Each frame is encoded and sent as soon as it exists: the first audio does not wait
            # for the rest of the piece.
            audio = await asyncio.to_thread(encoder.encode, pcm)
            if job.abandoned.is_set():
                return
            self.perform(self.session.audio(action.ticket, audio, timing, now=self.now()))
            await self.outbox.join()  # a slow reader slows its own synthesis, nobody else's
        self.jobs.pop(action.ticket, None)
        self.perform(self.session.piece_done(action.ticket, now=self.now()))

    async def _until(
        self, future: asyncio.Future[Any], job: _Job, *, release: Callable[[], None] | None = None
    ) -> bool:
        """Wait for `future`: True when it is done, False as soon as the job is abandoned."""
        abandoned = asyncio.ensure_future(job.abandoned.wait())
        try:
            await asyncio.wait((future, abandoned), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # The connection is gone: a slot acquired just before the cancel goes back too
            # (else it leaks, and every later piece of every connection waits for it forever).
            _withdraw(future, release)
            raise
        finally:
            abandoned.cancel()
        if not future.done() or job.abandoned.is_set():
            _withdraw(future, release)
        return future.done() and not future.cancelled() and not job.abandoned.is_set()

    def _pieces(self, action: Synthesize) -> list[Frame]:
        """One piece as PCM frames with their alignments (runs in a worker thread)."""
        assert self.engine is not None
        spoken = action.text
        for lexicon in action.lexicons:
            spoken = lexicon.apply(spoken)
        voice = action.voice_settings
        options = SynthesisOptions(speed=voice.speed, stability=voice.stability, seed=action.seed)
        speech = self.engine.synthesize(spoken, options)
        sliced = frames(spoken, speech, max_frame_s=MAX_FRAME_SECONDS)
        normalized = [alignment for _, alignment in sliced]
        originals = normalized if spoken == action.text else remap_alignments(normalized, spoken, action.text)
        rate = speech.sample_rate
        return [
            (pcm, TimedAlignment(original, n, round(len(pcm) * 1000 / rate)))
            for (pcm, n), original in zip(sliced, originals, strict=True)
        ]

    async def _finish_audio(self, key: int) -> None:
        encoder = self.encoders.get(key)
        tail = await asyncio.to_thread(encoder.finish) if encoder is not None else b""
        self.perform(self.session.audio_finished(key, tail, now=self.now()))


def _withdraw(future: asyncio.Future[Any], release: Callable[[], None] | None) -> None:
    """Give up on `future`: cancel it, or give back the slot it got meanwhile."""
    if release is None:
        return  # a thread cannot be cancelled: its done-callback gives the slot back
    if not future.cancel() and not future.cancelled() and future.exception() is None:
        release()


def _peer(connection: ServerConnection) -> str:
    try:
        host, port, *_ = connection.remote_address
        return f"{host}:{port}"
    except (TypeError, ValueError):
        return "client"


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
