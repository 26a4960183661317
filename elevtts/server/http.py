"""One port for everything: aiohttp serves the WebSocket endpoints and the HTTP API side by side.

    GET  /v1/text-to-speech/{voice_id}/stream-input        WebSocket (transport.Connection)
    GET  /v1/text-to-speech/{voice_id}/multi-stream-input  WebSocket
    POST /v1/text-to-speech/{voice_id}                     the whole audio
    POST /v1/text-to-speech/{voice_id}/stream              the audio, chunked as it is synthesized
    POST /v1/text-to-speech/{voice_id}/with-timestamps     JSON: audio_base64 + alignments
    POST /v1/text-to-speech/{voice_id}/stream/with-timestamps   one such JSON object a line
    POST /v1/audio/speech                                  OpenAI-compatible, streamed
    GET  /v1/voices, /v2/voices, /v1/voices/{id}, /v1/models
    GET|HEAD /health (503 until the voices are loaded and warmed up, and while draining)
    GET  /metrics                                          Prometheus text format (`server.metrics`)
    GET /                       the playground page for a browser (text/html), else {"status": "ok"}
    GET /playground/{file}      its script and style sheet; /playground/readme the README it links to

Stopping drains: `Server.drain` keeps the port open, refuses every new session with 503 and
`Retry-After` (so a balancer sends it elsewhere), lets the open ones finish, and closes what is
left at the deadline with 1012 (service restart), which the client resumes elsewhere.

Bytes and time only: requests are validated in `rest` (pure), text is cut into pieces by the same
rule as the WebSocket session (`session.cut_piece`) and spoken by the same pipeline
(`synthesis.synthesize`) in the same engine slots, with the same pace.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any

from aiohttp import web

from elevtts.formats import OutputFormat, parse_output_format
from elevtts.logs import log_event
from elevtts.protocol import DictionaryLocator
from elevtts.redact import protect_websockets_logs
from elevtts.server import playground
from elevtts.server.alignment import TimedAlignment
from elevtts.server.config import ServerConfig
from elevtts.server.dictionary import Lexicon
from elevtts.server.encode import Encoder, opus_available
from elevtts.server.engines import Engine, available_voices, get_engine
from elevtts.server.metrics import CONTENT_TYPE_LATEST, SessionRecord
from elevtts.server.origin import origin_allowed
from elevtts.server.rest import (
    HttpError,
    SpeechRequest,
    character_alignment,
    default_voice_map,
    detail,
    elevenlabs_request,
    models_json,
    openai_error,
    openai_request,
    voice_json,
    wav_header,
)
from elevtts.server.routes import JsonResponse, route
from elevtts.server.session import INTERNAL_ERROR_MESSAGE, bearer, cut_piece, keys_match
from elevtts.server.state import StreamServer
from elevtts.server.synthesis import Frame, Piece, synthesize
from elevtts.server.transport import accept

log = logging.getLogger("elevtts.server")

CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
    "ulaw": "audio/basic",
    "alaw": "audio/x-alaw-basic",
}
GOING_AWAY = 1001  # the close code of a server shutting down
SERVICE_RESTART = 1012  # the close code of the sessions a drain's deadline ends
DRAIN_POLL_S = 0.05  # how often a drain looks whether the last session has ended
ALWAYS_ANSWERED = frozenset({"/health", "/metrics"})  # what a draining server still answers
RETRY_AFTER_S = 1  # what a refused request is told to wait (one piece takes well under a second)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpApi:
    """The HTTP routes of one server; `state` is shared with its WebSocket connections."""

    def __init__(self, state: StreamServer) -> None:
        self.state = state
        self.config = state.config
        self.voice_map = default_voice_map(state.voice_ids, dict(self.config.voice_map))
        # Synthesis threads of HTTP requests: one per slot; a slot is given back when its thread
        # ends, so a client that leaves never makes the engine run two pieces in one slot.
        self.executor = ThreadPoolExecutor(self.config.synthesis_slots, thread_name_prefix="elevtts-http")
        self.in_flight = 0  # HTTP syntheses running or waiting for a slot

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[self.errors, self.cors, self.refuse_while_draining],
            client_max_size=self.config.max_body_bytes,
        )
        get, add = app.router.add_get, app.router.add_route  # add_get answers HEAD too
        get("/", self.root)
        get("/playground/readme", playground.serve_readme)
        get("/playground/{name}", playground.serve_asset)
        get("/health", self.health)
        get("/metrics", self.metrics)
        get("/v1/voices", self.voices)
        get("/v2/voices", self.voices_v2)
        get("/v1/voices/{voice_id}", self.voice)
        get("/v1/models", self.models)
        get("/v1/text-to-speech/{voice_id}/{endpoint}", self.websocket, allow_head=False)
        add("POST", "/v1/text-to-speech/{voice_id}", self.convert)
        add("POST", "/v1/text-to-speech/{voice_id}/stream", self.stream)
        add("POST", "/v1/text-to-speech/{voice_id}/with-timestamps", self.convert_with_timestamps)
        add("POST", "/v1/text-to-speech/{voice_id}/stream/with-timestamps", self.stream_with_timestamps)
        add("POST", "/v1/audio/speech", self.openai_speech)
        app.on_response_prepare.append(self._on_prepare)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_shutdown(self, _: web.Application) -> None:
        await self.state.close_sockets(GOING_AWAY)
        self.executor.shutdown(wait=False, cancel_futures=True)

    # -- middlewares -------------------------------------------------------------------------

    @web.middleware
    async def errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Refusals as JSON bodies, never an HTML page or a traceback."""
        try:
            return await handler(request)
        except HttpError as error:
            return _json(error.body, status=error.status, headers=error.headers)
        except web.HTTPRequestEntityTooLarge:
            message = "the request body is larger than this server accepts"
            return _json({"detail": {"status": "request_too_large", "message": message}}, status=413)
        except web.HTTPException as error:
            if error.status >= 400 and error.content_type != "application/json":
                name = HTTPStatus(error.status).phrase.lower().replace(" ", "_")
                body = {"detail": {"status": name, "message": error.reason}}
                return _json(body, status=error.status, headers={"Allow": error.headers.get("Allow", "")})
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception:
            # Logged once, as on the WebSocket (1011); the server goes on.
            log.error("internal error on %s %s", request.method, request.path, exc_info=True)
            body = {"detail": {"status": "internal_error", "message": INTERNAL_ERROR_MESSAGE}}
            return _json(body, status=HTTPStatus.INTERNAL_SERVER_ERROR)

    @web.middleware
    async def cors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Off by default; `--cors-origin` lets a browser page on that origin call the API. The
        preflight is answered here; `_on_prepare` marks the answers (streamed ones too)."""
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS" and origin in self.config.cors_origins:
            wanted = request.headers.get("Access-Control-Request-Headers")
            headers = {
                "Access-Control-Allow-Methods": "GET, HEAD, POST, OPTIONS",
                "Access-Control-Allow-Headers": wanted or "content-type, xi-api-key",
                "Access-Control-Max-Age": "600",
            }
            return web.Response(status=204, headers=headers)
        return await handler(request)

    @web.middleware
    async def refuse_while_draining(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A draining server takes no new session or request: 503 with `Retry-After`, which a
        balancer reads as "try another server" and the client as "retry shortly"."""
        if self.state.draining and request.path not in ALWAYS_ANSWERED:
            message = "The server is shutting down; try again shortly."
            raise detail(
                HTTPStatus.SERVICE_UNAVAILABLE, "server_draining", message,
                **{"Retry-After": str(RETRY_AFTER_S)},
            )  # fmt: skip
        return await handler(request)

    @property
    def open_sessions(self) -> int:
        """WebSocket sessions and HTTP requests under way: what a drain waits for."""
        return self.state.connections + self.state.opening + self.in_flight

    async def _on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Server"] = "elevtts"
        origin = request.headers.get("Origin")
        if origin is not None and origin in self.config.cors_origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"

    # -- operators ---------------------------------------------------------------------------

    async def root(self, request: web.Request) -> web.Response:
        if playground.wants_page(request.headers.get("Accept")):
            return playground.asset("index.html")
        return _json({"status": "ok"})

    async def health(self, request: web.Request) -> web.Response:
        if self.state.draining:
            return _json({"status": "draining"}, status=HTTPStatus.SERVICE_UNAVAILABLE)
        if not self.state.ready:
            return _json({"status": "loading"}, status=HTTPStatus.SERVICE_UNAVAILABLE)
        return _json({"status": "ok"})

    async def metrics(self, request: web.Request) -> web.Response:
        """Prometheus text format; open like /health (no key, text or peer is ever in it)."""
        self.state.metrics.draining.set(1 if self.state.draining else 0)
        return web.Response(body=self.state.metrics.scrape(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    # -- voices and models -------------------------------------------------------------------

    def _voices(self) -> list[dict[str, Any]]:
        return [v.to_json() for v in available_voices() if v.voice_id in self.state.voice_ids]

    async def voices(self, request: web.Request) -> web.Response:
        self._authorize(request)
        return _json({"voices": [voice_json(v) for v in self._voices()]})

    async def voices_v2(self, request: web.Request) -> web.Response:
        self._authorize(request)
        voices = [voice_json(v) for v in self._voices()]
        search = request.query.get("search", "").lower()
        if search:
            voices = [v for v in voices if search in f"{v['name']} {v['voice_id']}".lower()]
        return _json(
            {"voices": voices, "has_more": False, "total_count": len(voices), "next_page_token": None}
        )

    async def voice(self, request: web.Request) -> web.Response:
        self._authorize(request)
        voice_id = request.match_info["voice_id"]
        for voice in self._voices():
            if voice["voice_id"] == voice_id:
                return _json(voice_json(voice))
        raise _voice_not_found(voice_id)

    async def models(self, request: web.Request) -> web.Response:
        self._authorize(request)
        return _json(models_json(self._voices()))

    # -- WebSocket ---------------------------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if not origin_allowed(
            origin, host=request.host, secure=request.secure, cors_origins=self.config.cors_origins
        ):
            message = f"a page on {origin!r} may not open a WebSocket here (see --cors-origin)"
            return _json({"detail": {"status": "origin_not_allowed", "message": message}}, status=403)
        target = route(request.path_qs, voices=self._voices, full=self.state.full)
        if isinstance(target, JsonResponse):
            return _json(target.body, status=target.status)
        return await accept(self.state, request, target)

    # -- ElevenLabs text to speech -----------------------------------------------------------

    async def _elevenlabs(self, request: web.Request) -> SpeechRequest:
        self._authorize(request)
        voice_id = request.match_info["voice_id"]
        speech = elevenlabs_request(
            voice_id,
            await request.read(),
            request.query,
            max_chars=self.config.max_text_chars,
            opus_encoder=opus_available(),
        )
        served = self._served_voice(voice_id)
        if served is None:
            raise _voice_not_found(voice_id)
        for locator in speech.dictionary_locators:  # refused before any audio, as on the WebSocket
            self._lexicon(locator)
        return speech if served == voice_id else _with_voice(speech, served)

    def _lexicon(self, locator: DictionaryLocator) -> Lexicon:
        try:
            return self.config.dictionaries.get(locator.pronunciation_dictionary_id, locator.version_id)
        except KeyError as exc:
            raise detail(
                HTTPStatus.NOT_FOUND, "pronunciation_dictionary_not_found", str(exc.args[0])
            ) from None

    async def convert(self, request: web.Request) -> web.StreamResponse:
        speech = await self._elevenlabs(request)
        with self._admitted(_record(request, speech)) as record:
            audio = b"".join([chunk async for chunk, _ in self._speak(speech, record)])
        return web.Response(
            body=_whole(speech.output_format, audio), headers=_audio_headers(speech.output_format)
        )

    async def stream(self, request: web.Request) -> web.StreamResponse:
        speech = await self._elevenlabs(request)
        return await self._stream_audio(request, speech)

    async def convert_with_timestamps(self, request: web.Request) -> web.StreamResponse:
        speech = await self._elevenlabs(request)
        chunks: list[bytes] = []
        whole = TimedAlignment()
        with self._admitted(_record(request, speech)) as record:
            async for chunk, timing in self._speak(speech, record):
                chunks.append(chunk)
                whole = whole.then(timing)
        return _json(_timestamped(_whole(speech.output_format, b"".join(chunks)), whole, 0))

    async def stream_with_timestamps(self, request: web.Request) -> web.StreamResponse:
        speech = await self._elevenlabs(request)

        def line(chunk: bytes, timing: TimedAlignment, offset_ms: int) -> bytes:
            return (json.dumps(_timestamped(chunk, timing, offset_ms)) + "\n").encode()

        return await self._stream(request, speech, "application/json", line)

    # -- OpenAI ------------------------------------------------------------------------------

    async def openai_speech(self, request: web.Request) -> web.StreamResponse:
        if self.config.api_key is not None:
            given = bearer(request.headers.get("Authorization")) or request.headers.get("xi-api-key")
            if not given or not keys_match(given, self.config.api_key):
                message = "Incorrect API key provided."
                raise openai_error(HTTPStatus.UNAUTHORIZED, message, param=None, code="invalid_api_key")
        speech = openai_request(
            await request.read(), self.voice_map, self.state.voice_ids, max_chars=self.config.max_text_chars
        )
        return await self._stream_audio(request, speech)

    # -- the pipeline ------------------------------------------------------------------------

    async def _stream_audio(self, request: web.Request, speech: SpeechRequest) -> web.StreamResponse:
        content_type = _audio_headers(speech.output_format)["Content-Type"]
        return await self._stream(request, speech, content_type, lambda chunk, _, __: chunk)

    async def _stream(
        self,
        request: web.Request,
        speech: SpeechRequest,
        content_type: str,
        render: Callable[[bytes, TimedAlignment, int], bytes],
    ) -> web.StreamResponse:
        """The body as it is synthesized, chunked: `render(audio, alignment, offset_ms)` makes
        each part. The headers go with the first piece, so a failure before it is still an error
        status. A client that leaves ends the synthesis of its request quietly."""
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.enable_chunked_encoding()
        offset_ms = 0
        with self._admitted(_record(request, speech)) as record:
            try:
                async with contextlib.aclosing(self._speak(speech, record, header=True)) as pieces:
                    async for chunk, timing in pieces:  # closed at once when the client leaves
                        if not response.prepared:
                            await response.prepare(request)
                        if part := render(chunk, timing, offset_ms):
                            await response.write(part)
                        offset_ms += timing.duration_ms
                await response.write_eof()
            except ConnectionResetError:
                log.debug("the client left before the end of its stream")
            except Exception:
                if not response.prepared:
                    raise  # still an error status (the `errors` middleware)
                # Too late for a status: the connection is cut before the last chunk, so the
                # client sees an incomplete body rather than a complete-looking short one.
                log.error("internal error while streaming %s", request.path, exc_info=True)
                record.error = "internal_error"
                if request.transport is not None:
                    request.transport.abort()
        return response

    async def _speak(
        self, speech: SpeechRequest, record: SessionRecord, *, header: bool = False
    ) -> AsyncGenerator[tuple[bytes, TimedAlignment], None]:
        """Encoded audio and its alignment, piece by piece, as the WebSocket path speaks it: the
        same cuts, the same pipeline, the same slots. `header`: a WAV stream starts with a header
        of unknown length. Frames the encoder held back join the next that carries audio."""
        fmt = speech.output_format
        engine: Engine = await asyncio.to_thread(get_engine, speech.voice_id)
        record.voice = engine.voice.voice_id
        encoder = Encoder(_encoded_as(fmt), engine.voice.sample_rate)
        if header and fmt.codec == "wav":
            yield wav_header(fmt.sample_rate, None), TimedAlignment()
        pace = self.state.pacer.pace(speech.voice_id)
        lexicons = tuple(self._lexicon(locator) for locator in speech.dictionary_locators)
        rest, first, carry = speech.text, True, TimedAlignment()
        while rest.strip():
            text, rest = cut_piece(rest, self.state.pacer.piece_chars(speech.voice_id), first=first)
            first = False
            started = time.perf_counter()
            piece = Piece(text, speech.voice_settings, speech.seed, lexicons)
            record.piece_started(len(text))
            frames = await self._in_slot(synthesize, engine, piece)
            elapsed = time.perf_counter() - started
            pace.record(len(text), elapsed)
            self.state.piece_synthesized(record.voice, frames, elapsed)
            for pcm, timing in frames:
                audio = encoder.encode(pcm)
                carry = carry.then(timing)
                record.audio_sent(timing.duration_ms / 1000, encoded_bytes=len(audio))
                if audio:
                    yield audio, carry
                    carry = TimedAlignment()
        yield encoder.finish(), carry

    async def _in_slot(self, function: Callable[..., list[Frame]], *args: Any) -> list[Frame]:
        """Run `function` in one of the engine slots shared with the WebSocket connections."""
        slots = self.state.slots
        await slots.acquire()
        loop = asyncio.get_running_loop()
        try:
            job = self.executor.submit(function, *args)
        except BaseException:
            slots.release()
            raise
        job.add_done_callback(lambda _: loop.call_soon_threadsafe(slots.release))
        return await asyncio.wrap_future(job)

    @contextlib.contextmanager
    def _admitted(self, record: SessionRecord) -> Iterator[SessionRecord]:
        """A request beyond the engine's slots waits in a bounded queue; beyond it, 429. An
        admitted request is a session: counted while it runs, logged and counted when it ends."""
        if self.in_flight >= self.config.synthesis_slots + self.config.max_queue:
            message = "The server is busy with other requests; try again shortly."
            raise detail(
                HTTPStatus.TOO_MANY_REQUESTS, "too_many_concurrent_requests", message,
                **{"Retry-After": str(RETRY_AFTER_S)},
            )  # fmt: skip
        self.in_flight += 1
        self.state.session_started(record)
        record.code = int(HTTPStatus.OK)
        try:
            yield record
        except HttpError as error:
            record.code = int(error.status)
            record.error = _error_name(error)
            raise
        except BaseException:
            record.code, record.error = int(HTTPStatus.INTERNAL_SERVER_ERROR), "internal_error"
            raise
        finally:
            self.in_flight -= 1
            self.state.session_ended(record)

    # -- checks ------------------------------------------------------------------------------

    def _authorize(self, request: web.Request) -> None:
        """The `xi-api-key` header (or a bearer token) when the server has a key: 401 otherwise,
        with the live API's bodies."""
        expected = self.config.api_key
        if expected is None:
            return
        given = request.headers.get("xi-api-key") or bearer(request.headers.get("Authorization"))
        if not given:
            message = "Neither authorization header nor xi-api-key received, please provide one."
            raise detail(HTTPStatus.UNAUTHORIZED, "needs_authorization", message)
        if not keys_match(given, expected):
            raise detail(HTTPStatus.UNAUTHORIZED, "invalid_api_key", "Invalid API key")

    def _served_voice(self, voice_id: str) -> str | None:
        if voice_id in self.state.voice_ids:
            return voice_id
        return self.config.fallback_voice


HTTP_ENDPOINTS = (  # path ending -> the endpoint label of the metrics and logs
    ("/stream/with-timestamps", "stream-with-timestamps"),
    ("/with-timestamps", "with-timestamps"),
    ("/stream", "stream"),
    ("/audio/speech", "openai-speech"),
)


def _record(request: web.Request, speech: SpeechRequest) -> SessionRecord:
    endpoint = next((name for end, name in HTTP_ENDPOINTS if request.path.endswith(end)), "convert")
    return SessionRecord(
        endpoint=endpoint, voice="", output_format=speech.output_format.name, model=speech.model_id
    )


def _error_name(error: HttpError) -> str:
    """The error's public name (`detail.status`, or OpenAI's `error.code`), for the metrics."""
    body: Any = error.body
    if isinstance(body, dict):
        inner = body.get("detail") or body.get("error")
        if isinstance(inner, dict):
            name = inner.get("status") or inner.get("code") or inner.get("type")
            if isinstance(name, str):
                return name
    return HTTPStatus(error.status).phrase.lower().replace(" ", "_")


def _voice_not_found(voice_id: str) -> HttpError:
    return detail(
        HTTPStatus.NOT_FOUND, "voice_not_found", f"A voice with voice_id '{voice_id}' was not found."
    )


def _with_voice(speech: SpeechRequest, voice_id: str) -> SpeechRequest:
    from dataclasses import replace

    return replace(speech, voice_id=voice_id)


def _encoded_as(fmt: OutputFormat) -> OutputFormat:
    """WAV is PCM with a header: the encoder makes the PCM."""
    return parse_output_format(f"pcm_{fmt.sample_rate}") if fmt.codec == "wav" else fmt


def _whole(fmt: OutputFormat, audio: bytes) -> bytes:
    """The whole audio as the format's body: a WAV file knows its length."""
    return wav_header(fmt.sample_rate, len(audio)) + audio if fmt.codec == "wav" else audio


def _timestamped(audio: bytes, timing: TimedAlignment, offset_ms: int) -> dict[str, Any]:
    return {
        "audio_base64": base64.b64encode(audio).decode("ascii"),
        "alignment": character_alignment(timing.original, offset_ms=offset_ms),
        "normalized_alignment": character_alignment(timing.normalized, offset_ms=offset_ms),
    }


def _audio_headers(fmt: OutputFormat) -> dict[str, str]:
    return {"Content-Type": CONTENT_TYPES.get(fmt.codec, "application/octet-stream")}


def _json(body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    extra = {name: value for name, value in (headers or {}).items() if value}
    # JSON is UTF-8 by definition (RFC 8259): no charset parameter, as the live API answers
    extra["Content-Type"] = "application/json"
    return web.Response(body=(json.dumps(body) + "\n").encode(), status=status, headers=extra)


# ---------------------------------------------------------------------------------------------
# Running the server


class Shutdown:
    """What the stop signals asked: the first one drains, the next ends the drain at once."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.hurried = asyncio.Event()

    def signal(self) -> None:
        (self.hurried if self.requested.is_set() else self.requested).set()


class Server:
    """A listening server: `drain()` (let open sessions finish), `close()` (stop listening, close
    every WebSocket with 1001), `wait_closed()`, `serve_forever()`; `server_url()` gives its address."""

    def __init__(self, runner: web.AppRunner, site: web.TCPSite, api: HttpApi) -> None:
        self.runner, self.site, self.api = runner, site, api
        self._closing: asyncio.Task[None] | None = None

    async def drain(self, timeout_s: float, *, hurry: asyncio.Event | None = None) -> int:
        """Refuse new sessions and wait until the open ones end, `timeout_s` at most (or until
        `hurry` is set); then close what is left with 1012. Returns how many were left."""
        state = self.api.state
        state.draining = True
        state.metrics.draining.set(1)
        log_event(log, "draining", open_sessions=self.api.open_sessions, drain_timeout_s=timeout_s)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        hurry = hurry or asyncio.Event()
        hurried = asyncio.ensure_future(hurry.wait())
        try:
            while self.api.open_sessions and not hurry.is_set() and (left := deadline - loop.time()) > 0:
                await asyncio.wait((hurried,), timeout=min(DRAIN_POLL_S, left))
        finally:
            hurried.cancel()
        left_open = self.api.open_sessions
        if left_open:
            log_event(
                log,
                "drain_deadline",
                level=logging.WARNING,
                closing_sessions=left_open,
                close_code=SERVICE_RESTART,
            )
            await state.close_sockets(SERVICE_RESTART)
        return left_open

    def close(self) -> None:
        if self._closing is None:
            self._closing = asyncio.ensure_future(self.runner.cleanup())

    async def wait_closed(self) -> None:
        self.close()
        assert self._closing is not None
        await asyncio.shield(self._closing)

    async def serve_forever(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await self.wait_closed()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.wait_closed()


async def start_server(config: ServerConfig, *, preload: bool = True) -> tuple[Server, StreamServer]:
    """Listen (port 0 picks a free port), then load and warm the voices (`/health` says 503 until
    then); returns the server and its shared state."""
    protect_websockets_logs()
    state = StreamServer(config)
    api = HttpApi(state)
    runner = web.AppRunner(api.app(), access_log=None, handle_signals=False, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, ssl_context=config.ssl_context)
    try:
        await site.start()
        if preload:
            await state.preload()
    except BaseException:
        await runner.cleanup()
        raise
    state.ready = True
    return Server(runner, site, api), state


def server_url(server: Server, *, tls: bool = False) -> str:
    host, port = server.runner.addresses[0][:2]
    if ":" in host:
        host = f"[{host}]"
    return f"{'wss' if tls else 'ws'}://{host}:{port}"


async def serve_forever(
    config: ServerConfig,
    *,
    ready: Callable[[str], Awaitable[None] | None] | None = None,
    shutdown: Shutdown | None = None,
) -> None:
    """Run until `shutdown` is signalled, then drain (`config.drain_timeout_s`) and stop; or until
    cancelled, which stops at once."""
    server, _ = await start_server(config)
    shutdown = shutdown or Shutdown()
    async with server:
        if ready is not None:
            result = ready(server_url(server, tls=config.ssl_context is not None))
            if asyncio.iscoroutine(result):
                await result
        await shutdown.requested.wait()
        await server.drain(config.drain_timeout_s, hurry=shutdown.hurried)
