"""The client library: one WebSocket connection, its contexts, their audio, and latency statistics.

    async with Session.open(endpoint, options) as session:        # stream-input
        stream = await session.start()                            # sends the opener
        await stream.send("Hello there. ", flush=True)
        await stream.end()                                        # {"text": ""}
        async for frame in stream:                                # AudioFrame until isFinal
            ...

With `multi=True` the same calls use `multi-stream-input`, and `session.start(context_id)` may be
called up to five times; `stream.close()` is a barge-in (`close_context` without a flush).

Failures are raised as the `elevtts.errors` tree, with the server's `error` and `message`.
The API key travels only in the `xi-api-key` header; it is never put in a URL or a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
)

from elevtts.errors import (
    AuthenticationError,
    ConnectError,
    ConnectionDropped,
    ElevttsError,
    InactivityTimeout,
    ServerError,
)
from elevtts.protocol import (
    AudioFrame,
    ClientMessage,
    CloseCode,
    DictionaryLocator,
    ErrorFrame,
    FinalFrame,
    StreamParams,
    parse_server_message,
)
from elevtts.redact import protect_websockets_logs
from elevtts.stats import StreamStats
from elevtts.target import display_url

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # the service sends frames up to 16 MB
# Closes without an error frame that end a connection, not the speech: going away (1001), service
# restart (1012: a drained server's deadline), try again later (1013).
HANDED_OVER_CLOSE_CODES = frozenset({1001, 1012, 1013})
AUTH_ERRORS = frozenset({"invalid_api_key", "unauthorized", "missing_api_key", "authentication_error"})


@dataclass(frozen=True)
class Endpoint:
    """Where to connect: a ws:// or wss:// base URL, and the key (never printed)."""

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    open_timeout: float = 10.0
    voice_load_ms: float | None = None  # the embedded server's voice load, when it was just loaded

    def url(self, voice_id: str, params: StreamParams, *, multi: bool) -> str:
        path = "multi-stream-input" if multi else "stream-input"
        base = self.base_url.rstrip("/")
        return f"{base}/v1/text-to-speech/{quote(voice_id, safe='')}/{path}?{urlencode(params.to_query())}"

    @property
    def display(self) -> str:
        """The URL without query or credentials, safe to print."""
        return display_url(self.base_url)


@dataclass(frozen=True)
class StreamOptions:
    """What the opener and the query string say."""

    voice_id: str
    params: StreamParams = field(default_factory=StreamParams)
    # Exactly the fields to send ({"speed": 1.1}); None sends none, so the voice's saved settings apply.
    voice_settings: Mapping[str, float | bool] | None = None
    schedule: tuple[int, ...] | None = None
    dictionary_locators: tuple[DictionaryLocator, ...] = ()


class Stream:
    """One context of a session (the whole stream, on stream-input)."""

    def __init__(self, session: Session, context_id: str | None, stats: StreamStats | None = None) -> None:
        self.session = session
        self.context_id = context_id
        self.stats = stats or StreamStats()
        self.final = False  # the iteration reached isFinal
        self._frames: asyncio.Queue[AudioFrame | FinalFrame | ElevttsError] = asyncio.Queue()
        self._ended = False
        self._final_received = False  # isFinal came in: nothing more for this stream

    async def send(self, text: str, *, flush: bool = False, try_trigger: bool = False) -> None:
        """Send text (it should end with a single space, as the protocol asks)."""
        message = ClientMessage(
            text=text, flush=flush, try_trigger_generation=try_trigger, context_id=self.context_id
        )
        sent_at = time.monotonic()  # when the text is handed over, not when the write returns
        await self.session._send(message)
        self.stats.text_sent(text, flush=flush, now=sent_at)

    async def flush(self) -> None:
        await self.send("", flush=True) if self.session.multi else await self.send(" ", flush=True)

    async def keepalive(self) -> None:
        """Reset the server's inactivity clock without adding text."""
        await self.session._send(
            ClientMessage(text="" if self.session.multi else " ", context_id=self.context_id)
        )

    async def end(self) -> None:
        """No more text: the server speaks what is left, then sends isFinal."""
        if self._ended:
            return
        self._ended = True
        if self.session.multi:
            await self.send("", flush=True)
            await self.session._send(ClientMessage(context_id=self.context_id, close_context=True))
        else:
            await self.send("")

    async def close(self) -> None:
        """Barge-in (multi only): stop this context now; what no flush covered is not spoken.

        Audio already on its way still arrives (within about a second), then isFinal ends the
        iteration; stop iterating earlier to drop it, as voice agents do.
        """
        self._ended = True
        await self.session._send(ClientMessage(context_id=self.context_id, close_context=True))

    def __aiter__(self) -> AsyncIterator[AudioFrame]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[AudioFrame]:
        while not self.final:
            item = await self._frames.get()
            if isinstance(item, ElevttsError):
                self.stats.finished_at = time.monotonic()
                raise item
            if isinstance(item, FinalFrame):
                self.final = True
                self.stats.finished_at = time.monotonic()
                return
            yield item

    def _deliver(self, item: AudioFrame | FinalFrame | ElevttsError) -> None:
        if isinstance(item, AudioFrame):
            self.stats.audio_received(item, now=time.monotonic())
        elif isinstance(item, FinalFrame):
            self._final_received = True
        self._frames.put_nowait(item)


class Session:
    """A connection to a stream-input or multi-stream-input endpoint."""

    def __init__(self, endpoint: Endpoint, options: StreamOptions, *, multi: bool = False) -> None:
        self.endpoint = endpoint
        self.options = options
        self.multi = multi
        self.connect_ms: float | None = None
        self._socket: ClientConnection | None = None
        # In the order they were started. A context id used again gets a new stream; the frames of
        # that id go to the oldest stream that has not had its isFinal yet.
        self._streams: list[Stream] = []
        self._reader: asyncio.Task[None] | None = None
        self._failure: ElevttsError | None = None  # why the connection ended, once it has

    @classmethod
    def open(cls, endpoint: Endpoint, options: StreamOptions, *, multi: bool = False) -> Session:
        return cls(endpoint, options, multi=multi)

    async def __aenter__(self) -> Session:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def connect(self) -> None:
        protect_websockets_logs()
        headers = {"xi-api-key": self.endpoint.api_key} if self.endpoint.api_key else {}
        url = self.endpoint.url(self.options.voice_id, self.options.params, multi=self.multi)
        started = time.monotonic()
        try:
            self._socket = await connect(
                url,
                additional_headers=headers,
                max_size=MAX_MESSAGE_BYTES,
                open_timeout=self.endpoint.open_timeout,
                user_agent_header="elevtts",
                compression=None,  # base64 audio barely compresses
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            body = bytes(exc.response.body or b"").decode("utf-8", "replace").strip()[:300]
            detail = f"{self.endpoint.display} refused the connection: HTTP {status}" + (
                f" {body}" if body else ""
            )
            if status in (401, 403) and "model" not in body:
                raise AuthenticationError(detail, status=status) from None
            headers = {name: value for name, value in exc.response.headers.raw_items()}
            raise ConnectError(detail, status=status, headers=headers) from None
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            if isinstance(exc, InvalidMessage) and url.startswith("ws://"):
                # A TLS server reads a plain HTTP request as a bad TLS record and hangs up.
                reason += " (a TLS server? use wss:// instead of ws://)"
            raise ConnectError(f"cannot connect to {self.endpoint.display}: {reason}") from None
        self.connect_ms = (time.monotonic() - started) * 1000
        self._reader = asyncio.create_task(self._read())

    async def start(self, context_id: str | None = None, *, stats: StreamStats | None = None) -> Stream:
        """Open a stream (single) or a context (multi) by sending its opener.

        `stats` carries on the statistics of an earlier stream (a resumed one).
        """
        if self.multi:
            context_id = context_id or uuid.uuid4().hex
        elif self._streams:
            raise ValueError("a stream-input session has one stream")
        stream = Stream(self, context_id if self.multi else None, stats)
        if stream.stats.connect_ms is None:
            stream.stats.connect_ms = self.connect_ms
        self._streams = [s for s in self._streams if not s._final_received]
        self._streams.append(stream)
        options = self.options
        opener = ClientMessage(
            text=" ",
            schedule=options.schedule,
            dictionary_locators=options.dictionary_locators or None,
            context_id=stream.context_id,
        ).to_json()
        if options.voice_settings:
            opener["voice_settings"] = dict(options.voice_settings)
        await self._send(opener)
        return stream

    async def close_socket(self) -> None:
        """Multi: ask the server to finish every context and close."""
        await self._send(ClientMessage(close_socket=True))

    async def keepalive(self) -> None:
        """Multi: keep the connection open while no context is (`{"text": ""}` without an id)."""
        await self._send(ClientMessage(text=""))

    async def aclose(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _send(self, message: ClientMessage | dict[str, Any]) -> None:
        if self._socket is None:
            raise ConnectError("not connected")
        text = json.dumps(message, ensure_ascii=False) if isinstance(message, dict) else message.serialize()
        try:
            await self._socket.send(text)
        except ConnectionClosed:
            # The reader knows why (an error frame may have come before the close).
            if self._reader is not None:
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(self._reader), 5)
            raise (self._failure or self._closed_error()) from None

    def _closed_error(self) -> ElevttsError:
        socket = self._socket
        code = socket.close_code if socket is not None else None
        reason = (socket.close_reason if socket is not None else "") or ""
        if code in (None, 1006):
            return ConnectionDropped("the connection dropped before the audio was complete")
        if code in HANDED_OVER_CLOSE_CODES:
            # A server going away, restarting or overloaded ends the stream, not the speech:
            # resumed on a new connection (perhaps another server behind the same balancer).
            return ConnectionDropped(
                f"the server closed the connection before the audio was complete ({code}"
                f"{': ' + reason if reason else ''})"
            )
        return ServerError(
            f"the server closed the connection ({code}{': ' + reason if reason else ''})", code=code
        )

    async def _read(self) -> None:
        assert self._socket is not None
        last_error: ErrorFrame | None = None
        try:
            async for raw in self._socket:
                try:
                    message = parse_server_message(raw)
                except ValueError as exc:
                    self._broadcast(ServerError(f"the server sent a bad frame: {exc}"))
                    return
                if isinstance(message, ErrorFrame):
                    last_error = message
                    target = self._route(message.context_id) if message.context_id else None
                    if target is not None and self.multi:
                        target._deliver(_error_from_frame(message))
                    continue
                if isinstance(message, AudioFrame | FinalFrame):
                    stream = self._route(message.context_id)
                    if stream is not None:
                        stream._deliver(message)
        except ConnectionClosed:
            pass
        code = self._socket.close_code
        if last_error is not None and not self.multi:
            self._broadcast(_error_from_frame(last_error))
        elif code == CloseCode.NORMAL:
            # A normal close ends every stream that did not get its isFinal (as the SDK does).
            for stream in self._streams:
                if not stream._final_received:
                    stream._deliver(FinalFrame(stream.context_id))
        elif last_error is not None:
            self._broadcast(_error_from_frame(last_error))
        else:
            self._broadcast(self._closed_error())

    def _route(self, context_id: str | None) -> Stream | None:
        """The stream a frame is for: the oldest of its context without an isFinal yet."""
        for stream in self._streams:
            if not stream._final_received and (not self.multi or stream.context_id == context_id):
                return stream
        return None

    def _broadcast(self, error: ElevttsError) -> None:
        self._failure = error
        for stream in self._streams:
            if not stream._final_received:
                stream._deliver(error)


def _error_from_frame(frame: ErrorFrame) -> ElevttsError:
    text = f"{frame.error}: {frame.message}" if frame.message else frame.error
    if frame.error in AUTH_ERRORS:
        return AuthenticationError(f"the server refused the API key ({text})")
    if frame.error == "input_timeout_exceeded":
        return InactivityTimeout(text, error=frame.error, code=frame.code, context_id=frame.context_id)
    return ServerError(text, error=frame.error, code=frame.code, context_id=frame.context_id)
