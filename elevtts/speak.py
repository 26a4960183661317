"""Speak one text source into files: the job behind `elevtts speak` and each file of `elevtts batch`.

Text is read as it arrives (stdin is not waited for), split into chunks, and sent with the
chosen flush policy; audio is written as it arrives. While input pauses, buffered text is
flushed after `idle_flush_ms` and a keep-alive goes out before the inactivity timeout.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from elevtts.audio import DurationMeter
from elevtts.chunking import Chunk, TextSplitter
from elevtts.client import Endpoint, Session, Stream, StreamOptions, StreamStats
from elevtts.config import SendFlush, StreamConfig
from elevtts.display import Display, SilentDisplay
from elevtts.errors import ConnectError, ConnectionDropped, ElevttsError, InputError, OutputError
from elevtts.markdown import MarkdownStripper
from elevtts.output import AudioFile, ChunkWriter, OutputPaths, write_json, write_text
from elevtts.player import AudioPlayer
from elevtts.protocol import AudioFrame, StreamParams
from elevtts.retry import Backoff, is_retryable, retry_hint_for
from elevtts.subtitles import SubtitleBuilder, to_json, to_srt, to_vtt

READ_SIZE = 64 * 1024
UNAVAILABLE = 503  # a handshake refused by a draining or full server: it says when to come back
RETRIES = 3  # attempts to reconnect and resume after dropped connections, in one run
INPUT_SENT = "all text sent"  # the display's state once the end of input has gone out
NOTHING_TO_SPEAK = "nothing to speak: the input has no letters or digits"
_FLUSH_AFTER = {
    "sentence": frozenset({"sentence", "paragraph"}),
    "paragraph": frozenset({"paragraph"}),
    "end": frozenset(),
    "never": frozenset(),
}


@dataclass(frozen=True)
class SendPolicy:
    flush: SendFlush = "end"  # when to send flush: true (a final flush always happens at the end)
    try_trigger_generation: bool = False
    idle_flush_ms: int = 600  # flush buffered text when input pauses this long (0: never)
    strip_markdown: bool = False
    max_chunk_chars: int = 250


@dataclass(frozen=True)
class OutputPlan:
    paths: OutputPaths | None  # None: no files (audio to stdout only)
    keep_chunks: bool = False
    subtitles: tuple[str, ...] = ()  # SubtitleKind values, checked by elevtts.config
    force: bool = False
    stdout: BinaryIO | None = None  # -o -: raw audio here as it arrives
    write_stats: bool = True
    player: AudioPlayer | None = None  # --play


@dataclass
class SpeakResult:
    audio_path: Path | None
    stats: dict[str, Any]
    ok: bool = True
    error: str | None = None
    part_path: Path | None = None
    extra_files: dict[str, Path] = field(default_factory=dict)  # by kind: srt, vtt, json, stats


def speakable(text: str) -> bool:
    """Whether the text holds anything to say: a letter or a digit (not only spaces or punctuation)."""
    return any(char.isalnum() for char in text)


# ---------------------------------------------------------------------------------------------
# Text sources: async iterators of text fragments


async def text_source(text: str) -> AsyncIterator[str]:
    yield text


async def file_source(path: Path, *, digest: Any = None) -> AsyncIterator[str]:
    """Read a UTF-8 file in pieces (memory stays flat; a BOM is dropped), with a clear error.

    `digest` (a hashlib object), if given, takes every byte read: the hash of the text actually
    spoken, even if the file changes meanwhile.
    """
    try:
        # Opened here, not in a thread: a cancel while a thread opens it would leak the handle.
        handle = open(path, "rb")  # noqa: SIM115  (closed in the finally below)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
    offset = 0
    try:
        while True:
            try:
                data = await asyncio.to_thread(handle.read, READ_SIZE)
            except OSError as exc:
                raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
            if digest is not None:
                digest.update(data)
            try:
                text = decoder.decode(data, final=not data)
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"{path} is not UTF-8 text ({exc.reason} at byte {offset + exc.start})"
                ) from None
            offset += len(data)
            if text:
                yield text
            if not data:
                return
    finally:
        handle.close()


async def document_source(path: Path) -> AsyncIterator[str]:
    """A whole Markdown file as its spoken text: a CommonMark parser needs the whole document."""
    from elevtts.markdown import strip_markdown_document

    pieces = [piece async for piece in file_source(path)]
    yield strip_markdown_document("".join(pieces))


async def stripped_source(source: AsyncIterator[str]) -> AsyncIterator[str]:
    """Markdown stripped from a stream, line by line, as it arrives."""
    stripper = MarkdownStripper()
    async for piece in source:
        if text := stripper.feed(piece):
            yield text
    if tail := stripper.flush():
        yield tail


def open_stream(path: Path) -> int:
    """A file descriptor for a pipe or device path (`/dev/stdin`, `<(cmd)`), read as a stream."""
    try:
        return os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


async def stream_source(fd: int, *, name: str = "standard input") -> AsyncIterator[str]:
    """Yield text from a file descriptor as soon as it arrives (not line- or EOF-buffered).

    The blocking reads run on a daemon thread, so a silent producer never blocks the loop
    or the exit.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | Exception | None] = asyncio.Queue()

    def deliver(item: bytes | Exception | None) -> bool:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop is closed (Ctrl-C, an error): nobody reads any more
            return False
        return True

    def pump() -> None:
        while True:
            try:
                data = os.read(fd, READ_SIZE)
            except OSError as exc:
                deliver(exc)
                return
            if not deliver(data or None) or not data:
                return

    threading.Thread(target=pump, name="elevtts-stdin", daemon=True).start()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    while True:
        item = await queue.get()
        if isinstance(item, Exception):
            raise InputError(f"cannot read {name}: {item}")
        try:
            text = decoder.decode(item or b"", final=item is None)
        except UnicodeDecodeError as exc:
            raise InputError(f"{name} is not UTF-8 text ({exc.reason})") from None
        if text:
            yield text
        if item is None:
            return


async def chain(*sources: AsyncIterator[str]) -> AsyncIterator[str]:
    """Several sources read one after the other, as one text (a paragraph break between)."""
    for index, source in enumerate(sources):
        if index:
            yield "\n\n"
        async for piece in source:
            yield piece


# ---------------------------------------------------------------------------------------------
# Sending


class _Sender:
    """Turns incoming fragments into protocol messages under the send policy.

    The source is read once, by `start_reading`; `pump` sends on the current `stream` and may be
    run again on a new stream after a dropped connection, which `resend` first brings up to date.
    """

    def __init__(
        self,
        policy: SendPolicy,
        keepalive_s: float,
        on_sent: Callable[[int], None],
        on_end: Callable[[], None] | None = None,
    ) -> None:
        self.stream: Stream | None = None
        self.policy = policy
        self.keepalive_s = keepalive_s
        self.on_sent = on_sent
        self.on_end = on_end  # every character of the input has been sent
        self.splitter = TextSplitter(max_chars=policy.max_chunk_chars)
        self.markdown = MarkdownStripper() if policy.strip_markdown else None
        self.sent: list[str] = []  # every chunk handed to a connection, in order
        self.sent_chars = 0
        self.unflushed = False  # text sent since the last flush
        self.ended = False  # the end of input was sent
        self.has_words = False  # a chunk with something to say was sent
        self._held: list[Chunk] = []  # chunks of punctuation only, before the first word
        self._queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    def start_reading(self, source: AsyncIterator[str]) -> None:
        async def read() -> None:
            try:
                async for piece in source:
                    await self._queue.put(piece)
                await self._queue.put(None)
            except BaseException as exc:  # handed to the sender, which raises it
                await self._queue.put(exc)

        self._reader = asyncio.create_task(read())

    async def stop_reading(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def run(self, source: AsyncIterator[str]) -> None:
        self.start_reading(source)
        try:
            await self.pump()
        finally:
            await self.stop_reading()

    async def pump(self) -> None:
        """Send what the source yields until its end, then the end of input."""
        queue = self._queue
        last_send = time.monotonic()
        while not self.ended:
            timeout = self._wait_timeout(last_send)
            try:
                item = await asyncio.wait_for(queue.get(), timeout)
            except TimeoutError:
                last_send = await self._on_idle(last_send)
                continue
            if isinstance(item, BaseException):
                raise item
            if item is None:
                tail = self.markdown.flush() if self.markdown else ""
                await self._send_chunks(self.splitter.feed(tail) + self.splitter.flush())
                if not self.has_words:
                    raise InputError(NOTHING_TO_SPEAK)
                await self._end()
                return
            text = self.markdown.feed(item) if self.markdown else item
            chunks = self.splitter.feed(text)
            if queue.empty():  # the producer paused: a finished sentence goes out now
                chunks += self.splitter.finished_sentence()
            if await self._send_chunks(chunks):
                last_send = time.monotonic()

    def unconfirmed(self, confirmed: int) -> tuple[str, int]:
        """The text sent after the first `confirmed` non-space characters (whose audio arrived).

        A word cut in two is sent again from its start: the second value says how many
        non-space characters the new stream starts after.
        """
        text = "".join(self.sent)
        word_start, word_seen, seen = 0, 0, 0
        for index, char in enumerate(text):
            if char.isspace():
                word_start, word_seen = index + 1, seen
            elif seen == confirmed:
                if index > word_start:  # inside a word
                    return text[word_start:], word_seen
                return text[index:], seen
            else:
                seen += 1
        return "", seen

    async def resend(self, text: str) -> None:
        """On a new stream: send again what the old one did not speak, then carry on."""
        assert self.stream is not None
        if text:
            await self.stream.send(text if text.endswith(" ") else text + " ", flush=True)
        if self.ended:
            self.ended = False
            await self._end()

    async def _end(self) -> None:
        assert self.stream is not None
        self.ended = True
        await self.stream.end()
        if self.on_end is not None:
            self.on_end()

    def _wait_timeout(self, last_send: float) -> float:
        waits = [max(0.05, self.keepalive_s - (time.monotonic() - last_send))]
        if self.policy.idle_flush_ms and (self.splitter.pending().strip() or self.unflushed):
            waits.append(self.policy.idle_flush_ms / 1000)
        return min(waits)

    async def _on_idle(self, last_send: float) -> float:
        """Input paused: flush what is buffered, or keep the stream alive."""
        if self.policy.idle_flush_ms and (self.splitter.pending().strip() or self.unflushed):
            chunks = self.splitter.flush()
            flush = self.policy.flush != "never"
            if chunks:
                await self._send_chunks(chunks, force_flush=flush)
            elif flush:
                assert self.stream is not None
                await self.stream.flush()
            self.unflushed = False
            return time.monotonic()
        if time.monotonic() - last_send >= self.keepalive_s:
            assert self.stream is not None
            await self.stream.keepalive()
            return time.monotonic()
        return last_send

    async def _send_chunks(self, chunks: list[Chunk], *, force_flush: bool = False) -> bool:
        assert self.stream is not None
        if not self.has_words:
            # Nothing goes out before the first word: an input with none is refused, not synthesized.
            self._held.extend(chunks)
            if not any(speakable(chunk.text) for chunk in chunks):
                return False
            chunks, self._held = self._held, []
            self.has_words = True
        # Recorded before sending: a chunk lost with a dropped connection is sent again.
        self.sent.extend(chunk.text for chunk in chunks)
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            flush = chunk.boundary in _FLUSH_AFTER[self.policy.flush] or (force_flush and last)
            await self.stream.send(chunk.text, flush=flush, try_trigger=self.policy.try_trigger_generation)
            self.sent_chars += len(chunk.text)
            self.unflushed = not flush
            self.on_sent(self.sent_chars)
        return bool(chunks)


# ---------------------------------------------------------------------------------------------
# Receiving


def _wav_sample_rate(output_format: str) -> int:
    from elevtts.formats import parse_output_format

    found = parse_output_format(output_format)
    if found.codec != "pcm":
        raise OutputError(f"a .wav file holds pcm_* audio, not {output_format}")
    return found.sample_rate


class _Receiver:
    """Writes each audio frame where the plan says, as it arrives."""

    def __init__(self, plan: OutputPlan, output_format: str, display: Display) -> None:
        self.plan = plan
        self.display = display
        self.meter = DurationMeter(output_format)
        self.subtitles = SubtitleBuilder() if plan.subtitles else None
        wav_rate = (
            _wav_sample_rate(output_format) if plan.paths and plan.paths.extension.lower() == "wav" else None
        )
        self.audio = AudioFile(plan.paths, wav_sample_rate=wav_rate) if plan.paths else None
        self.chunks = ChunkWriter(plan.paths) if plan.paths and plan.keep_chunks else None
        self.input_sent = False

    def open(self) -> None:
        """Open the `.part` (once: a resumed stream appends to the same file)."""
        if self.audio is not None and not self.audio.is_open:
            self.audio.open()

    def resume(self, *, repeat_word: bool) -> None:
        if self.subtitles is not None:
            self.subtitles.resume(repeat_word=repeat_word)

    def write(self, frame: AudioFrame) -> None:
        if self.subtitles is not None:
            self.subtitles.add(frame.alignment or frame.normalized_alignment, self.meter.seconds)
        self.meter.feed(frame.audio)
        if self.audio is not None:
            self.audio.write(frame.audio)
        if self.chunks is not None:
            self.chunks.write(frame.audio, frame.alignment, frame.normalized_alignment)
        if self.plan.stdout is not None:
            try:
                self.plan.stdout.write(frame.audio)
                self.plan.stdout.flush()
            except BrokenPipeError:
                raise OutputError("standard output was closed (the player or pipe went away)") from None
            except OSError as exc:
                raise OutputError(f"cannot write to standard output: {exc.strerror or exc}") from None
        if self.plan.player is not None:
            self.plan.player.feed(frame.audio)
        # once all the text is sent, the state says so (the audio still counts up)
        self.display.update(state=None if self.input_sent else "speaking", audio_s=self.meter.seconds)


async def speak(
    source: AsyncIterator[str],
    *,
    endpoint: Endpoint,
    options: StreamOptions,
    policy: SendPolicy,
    plan: OutputPlan,
    display: Display | None = None,
    multi: bool = False,
    settings_for_stats: dict[str, Any] | None = None,
    label: str = "speak",
    retries: int = RETRIES,
    backoff: Backoff | None = None,
) -> SpeakResult:
    """Speak everything `source` yields. Raises `ElevttsError` subclasses; keeps `.part` on failure.

    A dropped connection is resumed on a new one from the last confirmed audio; `retries`
    reconnection attempts in all (a refused one counts), `backoff` apart. When they run out,
    or without alignment to resume from, `ConnectionDropped`.
    """
    display = display or SilentDisplay()
    backoff = backoff or Backoff()
    if plan.paths is not None:
        plan.paths.check_free(force=plan.force, subtitle_kinds=plan.subtitles)
    receiver = _Receiver(plan, options.params.output_format, display)
    started = time.monotonic()
    display.start(label, endpoint.display)
    stream: Stream | None = None
    stats = StreamStats(started_at=started)
    keepalive_s = max(1.0, options.params.inactivity_timeout * 0.5)

    def input_sent() -> None:
        receiver.input_sent = True
        display.update(state=INPUT_SENT)

    sender = _Sender(policy, keepalive_s, lambda n: display.update(chars_sent=n), on_end=input_sent)
    if plan.player is not None:
        await plan.player.start()
        if plan.player.failed:
            display.note(f"elevtts: --play: {plan.player.failed}; saving only")
    sender.start_reading(source)
    dropped: ConnectionDropped | None = None  # the drop being recovered from
    attempts = 0  # reconnection attempts so far
    told_to_retry = False  # a handshake was refused with 503: the server asked to come back
    try:
        while True:
            try:
                async with Session.open(endpoint, options, multi=multi) as session:
                    receiver.open()
                    stream = sender.stream = await session.start(stats=stats)
                    display.update(state="sending")
                    if stats.audio_chunks or sender.sent:
                        confirmed = stats.spoken_chars_confirmed or 0
                        rest, restart = sender.unconfirmed(confirmed)
                        receiver.resume(repeat_word=restart < confirmed)
                        stats.resumed(restart)
                        await sender.resend(rest)
                    await _run_both(sender.pump(), _receive(stream, receiver))
                    if multi:
                        with contextlib.suppress(ElevttsError):
                            await session.close_socket()
                break
            except (ConnectionDropped, ConnectError) as exc:
                # Resume on a new connection from the last audio the alignment confirms.
                if isinstance(exc, ConnectionDropped):
                    if stats.spoken_chars_confirmed is None:
                        raise  # no alignment: where to resume is unknown
                    dropped = exc
                elif exc.status == UNAVAILABLE:
                    # A draining or full server asks to come back (Retry-After): even the first
                    # connection is retried, and so is the next failure (a restart under way).
                    told_to_retry = True
                if isinstance(exc, ConnectError) and (
                    not is_retryable(exc) or (dropped is None and not told_to_retry)
                ):
                    raise  # the first connection's failure, or a refusal that will not change
                attempts += 1
                if attempts > retries:
                    if dropped is None:
                        raise
                    tried = f"{retries} reconnection attempt{'s' if retries != 1 else ''}"
                    gave_up = f"{dropped.message}; gave up after {tried} ({exc.message})"
                    raise ConnectionDropped(gave_up) from None
                delay = backoff.delay(attempts, retry_hint_for(exc))
                then = "to resume from the last confirmed audio" if dropped is not None else "to start"
                display.note(
                    f"elevtts: {exc.message}; reconnecting in {delay:.1f} s {then} "
                    f"(attempt {attempts} of {retries})"
                )
                await asyncio.sleep(delay)
    except BaseException as exc:
        display.stop()
        if plan.player is not None:
            await plan.player.cancel()
        part = receiver.audio.abandon() if receiver.audio is not None else None
        if isinstance(exc, ElevttsError) and part is not None:
            exc.message += f" (partial audio kept in {part})"
            exc.args = (exc.message,)
        failed = isinstance(exc, ElevttsError | asyncio.CancelledError | KeyboardInterrupt)
        said = sender.sent_chars > 0  # with nothing sent there is nothing to describe
        if failed and said and plan.paths is not None and plan.write_stats and stream is not None:
            summary = _summary(
                stream,
                receiver,
                started,
                settings_for_stats,
                ok=False,
                error=str(exc),
                voice_load_ms=endpoint.voice_load_ms,
            )
            with contextlib.suppress(OutputError):
                write_json(plan.paths.stats, summary)
        raise
    finally:
        await sender.stop_reading()
    display.stop()
    if plan.player is not None:
        if not plan.player.failed:
            display.note("playing the rest of the audio...")
        await plan.player.finish()
    summary = _summary(
        stream,
        receiver,
        started,
        settings_for_stats,
        ok=True,
        error=None,
        voice_load_ms=endpoint.voice_load_ms,
    )
    result = SpeakResult(audio_path=None, stats=summary)
    if receiver.audio is not None and plan.paths is not None:
        result.audio_path = receiver.audio.commit()
        if receiver.subtitles is not None:
            words = receiver.subtitles.finish()
            renderers = {"srt": to_srt, "vtt": to_vtt, "json": to_json}
            for kind in plan.subtitles:
                path = plan.paths.subtitles(kind)
                write_text(path, renderers[kind](words))
                result.extra_files[kind] = path
        if plan.write_stats:
            write_json(plan.paths.stats, summary)
            result.extra_files["stats"] = plan.paths.stats
    return result


async def _receive(stream: Stream, receiver: _Receiver) -> None:
    async for frame in stream:
        receiver.write(frame)


async def _run_both(sending: Any, receiving: Any) -> None:
    """Send and receive at once; the first failure cancels the other side and is raised."""
    tasks = [asyncio.ensure_future(sending), asyncio.ensure_future(receiving)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            if task in done and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        if tasks[1] in done and not tasks[0].done():
            raise ConnectionDropped("the server ended the stream before all the text was sent")
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _summary(
    stream: Stream,
    receiver: _Receiver,
    started: float,
    settings: dict[str, Any] | None,
    *,
    ok: bool,
    error: str | None,
    voice_load_ms: float | None = None,
) -> dict[str, Any]:
    stats = stream.stats
    stats.finished_at = stats.finished_at or time.monotonic()
    summary = stats.summary()
    audio_s = round(receiver.meter.seconds, 3)
    summary["audio_seconds"] = audio_s
    wall_s = (stats.finished_at - started) if stats.finished_at else None
    summary["real_time_factor"] = round(wall_s / audio_s, 4) if wall_s and audio_s else None
    summary["ok"] = ok
    if voice_load_ms is not None:
        summary["voice_load_ms"] = voice_load_ms
    if error:
        summary["error"] = error
    if settings is not None:
        summary["settings"] = settings
    return summary


def stream_options(config: StreamConfig) -> StreamOptions:
    """What the opener and the query string carry, from the run's configuration."""
    params = StreamParams(
        model_id=config.model,
        output_format=config.output_format.name,
        inactivity_timeout=config.inactivity_timeout,
        sync_alignment=config.sync_alignment,
        auto_mode=config.auto_mode,
        language_code=config.language_code,
        seed=config.seed,
        apply_text_normalization=config.apply_text_normalization,
    )
    return StreamOptions(
        voice_id=config.voice_id,
        params=params,
        voice_settings=dict(config.voice_settings) or None,
        schedule=config.chunk_length_schedule,
        dictionary_locators=config.pronunciation_dictionaries,
    )


def send_policy(config: StreamConfig, *, markdown_input: bool, streamed: bool) -> SendPolicy:
    return SendPolicy(
        flush=config.flush_for(streamed=streamed),
        try_trigger_generation=config.try_trigger_generation,
        idle_flush_ms=config.idle_flush_ms,
        strip_markdown=config.strip_markdown_for(markdown_input=markdown_input),
    )


def options_for_stats(options: StreamOptions, policy: SendPolicy, target: str) -> dict[str, Any]:
    """The settings worth recording next to the audio: never a key."""
    params = asdict(options.params)
    params.pop("authorization", None)
    return {
        "target": target,
        "voice_id": options.voice_id,
        **params,
        "voice_settings": None if options.voice_settings is None else dict(options.voice_settings),
        "chunk_length_schedule": None if options.schedule is None else list(options.schedule),
        "pronunciation_dictionary_locators": [loc.to_json() for loc in options.dictionary_locators],
        "flush": policy.flush,
        "try_trigger_generation": policy.try_trigger_generation,
        "idle_flush_ms": policy.idle_flush_ms,
        "strip_markdown": policy.strip_markdown,
    }


def settings_for_stats(config: StreamConfig, policy: SendPolicy | None = None) -> dict[str, Any]:
    """`options_for_stats` for a run's configuration; without a policy, the flags as given."""
    settings = options_for_stats(
        stream_options(config),
        policy or send_policy(config, markdown_input=False, streamed=False),
        config.target.description,
    )
    if policy is None:
        settings.update(flush=config.flush, strip_markdown=config.strip_markdown)
    settings["multi"] = config.multi
    return settings


def stdin_is_piped() -> bool:
    try:
        return not sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False
