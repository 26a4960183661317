"""Shared fixtures: real servers on loopback port 0, each in its own thread and event loop.

A thread keeps the server independent of the code under test, which may call `asyncio.run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import miniaudio
import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from elevtts.server.app import ServerConfig, server_url, start_server


class ServerThread:
    """Run an asyncio server factory in a background thread until `stop()`."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._loop = asyncio.new_event_loop()
        self._stopped: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready: Future[str] = Future()
        self.server: Any = None

    def start(self) -> str:
        self._thread.start()
        return self._ready.result(timeout=60)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
            self._loop.close()

    async def _main(self) -> None:
        self._stopped = asyncio.Event()
        try:
            self.server, url = await self._factory()
        except BaseException as exc:
            self._ready.set_exception(exc)
            return
        self._ready.set_result(url)
        await self._stopped.wait()
        self.server.close()
        await self.server.wait_closed()

    def call(self, coroutine: Any) -> Any:
        """Run a coroutine on the server's loop (e.g. to stop it mid-test)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    def stop(self) -> None:
        if self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout=30)


def run_local_server(config: ServerConfig) -> tuple[ServerThread, str]:
    async def factory() -> tuple[Any, str]:
        server, _ = await start_server(config)
        return server, server_url(server, tls=config.ssl_context is not None)

    thread = ServerThread(factory)
    return thread, thread.start()


@pytest.fixture(scope="session")
def local_server() -> Iterator[str]:
    """The real local server with both voices (espeak for speed, joe for the neural tests)."""
    thread, url = run_local_server(ServerConfig(port=0))
    yield url
    thread.stop()


@pytest.fixture(scope="session")
def keyed_server() -> Iterator[str]:
    thread, url = run_local_server(ServerConfig(port=0, api_key="sesame", voices=("espeak",)))
    yield url
    thread.stop()


# ---------------------------------------------------------------------------------------------
# Talking to a server at the wire level


@dataclass
class Exchange:
    """What a raw client saw: every JSON frame, and how the socket closed."""

    frames: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""

    @property
    def audio_frames(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("audio")]

    def audio(self, context_id: str | None = None) -> bytes:
        import base64

        return b"".join(
            base64.b64decode(f["audio"])
            for f in self.audio_frames
            if context_id is None or f.get("contextId") == context_id
        )

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if "error" in f]

    def finals(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("isFinal")]


async def exchange(
    url: str,
    messages: list[Any],
    *,
    headers: dict[str, str] | None = None,
    pause: float = 0.0,
    until_close: bool = True,
    timeout: float = 60,
) -> Exchange:
    """Send each message (dicts become JSON; str/bytes go raw; a float sleeps), then read to the close."""
    loop = asyncio.get_running_loop()
    result = Exchange()
    async with connect(url, additional_headers=headers or {}, max_size=None) as ws:

        async def read() -> None:
            with contextlib.suppress(ConnectionClosed):
                async for raw in ws:
                    result.frames.append(json.loads(raw))
                    result.arrivals.append(loop.time())

        reader = asyncio.create_task(read())
        for message in messages:
            if isinstance(message, float | int) and not isinstance(message, bool):
                await asyncio.sleep(message)
                continue
            try:
                await ws.send(message if isinstance(message, str | bytes) else json.dumps(message))
            except ConnectionClosed:
                break  # the server closed first (e.g. it refused the request): read why
            if pause:
                await asyncio.sleep(pause)
        if until_close:
            await asyncio.wait_for(reader, timeout)
        else:
            reader.cancel()
        result.close_code = ws.close_code
        result.close_reason = ws.close_reason or ""
    return result


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


# ---------------------------------------------------------------------------------------------
# Audio checks


def decode_mp3(data: bytes) -> tuple[np.ndarray, int]:
    info = miniaudio.mp3_get_info(data)  # decode() would resample to 44100 by default
    decoded = miniaudio.decode(data, nchannels=1, sample_rate=info.sample_rate)
    return np.frombuffer(decoded.samples, dtype=np.int16), info.sample_rate


def decode_opus(data: bytes) -> tuple[np.ndarray, int]:
    """Ogg Opus -> int16 mono samples and their rate, through PyAV (the 'opus' extra)."""
    import io

    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "opus" and container.format.name == "ogg"
        chunks = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
        rate = stream.codec_context.sample_rate
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if pcm.dtype != np.int16:  # the decoder gives float planar samples
        pcm = np.clip(np.rint(pcm * 32768), -32768, 32767).astype(np.int16)
    return pcm, rate


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0


def assert_speech(samples: np.ndarray, rate: int, *, words: int) -> None:
    """Speech-length and not silent: roughly 0.15-0.8 s per word, RMS well above silence."""
    seconds = len(samples) / rate
    assert 0.15 * words <= seconds <= 0.8 * words + 1.0, f"{seconds:.2f} s for {words} words"
    assert rms(samples) > 300, f"RMS {rms(samples):.0f}: silent"
