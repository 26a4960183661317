"""`--play`: pipe audio into a local player program while it arrives, or play it in-process with
miniaudio (the `play` extra) when no program is installed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import threading
from collections.abc import Generator, Iterator
from typing import Any, Protocol

from elevtts.formats import OutputFormat


def player_command(output_format: OutputFormat) -> list[str] | None:
    """The first installed player that can read this format from stdin, or None."""
    codec = output_format.codec
    rate = str(output_format.sample_rate)
    candidates: list[list[str]] = []
    if codec == "mp3":
        candidates = [
            ["ffplay", "-nodisp", "-autoexit", "-loglevel", "error", "-i", "-"],
            ["mpv", "--no-video", "--really-quiet", "-"],
            ["mpg123", "-q", "-"],
        ]
    elif codec in ("pcm", "ulaw", "alaw"):
        aplay_format = {"pcm": "S16_LE", "ulaw": "MU_LAW", "alaw": "A_LAW"}[codec]
        ff_format = {"pcm": "s16le", "ulaw": "mulaw", "alaw": "alaw"}[codec]
        candidates = [
            ["aplay", "-q", "-f", aplay_format, "-r", rate, "-c", "1"],
            [
                "ffplay",
                "-nodisp",
                "-autoexit",
                "-loglevel",
                "error",
                "-f",
                ff_format,
                "-ar",
                rate,
                "-ch_layout",
                "mono",
                "-i",
                "-",
            ],
        ]
    for command in candidates:
        if shutil.which(command[0]):
            return command
    return None


class AudioPlayer(Protocol):
    """What `speak` needs of a player: started, fed as audio arrives, then finished or cancelled."""

    failed: str | None

    async def start(self) -> None: ...
    def feed(self, data: bytes) -> None: ...
    async def finish(self) -> None: ...
    async def cancel(self) -> None: ...


class Player:
    """Feeds audio to the player without ever blocking the receive loop."""

    def __init__(self, command: list[str]) -> None:
        self.command = command
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.failed: str | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def feed(self, data: bytes) -> None:
        if self.failed is None:
            self._queue.put_nowait(data)

    async def finish(self) -> None:
        """Let the player play what it has, then wait for it."""
        self._queue.put_nowait(None)
        if self._task is not None:
            await self._task

    async def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        process = await asyncio.create_subprocess_exec(
            *self.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert process.stdin is not None
        try:
            while (data := await self._queue.get()) is not None:
                process.stdin.write(data)
                await process.stdin.drain()
            process.stdin.close()
            await process.wait()
        except (BrokenPipeError, ConnectionResetError):
            self.failed = f"{self.command[0]} stopped reading"
        except asyncio.CancelledError:
            process.kill()
            await process.wait()
            raise


# ---------------------------------------------------------------------------------------------
# In-process playback (miniaudio), when no player program is installed


class _ByteStream:
    """Bytes handed from the event loop to the sound thread: `read` waits for data or the end."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._ended = False
        self._ready = threading.Condition()

    def feed(self, data: bytes) -> None:
        with self._ready:
            self._data += data
            self._ready.notify_all()

    def end(self) -> None:
        with self._ready:
            self._ended = True
            self._ready.notify_all()

    def read(self, size: int, *, wait_s: float = 1.0) -> bytes:
        """Up to `size` bytes; b"" only at the end (or when nothing came for `wait_s`)."""
        with self._ready:
            self._ready.wait_for(lambda: self._data or self._ended, timeout=wait_s)
            chunk = bytes(self._data[:size])
            del self._data[:size]
            return chunk

    @property
    def ended(self) -> bool:
        with self._ready:
            return self._ended and not self._data


STREAM_QUIET_S = 60.0  # the longest pause in the audio the in-process mp3 decoder waits through


class InProcessPlayer:
    """`--play` with no player program: decode (mp3) or pass (pcm) the audio to a sound device
    through miniaudio, as it arrives. Same interface as `Player`."""

    CODECS = ("mp3", "pcm")

    def __init__(self, output_format: OutputFormat) -> None:
        self.output_format = output_format
        self.failed: str | None = None
        self.stream = _ByteStream()
        self._device: Any = None
        self._drained = threading.Event()  # the sound thread has played everything

    def frames(self) -> Generator[Any, int, None]:
        """The samples to play, 16-bit mono at the format's rate: a miniaudio playback generator
        (each `send` asks for a number of frames)."""
        import miniaudio

        rate = self.output_format.sample_rate
        try:
            if self.output_format.codec == "mp3":
                stream = self.stream

                class Source(miniaudio.StreamableSource):
                    def read(self, num_bytes: int) -> bytes:
                        # b"" ends the decoding: wait as long as a stream may go quiet
                        return stream.read(num_bytes, wait_s=STREAM_QUIET_S)

                wanted = yield b""
                # created here, in the sound thread: the decoder reads the first audio to start
                decoded = miniaudio.stream_any(
                    Source(), miniaudio.FileFormat.MP3, nchannels=1, sample_rate=rate, frames_to_read=1024
                )
                while True:
                    try:
                        samples = decoded.send(max(1, wanted))
                    except StopIteration:
                        return
                    wanted = yield samples
            else:
                wanted = yield b""
                while True:
                    data = self.stream.read(max(1, wanted) * 2, wait_s=0.05)
                    if not data and self.stream.ended:
                        return
                    wanted = yield data or bytes(max(1, wanted) * 2)  # silence while audio is late
        finally:
            self._drained.set()

    async def start(self) -> None:
        try:
            import miniaudio

            with _native_stderr_silenced():  # ALSA prints a page of probing errors when there is no card
                self._device = miniaudio.PlaybackDevice(
                    output_format=miniaudio.SampleFormat.SIGNED16,
                    nchannels=1,
                    sample_rate=self.output_format.sample_rate,
                )
            frames = self.frames()
            next(frames)  # primed: miniaudio sends the first frame count
            self._device.start(frames)
        except Exception as exc:  # no sound device, no backend: saving still works
            reason = exc.args[0] if exc.args and isinstance(exc.args[0], str) else exc
            self.failed = f"cannot play in-process: no sound device ({reason})"
            self._close()

    def feed(self, data: bytes) -> None:
        if self.failed is None:
            self.stream.feed(data)

    async def finish(self) -> None:
        """Let the device play what it has, then close it."""
        self.stream.end()
        if self._device is not None:
            await asyncio.to_thread(self._drained.wait, 600)
        self._close()

    async def cancel(self) -> None:
        self.stream.end()
        self._close()

    def _close(self) -> None:
        if self._device is not None:
            with contextlib.suppress(Exception):
                self._device.close()
            self._device = None


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 points to /dev/null for a moment: C libraries write there directly."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def in_process_player(output_format: OutputFormat) -> InProcessPlayer | None:
    """The miniaudio fallback for this format, if miniaudio is installed and can play it."""
    if output_format.codec not in InProcessPlayer.CODECS:
        return None
    try:
        import miniaudio  # noqa: F401
    except ImportError:
        return None
    return InProcessPlayer(output_format)
