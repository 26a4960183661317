"""`--play`: pipe audio into a local player while it arrives, if one is installed."""

from __future__ import annotations

import asyncio
import contextlib
import shutil

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
