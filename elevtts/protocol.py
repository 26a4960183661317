"""The ElevenLabs stream-input / multi-stream-input wire protocol: messages, validation, errors.

Pure: no sockets, no event loop. Both the server and the client speak through these types, and
this module holds, once, what both sides must agree on: the endpoint paths, the message size limit,
the error names (`ErrorName`) and the close codes (`CloseCode`).

    ElevttsError (elevtts.errors)
      ProtocolError            bad input from the peer; carries the close code and public error name
        AuthError              missing or wrong API key
      UnknownVoiceError        (elevtts.server.engines) a voice id nobody serves

Client -> server: `ClientMessage` (parsed by `parse_client_message`).
Server -> client: `AudioFrame`, `FinalFrame`, `ErrorFrame` (parsed by `parse_server_message`).
Query string: `StreamParams` (parsed by `StreamParams.from_query`).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

from elevtts.errors import ElevttsError

DEFAULT_SCHEDULE: tuple[int, ...] = (120, 160, 250, 290)
SCHEDULE_MIN, SCHEDULE_MAX = 50, 500
DEFAULT_INACTIVITY_TIMEOUT = 20.0
MAX_INACTIVITY_TIMEOUT = 180.0
DEFAULT_OUTPUT_FORMAT = "mp3_44100_128"
MAX_CONTEXTS = 5
MAX_DICTIONARY_LOCATORS = 3
DEFAULT_CONTEXT_ID = "default"

SINGLE_PATH, MULTI_PATH = "stream-input", "multi-stream-input"
# `{voice_id}` and `{path}` (one of the two above) complete it; the query string follows.
ENDPOINT_TEMPLATE = "/v1/text-to-speech/{voice_id}/{path}"
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # the largest message the live service accepts (and sends)
MAX_CLOSE_REASON_BYTES = 123  # RFC 6455: a close frame's payload is at most 125 bytes, 2 of them the code


class CloseCode(IntEnum):
    NORMAL = 1000
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013


class ErrorName(StrEnum):
    """The public `error` names of the JSON error frame."""

    INVALID_INPUT_MESSAGE = "invalid_input_message"
    INVALID_API_KEY = "invalid_api_key"
    INPUT_TIMEOUT_EXCEEDED = "input_timeout_exceeded"
    MAX_ACTIVE_CONVERSATIONS = "max_active_conversations"
    INVALID_OUTPUT_FORMAT = "invalid_output_format"
    VOICE_NOT_FOUND = "voice_not_found"
    INVALID_REQUEST = "invalid_request"
    INVALID_CHUNK_LENGTH_SCHEDULE = "invalid_chunk_length_schedule"
    INVALID_PRONUNCIATION_DICTIONARY_LOCATORS = "invalid_pronunciation_dictionary_locators"
    PRONUNCIATION_DICTIONARY_NOT_FOUND = "pronunciation_dictionary_not_found"
    MAX_CHARACTER_LIMIT_EXCEEDED = "max_character_limit_exceeded"
    SYSTEM_BUSY = "system_busy"
    TOO_MANY_CONCURRENT_REQUESTS = "too_many_concurrent_requests"
    INTERNAL_ERROR = "internal_error"


def close_reason(text: str) -> str:
    """`text` cut to what a close frame can carry: at most 123 UTF-8 bytes, on a character boundary."""
    encoded = text.encode("utf-8", "replace")[:MAX_CLOSE_REASON_BYTES]
    return encoded.decode("utf-8", "ignore")


INVALID_INPUT_MESSAGE = (
    "Could not parse input message, make sure it is a json and follows the schema outlined in protocol."
)
VOICE_SETTINGS_CHANGED = (
    "voice_settings field must be provided in the first message "
    "and then either be not provided or not change."
)
MAX_CONTEXTS_MESSAGE = (
    f"Maximum simultaneous contexts per WebSocket connection exceeded ({MAX_CONTEXTS}). "
    "Please close an existing context before opening a new one."
)


def inactivity_message(timeout: float, *, json_form: bool) -> str:
    # The live API says "20.0 seconds" in the JSON message and "20 seconds" in the close reason.
    seconds = f"{float(timeout)}" if json_form else f"{timeout:g}"
    return (
        f"Have not received a new text input within the timeout of {seconds} seconds. "
        "Streaming input terminated. Please make sure to either feed the input in the timely manner, "
        'or to send the end of input text (empty string "") when done.'
    )


class ProtocolError(ElevttsError):
    """The peer broke the protocol (or asked for something we refuse).

    `error` is the public error name sent in the JSON error frame; `code` the close code.
    """

    def __init__(
        self,
        error: ErrorName | str,
        message: str,
        *,
        code: CloseCode = CloseCode.POLICY_VIOLATION,
        reason: str | None = None,
        context_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error = error
        self.message = message
        self.code = code
        self.reason = reason if reason is not None else message
        self.context_id = context_id


class AuthError(ProtocolError):
    def __init__(self, message: str) -> None:
        super().__init__(ErrorName.INVALID_API_KEY, message)


def invalid_input(detail: str = "") -> ProtocolError:
    message = INVALID_INPUT_MESSAGE + (f" ({detail})" if detail else "")
    return ProtocolError(ErrorName.INVALID_INPUT_MESSAGE, message, reason=INVALID_INPUT_MESSAGE)


# ---------------------------------------------------------------------------------------------
# Field checks


def _number(value: Any, name: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise invalid_input(f"{name} must be a number")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise invalid_input(f"{name} must be between {lo} and {hi}")
    return float(value)


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise invalid_input(f"{name} must be true or false")
    return value


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise invalid_input(f"{name} must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\\ud800"): it could never be spoken or echoed
        raise invalid_input(f"{name} is not valid Unicode") from None
    return value


def check_schedule(values: Sequence[Any]) -> tuple[int, ...]:
    """Validate a chunk_length_schedule: a non-empty list of numbers, each 50-500."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
        raise ProtocolError(
            ErrorName.INVALID_CHUNK_LENGTH_SCHEDULE,
            "chunk_length_schedule must be a non-empty list of numbers",
        )
    schedule = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ProtocolError(
                ErrorName.INVALID_CHUNK_LENGTH_SCHEDULE,
                f"chunk_length_schedule value {value!r} is not a number",
            )
        if not SCHEDULE_MIN <= value <= SCHEDULE_MAX:
            raise ProtocolError(
                ErrorName.INVALID_CHUNK_LENGTH_SCHEDULE,
                f"chunk_length_schedule value {value:g} is outside {SCHEDULE_MIN}-{SCHEDULE_MAX}",
            )
        schedule.append(int(value))
    return tuple(schedule)


# ---------------------------------------------------------------------------------------------
# Client -> server


@dataclass(frozen=True)
class VoiceSettings:
    stability: float = 0.5
    similarity_boost: float = 0.75
    style: float = 0.0
    use_speaker_boost: bool = True
    speed: float = 1.0

    @classmethod
    def parse(cls, data: Any) -> VoiceSettings | None:
        """`None` for a missing or null field; an empty dict is the defaults."""
        if data is None:
            return None
        if not isinstance(data, dict):
            raise invalid_input("voice_settings must be an object")
        values: dict[str, Any] = {}
        for name in ("stability", "similarity_boost", "style"):
            if data.get(name) is not None:
                values[name] = _number(data[name], name, 0.0, 1.0)
        if data.get("use_speaker_boost") is not None:
            values["use_speaker_boost"] = _bool(data["use_speaker_boost"], "use_speaker_boost")
        if data.get("speed") is not None:
            values["speed"] = _number(data["speed"], "speed", 0.7, 1.2)
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return {
            "stability": self.stability,
            "similarity_boost": self.similarity_boost,
            "style": self.style,
            "use_speaker_boost": self.use_speaker_boost,
            "speed": self.speed,
        }


@dataclass(frozen=True)
class DictionaryLocator:
    pronunciation_dictionary_id: str
    version_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"pronunciation_dictionary_id": self.pronunciation_dictionary_id}
        if self.version_id is not None:
            data["version_id"] = self.version_id
        return data


def _parse_locators(data: Any) -> tuple[DictionaryLocator, ...]:
    if not isinstance(data, list):
        raise invalid_input("pronunciation_dictionary_locators must be a list")
    if len(data) > MAX_DICTIONARY_LOCATORS:
        raise ProtocolError(
            ErrorName.INVALID_PRONUNCIATION_DICTIONARY_LOCATORS,
            f"at most {MAX_DICTIONARY_LOCATORS} pronunciation dictionaries may be applied",
        )
    locators = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("pronunciation_dictionary_id"), str):
            raise invalid_input("each locator needs a pronunciation_dictionary_id")
        version = item.get("version_id")
        if version is not None and not isinstance(version, str):
            raise invalid_input("version_id must be a string")
        locators.append(
            DictionaryLocator(
                _string(item["pronunciation_dictionary_id"], "pronunciation_dictionary_id"),
                None if version is None else _string(version, "version_id"),
            )
        )
    return tuple(locators)


@dataclass(frozen=True)
class ClientMessage:
    """One client message. Absent fields are `None` (or False for the flags)."""

    text: str | None = None
    flush: bool = False
    try_trigger_generation: bool = False
    voice_settings: VoiceSettings | None = None
    schedule: tuple[int, ...] | None = None
    dictionary_locators: tuple[DictionaryLocator, ...] | None = None
    api_key: str | None = None
    authorization: str | None = None
    context_id: str | None = None
    close_context: bool = False
    close_socket: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.text is not None:
            data["text"] = self.text
        if self.voice_settings is not None:
            data["voice_settings"] = self.voice_settings.to_json()
        if self.schedule is not None:
            data["generation_config"] = {"chunk_length_schedule": list(self.schedule)}
        if self.dictionary_locators:
            data["pronunciation_dictionary_locators"] = [loc.to_json() for loc in self.dictionary_locators]
        if self.api_key is not None:
            data["xi_api_key"] = self.api_key
        if self.authorization is not None:
            data["authorization"] = self.authorization
        if self.try_trigger_generation:
            data["try_trigger_generation"] = True
        if self.flush:
            data["flush"] = True
        if self.context_id is not None:
            data["context_id"] = self.context_id
        if self.close_context:
            data["close_context"] = True
        if self.close_socket:
            data["close_socket"] = True
        return data

    def serialize(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False)


_CLIENT_FIELDS = frozenset(
    {
        "text",
        "flush",
        "try_trigger_generation",
        "voice_settings",
        "generation_config",
        "generator_config",
        "pronunciation_dictionary_locators",
        "xi_api_key",
        "xi-api-key",
        "authorization",
        "context_id",
        "contextId",
        "close_context",
        "close_socket",
        "model_id",
        "output_format",
    }
)


def parse_client_message(raw: str | bytes) -> ClientMessage:
    """Parse and check one client frame; raise `ProtocolError` (invalid_input_message) if malformed."""
    try:
        # A text frame is UTF-8 by definition (json.loads would also guess UTF-16/32 from bytes).
        data = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; deep nesting recurses
        raise invalid_input("not valid JSON") from None
    if not isinstance(data, dict):
        raise invalid_input("a message must be a JSON object")
    if not data.keys() & _CLIENT_FIELDS:
        raise invalid_input("no known field")

    text = data.get("text")
    if text is not None:
        text = _string(text, "text")
    config = data.get("generation_config", data.get("generator_config"))
    schedule = None
    if config is not None:
        if not isinstance(config, dict):
            raise invalid_input("generation_config must be an object")
        if config.get("chunk_length_schedule") is not None:
            schedule = check_schedule(config["chunk_length_schedule"])
    locators = data.get("pronunciation_dictionary_locators")
    api_key = data.get("xi_api_key", data.get("xi-api-key"))
    authorization = data.get("authorization")
    context_id = data.get("context_id", data.get("contextId"))
    return ClientMessage(
        text=text,
        flush=_bool(data.get("flush", False), "flush"),
        try_trigger_generation=_bool(data.get("try_trigger_generation", False), "try_trigger_generation"),
        voice_settings=VoiceSettings.parse(data.get("voice_settings")),
        schedule=schedule,
        dictionary_locators=None if locators is None else _parse_locators(locators),
        api_key=None if api_key is None else _string(api_key, "xi_api_key"),
        authorization=None if authorization is None else _string(authorization, "authorization"),
        context_id=None if context_id is None else _string(context_id, "context_id"),
        close_context=_bool(data.get("close_context", False), "close_context"),
        close_socket=_bool(data.get("close_socket", False), "close_socket"),
    )


# ---------------------------------------------------------------------------------------------
# Query parameters


def _query_bool(value: str | None, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ProtocolError(
        ErrorName.INVALID_REQUEST, f"query parameter {name} must be true or false, not {value!r}"
    )


@dataclass(frozen=True)
class StreamParams:
    """The query parameters shared by both endpoints (protocol.md section 1)."""

    model_id: str | None = None
    output_format: str = DEFAULT_OUTPUT_FORMAT
    inactivity_timeout: float = DEFAULT_INACTIVITY_TIMEOUT
    sync_alignment: bool = False
    auto_mode: bool = False
    language_code: str | None = None
    seed: int | None = None
    apply_text_normalization: str = "auto"
    enable_ssml_parsing: bool = False
    enable_logging: bool = True
    authorization: str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> StreamParams:
        """Parse leniently: unknown parameters are ignored, bad values of known ones refused."""
        model_id = query.get("model_id") or None
        if model_id == "Ellipsis":  # old SDKs leak their OMIT sentinel
            model_id = None
        timeout = cls.inactivity_timeout
        if query.get("inactivity_timeout"):
            try:
                timeout = float(query["inactivity_timeout"])
            except ValueError:
                timeout = -1.0
            if not 0 < timeout <= MAX_INACTIVITY_TIMEOUT:
                raise ProtocolError(
                    ErrorName.INVALID_REQUEST,
                    f"inactivity_timeout must be a number of seconds above 0 and at most "
                    f"{MAX_INACTIVITY_TIMEOUT:g}, not {query['inactivity_timeout']!r}",
                )
        seed = None
        if query.get("seed"):
            try:
                seed = int(query["seed"])
            except ValueError:
                seed = -1
            if not 0 <= seed <= 4294967295:
                raise ProtocolError(
                    ErrorName.INVALID_REQUEST, f"seed must be 0-4294967295, not {query['seed']!r}"
                )
        normalization = query.get("apply_text_normalization") or "auto"
        if normalization not in ("auto", "on", "off"):
            raise ProtocolError(
                ErrorName.INVALID_REQUEST,
                f"apply_text_normalization must be auto, on or off, not {normalization!r}",
            )
        return cls(
            model_id=model_id,
            output_format=query.get("output_format") or DEFAULT_OUTPUT_FORMAT,
            inactivity_timeout=timeout,
            sync_alignment=_query_bool(query.get("sync_alignment"), "sync_alignment", False),
            auto_mode=_query_bool(query.get("auto_mode"), "auto_mode", False),
            language_code=query.get("language_code") or None,
            seed=seed,
            apply_text_normalization=normalization,
            enable_ssml_parsing=_query_bool(query.get("enable_ssml_parsing"), "enable_ssml_parsing", False),
            enable_logging=_query_bool(query.get("enable_logging"), "enable_logging", True),
            authorization=query.get("authorization") or None,
        )

    def to_query(self) -> dict[str, str]:
        """The non-default parameters, for a client building its URL (never carries a key)."""
        query: dict[str, str] = {"output_format": self.output_format}
        if self.model_id:
            query["model_id"] = self.model_id
        if self.inactivity_timeout != DEFAULT_INACTIVITY_TIMEOUT:
            query["inactivity_timeout"] = f"{self.inactivity_timeout:g}"
        for name in ("sync_alignment", "auto_mode", "enable_ssml_parsing"):
            if getattr(self, name):
                query[name] = "true"
        if not self.enable_logging:
            query["enable_logging"] = "false"
        if self.language_code:
            query["language_code"] = self.language_code
        if self.seed is not None:
            query["seed"] = str(self.seed)
        if self.apply_text_normalization != "auto":
            query["apply_text_normalization"] = self.apply_text_normalization
        return query


# ---------------------------------------------------------------------------------------------
# Server -> client


@dataclass(frozen=True)
class Alignment:
    """Character timings of one audio frame, in ms relative to the frame's start."""

    chars: tuple[str, ...] = ()
    char_start_times_ms: tuple[int, ...] = ()
    char_durations_ms: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not len(self.chars) == len(self.char_start_times_ms) == len(self.char_durations_ms):
            raise ValueError("alignment arrays must have equal lengths")

    def to_json(self) -> dict[str, Any]:
        return {
            "chars": list(self.chars),
            "charStartTimesMs": list(self.char_start_times_ms),
            "charDurationsMs": list(self.char_durations_ms),
        }

    @classmethod
    def parse(cls, data: Any) -> Alignment | None:
        """Accept null and every key spelling seen in the field (charsDurationsMs, charsStartTimesMs)."""
        if data is None:
            return None
        if not isinstance(data, dict):
            raise ValueError("alignment must be an object")
        chars = data.get("chars") or []
        starts = data.get("charStartTimesMs", data.get("charsStartTimesMs")) or []
        durations = data.get("charDurationsMs", data.get("charsDurationsMs")) or []
        return cls(tuple(map(str, chars)), tuple(map(int, starts)), tuple(map(int, durations)))


@dataclass(frozen=True)
class AudioFrame:
    audio: bytes
    alignment: Alignment | None = None
    normalized_alignment: Alignment | None = None
    context_id: str | None = None

    def serialize(self) -> str:
        data: dict[str, Any] = {
            "audio": base64.b64encode(self.audio).decode("ascii"),
            "isFinal": None,
            "normalizedAlignment": None
            if self.normalized_alignment is None
            else self.normalized_alignment.to_json(),
            "alignment": None if self.alignment is None else self.alignment.to_json(),
        }
        if self.context_id is not None:
            data["contextId"] = data["context_id"] = self.context_id
        return json.dumps(data, ensure_ascii=False)


@dataclass(frozen=True)
class FinalFrame:
    context_id: str | None = None

    def serialize(self) -> str:
        data: dict[str, Any] = {"isFinal": True}
        if self.context_id is not None:
            data["contextId"] = data["context_id"] = self.context_id
        return json.dumps(data)


@dataclass(frozen=True)
class ErrorFrame:
    error: str
    message: str
    code: int = CloseCode.POLICY_VIOLATION
    context_id: str | None = None

    @classmethod
    def from_error(cls, exc: ProtocolError) -> ErrorFrame:
        return cls(exc.error, exc.message, int(exc.code), exc.context_id)

    def serialize(self) -> str:
        data: dict[str, Any] = {"message": self.message, "error": self.error, "code": self.code}
        if self.context_id is not None:
            data["contextId"] = data["context_id"] = self.context_id
        return json.dumps(data, ensure_ascii=False)


@dataclass(frozen=True)
class OtherFrame:
    """A frame we do not act on (e.g. a `flush_done` lifecycle frame)."""

    data: dict[str, Any] = field(default_factory=dict)
    context_id: str | None = None


ServerMessage = AudioFrame | FinalFrame | ErrorFrame | OtherFrame


def parse_server_message(raw: str | bytes) -> ServerMessage:
    """Parse a server frame for a client. Raises `ValueError` for frames that are not protocol JSON."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("server sent a frame that is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("server sent a JSON frame that is not an object")
    context_id = data.get("contextId", data.get("context_id"))
    if context_id is not None and not isinstance(context_id, str):
        raise ValueError("server sent a non-string context id")
    if data.get("isFinal") or data.get("is_final"):
        return FinalFrame(context_id)
    if "error" in data or ("message" in data and "audio" not in data):
        return ErrorFrame(
            str(data.get("error") or "error"),
            str(data.get("message") or ""),
            int(data.get("code") or CloseCode.POLICY_VIOLATION),
            context_id,
        )
    if data.get("audio"):
        try:
            audio = base64.b64decode(data["audio"], validate=True)
        except (binascii.Error, TypeError):
            raise ValueError("server sent audio that is not base64") from None
        return AudioFrame(
            audio,
            Alignment.parse(data.get("alignment")),
            Alignment.parse(data.get("normalizedAlignment")),
            context_id,
        )
    return OtherFrame(data, context_id)
