"""The local server's settings, fixed when it starts.

Pure: a frozen dataclass; the CLI builds it from flags, tests build it directly.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from elevtts.protocol import MAX_MESSAGE_BYTES
from elevtts.server.dictionary import DictionaryStore
from elevtts.server.session import MAX_BUFFERED_CHARS, MAX_TOTAL_BUFFERED_CHARS

MAX_CONNECTIONS = 512  # more are refused at the handshake with HTTP 503
MAX_QUEUE = 16  # HTTP requests waiting for an engine slot; more are refused with 429
MAX_BODY_BYTES = 1024 * 1024  # an HTTP request body (text limits are far below it)
DRAIN_TIMEOUT_S = 30.0  # how long a stopping server lets open sessions finish


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
    # Memory bounds: beyond them a connection is refused (1009 / 1013, or HTTP 503 at the handshake).
    max_connections: int = MAX_CONNECTIONS
    max_buffered_chars: int = MAX_BUFFERED_CHARS  # text not yet spoken, per connection
    max_total_buffered_chars: int = MAX_TOTAL_BUFFERED_CHARS  # the same, all connections together
    # HTTP: requests queued beyond the slots before 429, browser origins allowed (CORS),
    # OpenAI voice names mapped to served voices (over the default map).
    max_queue: int = MAX_QUEUE
    max_text_chars: int | None = None  # an HTTP request's text; None: the live API's per-model limit
    max_body_bytes: int = MAX_BODY_BYTES
    cors_origins: tuple[str, ...] = ()
    voice_map: tuple[tuple[str, str], ...] = ()
    # Stopping: open sessions finish for up to this long (new ones get 503), then close with 1012.
    drain_timeout_s: float = DRAIN_TIMEOUT_S
