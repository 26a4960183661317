"""The WebSocket transport: bytes and time only, around the pure `Session`.

Each connection reads frames and hands them to its session, performs the actions it returns
(frames go out through one queue, in the order the session decided them), runs the engine and
the encoder off the event loop, and calls `tick` as time passes. It knows no protocol rule: those
live in `session` (connection rules), `routes` (which path is what) and `pacing`. The WebSocket
is aiohttp's, so that the HTTP routes (`server.http`) share the port; `synthesis` is the pipeline
that every endpoint runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import WSMsgType, web

from elevtts.protocol import close_reason
from elevtts.server.encode import Encoder
from elevtts.server.engines import Engine, get_engine
from elevtts.server.metrics import SessionRecord
from elevtts.server.routes import WebSocketRoute
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
    Synthesize,
)
from elevtts.server.state import StreamServer
from elevtts.server.synthesis import Piece, synthesize

log = logging.getLogger("elevtts.server")
# Every header and frame at DEBUG (keys redacted), under the logger name the websockets server
# used before aiohttp carried the socket, so logging set up for it (and log searches) still work.
wire_log = logging.getLogger("websockets.server")

ELIDE_AT = 75  # a logged frame longer than this shows its two ends only


class ConnectionClosed(Exception):
    """The peer is gone, or the close handshake is under way."""


class _LoggedFrame:
    """A frame as the wire log shows it; `data` lets the redaction read the whole payload."""

    def __init__(self, kind: str, data: str | bytes) -> None:
        self.kind, self.data = kind, data

    def __str__(self) -> str:
        text = self.data.decode("utf-8", "replace") if isinstance(self.data, bytes) else self.data
        shown = text if len(text) <= ELIDE_AT else f"{text[: ELIDE_AT * 2 // 3]}...{text[-ELIDE_AT // 3 :]}"
        return f"{self.kind} {shown!r} [{len(self.data)} bytes]"


class Socket:
    """One accepted WebSocket: the little the connection needs of it."""

    def __init__(self, ws: web.WebSocketResponse, peer: str) -> None:
        self.ws, self.peer = ws, peer
        self.close_timeout = 10.0

    async def recv(self) -> bytes | str:
        message = await self.ws.receive()
        if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            if wire_log.isEnabledFor(logging.DEBUG):
                kind = "TEXT" if message.type is WSMsgType.TEXT else "BINARY"
                wire_log.debug("< %s", _LoggedFrame(kind, message.data))
            return message.data  # type: ignore[no-any-return]
        wire_log.debug("< %s %s", message.type.name, message.extra)
        raise ConnectionClosed(message.extra)

    async def send(self, text: str) -> None:
        if self.ws.closed:
            raise ConnectionClosed()
        if wire_log.isEnabledFor(logging.DEBUG):
            wire_log.debug("> %s", _LoggedFrame("TEXT", text))
        try:
            await self.ws.send_str(text)
        except (ConnectionError, RuntimeError) as exc:  # aiohttp: the transport is closing
            wire_log.debug("send failed: %r", exc)
            raise ConnectionClosed() from exc

    async def close(self, code: int, reason: str = "") -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.close(code=code, message=reason.encode())


async def accept(server: StreamServer, request: web.Request, target: WebSocketRoute) -> web.WebSocketResponse:
    """The upgrade: the session opens before any frame is read, so that the size limit it
    sets (small until the key is known) applies to the very first message."""
    session = Session(server.rules, server.pacer, voice_id=target.voice_id, multi=target.multi)
    opened = session.open(
        target.query,
        api_key_header=request.headers.get("xi-api-key"),
        authorization_header=request.headers.get("Authorization"),
        now=asyncio.get_running_loop().time(),
    )
    if wire_log.isEnabledFor(logging.DEBUG):
        for name, value in request.headers.items():
            wire_log.debug("< %s: %s", name, value)
    # aiohttp fixes the limit at the upgrade; the session's own check covers a limit it
    # raises later (a key in the first message).
    ws = web.WebSocketResponse(
        max_msg_size=session.max_message_bytes, compress=False, decode_text=False, autoping=True
    )
    server.opening += 1
    try:
        await ws.prepare(request)
    finally:
        server.opening -= 1
    socket = Socket(ws, _peer(request))
    record = SessionRecord(
        endpoint="multi-stream-input" if target.multi else "stream-input",
        voice="",  # the voice that speaks, once its engine is loaded
        output_format=session.output_format.name,
        model=session.params.model_id,
    )
    server.connections += 1
    server.sockets.add(socket)
    server.session_started(record)
    connection = Connection(server, socket, session, record)
    try:
        await connection.run(opened)
    finally:
        server.sockets.discard(socket)
        server.connections -= 1
        record.code = ws.close_code
        server.session_ended(record)
    return ws


class _Job:
    """One piece on its way through the engine and the encoder."""

    def __init__(self) -> None:
        self.abandoned = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class Connection:
    """Drives one session over one WebSocket connection."""

    def __init__(
        self, server: StreamServer, connection: Socket, session: Session, record: SessionRecord
    ) -> None:
        self.server = server
        self.connection = connection
        self.session = session
        self.record = record  # what the metrics and the session_end log line tell of it
        self.engine: Engine | None = None
        self.outbox: asyncio.Queue[Send | Fail | Close] = asyncio.Queue()
        self.encoders: dict[int, Encoder] = {}
        self.jobs: dict[int, _Job] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.reader: asyncio.Task[None] | None = None
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
                if self.engine is not None:
                    self.record.voice = (
                        self.engine.voice.voice_id
                    )  # a served voice, never the client's string
                    self.record.output_format = self.session.output_format.name
                    self.record.model = self.session.params.model_id
                self._spawn(self._tick())
            self.reader = asyncio.ensure_future(self._read_all())
            await asyncio.wait((self.reader,))
            if self.session.closed:  # our close is under way: let the sender finish it
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(sender), self.connection.close_timeout or 10)
        finally:
            self.session.connection_lost()
            for task in [sender, *self.tasks, *([self.reader] if self.reader else [])]:
                task.cancel()
            await asyncio.gather(
                sender, *self.tasks, *([self.reader] if self.reader else []), return_exceptions=True
            )

    async def _read_all(self) -> None:
        """Every frame goes to the session (which discards input it no longer wants), so a close
        handshake never waits behind queued input."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                raw = await self.connection.recv()  # bytes: the session checks the UTF-8
                if len(raw) > self.session.max_message_bytes:
                    await self.connection.close(1009, "message too big")
                    return
                self.perform(self.session.receive(raw, now=self.now()))

    async def _tick(self) -> None:
        while not self.session.closed:
            await asyncio.sleep(self.session.tick_interval)
            self.perform(self.session.tick(now=self.now()))

    # -- actions -----------------------------------------------------------------------------

    def perform(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send | Close):
                self.outbox.put_nowait(action)
            elif isinstance(action, Fail):
                self.record.error = str(action.error.error)
                self._discard_outbox()  # the error goes out at once
                self.outbox.put_nowait(action)
            elif isinstance(action, Synthesize):
                self.record.piece_started(len(action.text))
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
                    log.info("closing %s: %s (%s)", self.connection.peer, error.error, error.message)
                    with contextlib.suppress(ConnectionClosed):
                        await self.connection.send(action.frame.serialize())
                    await self._stop_reading()
                    await self.connection.close(error.code, close_reason(error.reason))
                    return
                else:
                    await self._stop_reading()
                    await self.connection.close(action.code)
                    return
            except ConnectionClosed:
                return
            finally:
                self.outbox.task_done()

    async def _stop_reading(self) -> None:
        """Stop the reader before closing: aiohttp's close then reads (and drops) what the client
        still sends until its close frame, as the close handshake wants. Closed under a waiting
        reader, it would drop the TCP connection with that input unread, and the kernel's reset
        would lose the frames sent last (the error frame among them)."""
        reader = self.reader
        if reader is not None and not reader.done() and reader is not asyncio.current_task():
            reader.cancel()
            await asyncio.wait((reader,))

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
        log.error("internal error on %s", self.connection.peer, exc_info=error)
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
        if not await self._until(
            asyncio.ensure_future(slots.acquire(first=action.first)), job, release=slots.release
        ):
            return
        started = time.perf_counter()
        assert self.engine is not None
        piece = Piece(action.text, action.voice_settings, action.seed, action.lexicons)
        synthesis = asyncio.ensure_future(asyncio.to_thread(synthesize, self.engine, piece))

        def finished(done: asyncio.Future[Any]) -> None:
            slots.release()
            if not done.cancelled() and done.exception() is None:
                elapsed = time.perf_counter() - started
                self.server.pacer.pace(self.session.voice_id).record(len(action.text), elapsed)
                self.server.piece_synthesized(self.record.voice, done.result(), elapsed)

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
            self.record.audio_sent(timing.duration_ms / 1000, encoded_bytes=len(audio))
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


def _peer(request: web.BaseRequest) -> str:
    peer: Any = request.transport.get_extra_info("peername") if request.transport else None
    try:
        host, port, *_ = peer
        return f"{host}:{port}"
    except (TypeError, ValueError):
        return "client"
