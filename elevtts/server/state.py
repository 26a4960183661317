"""The server's shared state: the session rules, the engine slots, the pace of each voice, the
open sockets, readiness and draining, the metrics. Both transports (`transport` for the WebSocket,
`http` for the routes) hold one, so every endpoint shares the same engine and pace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from elevtts.logs import log_event
from elevtts.server.config import ServerConfig
from elevtts.server.encode import opus_available
from elevtts.server.engines import SynthesisOptions, available_voices, get_engine, language_voices
from elevtts.server.metrics import Metrics, SessionRecord
from elevtts.server.pacing import Pacer
from elevtts.server.session import SessionRules, TextBudget
from elevtts.server.slots import Slots
from elevtts.server.synthesis import Frame

if TYPE_CHECKING:
    from elevtts.server.transport import Socket

log = logging.getLogger("elevtts.server")

# Two lengths give the pace a line (a cost per call and per character); the first run warms the
# engine up and times as the later ones do, so it counts too.
WARM_UP_TEXTS = ("One moment.", "The voice is getting ready to speak.")


class StreamServer:
    """The server's shared state: the session rules, the engine slots, the pace of each voice."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.slots = Slots(config.synthesis_slots)  # first pieces before the later ones
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
        self.opening = 0  # handshakes under way, counted so the limit holds under a burst
        self.sockets: set[Socket] = set()
        self.ready = False  # voices loaded and warmed up: /health answers 200
        self.draining = False  # stopping: new sessions are refused, open ones finish
        self.metrics = Metrics()

    async def preload(self, voice_ids: Iterable[str] | None = None, *, warm_up: bool = True) -> None:
        """Load voices now (default: every served one), so the first request does not pay for it.

        Each voice speaks two short texts: they warm the engine up and give a first measure of its
        pace. Without `warm_up` the voice is only loaded: its first run is no slower than the
        next, and the first piece is cut short without a pace, so a one-shot client (the
        embedded server of `speak`) gets its first audio sooner. By default a voice that shares
        another's engine (the espeak-ng languages) is left to load on first use (a millisecond).
        """
        if voice_ids is None:
            shared = {v.voice_id for v in available_voices() if v.shares_engine_with is not None}
            voice_ids = [v for v in self.voice_ids if v not in shared]
        for voice_id in voice_ids:
            loading = time.perf_counter()
            engine = await asyncio.to_thread(get_engine, voice_id)
            load_s = time.perf_counter() - loading
            self.metrics.voice_load.labels(voice_id).set(load_s)
            log_event(log, "voice_loaded", voice=voice_id, load_time_s=round(load_s, 3))
            for text in WARM_UP_TEXTS if warm_up else ():
                started = time.perf_counter()
                await asyncio.to_thread(engine.synthesize, text, SynthesisOptions())
                self.pacer.pace(voice_id).record(len(text), time.perf_counter() - started)

    @property
    def full(self) -> bool:
        return self.connections + self.opening >= self.config.max_connections

    def session_started(self, record: SessionRecord) -> None:
        self.metrics.session_started(record)

    def session_ended(self, record: SessionRecord) -> None:
        """Counted in the metrics and logged as one `session_end` event (never the text or key)."""
        self.metrics.session_ended(record)
        log_event(
            log,
            "session_end",
            session_id=record.session_id,
            endpoint=record.endpoint,
            voice=record.voice or None,
            model=record.model,
            output_format=record.output_format,
            close_code=record.code,
            error=record.error,
            ttfb_ms=None if record.ttfb_s is None else round(record.ttfb_s * 1000, 1),
            characters=record.characters,
            audio_seconds=round(record.audio_s, 3),
            duration_s=round(record.duration_s, 3),
        )

    def piece_synthesized(self, voice: str, frames: list[Frame], synthesis_s: float) -> None:
        audio_s = sum(timing.duration_ms for _, timing in frames) / 1000
        self.metrics.piece_synthesized(voice, synthesis_s=synthesis_s, audio_s=audio_s)

    async def close_sockets(self, code: int) -> None:
        """Close every open WebSocket (1001 going away; 1012 service restart at a drain's deadline)."""
        await asyncio.gather(*(socket.close(code) for socket in list(self.sockets)), return_exceptions=True)
