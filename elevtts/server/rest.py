"""The HTTP API's requests and answers, without HTTP: bodies in, typed requests or `HttpError` out.

Pure. Two dialects share one synthesis pipeline:
- ElevenLabs REST (`POST /v1/text-to-speech/{voice_id}[/stream][/with-timestamps]`), as SDK 2.78.0
  sends it; errors are the live API's `{"detail": {"status": ..., "message": ...}}` (422 for a body
  that does not validate, as the live API's FastAPI does);
- OpenAI's `POST /v1/audio/speech`; errors are `{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from elevtts.formats import (
    DEFAULT_OUTPUT_FORMAT,
    LOCAL_FORMATS,
    WAV_FORMATS,
    FormatError,
    OutputFormat,
    parse_output_format,
)
from elevtts.protocol import (
    Alignment,
    DictionaryLocator,
    ProtocolError,
    VoiceSettings,
    _parse_locators,  # the WebSocket opener's rule for the same field: one rule
)

DEFAULT_MODEL = "eleven_multilingual_v2"  # the live API's default when a body names none
# The live API's per-request character limits (its models page); unknown models get the default's.
MODEL_MAX_CHARS: dict[str, int] = {
    "eleven_multilingual_v2": 10_000,
    "eleven_flash_v2_5": 40_000,
    "eleven_turbo_v2_5": 40_000,
    "eleven_flash_v2": 30_000,
    "eleven_turbo_v2": 30_000,
    "eleven_v3": 5_000,
}
MODEL_NAMES: dict[str, str] = {
    "eleven_multilingual_v2": "Eleven Multilingual v2",
    "eleven_flash_v2_5": "Eleven Flash v2.5",
    "eleven_turbo_v2_5": "Eleven Turbo v2.5",
    "eleven_flash_v2": "Eleven Flash v2",
    "eleven_turbo_v2": "Eleven Turbo v2",
    "eleven_v3": "Eleven v3",
}
OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
OPENAI_MAX_CHARS = 4096  # OpenAI's documented limit for `input`
OPENAI_VOICES = (
    "alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova", "onyx", "sage",
    "shimmer", "verse",
)  # fmt: skip
# OpenAI's formats: all 24 kHz mono; `pcm` is raw s16le as OpenAI documents it.
OPENAI_FORMATS: dict[str, str] = {"mp3": "mp3_24000_48", "wav": "wav_24000", "pcm": "pcm_24000"}
OPENAI_REFUSED_FORMATS = ("opus", "aac", "flac")
HTTP_FORMATS: tuple[str, ...] = (*LOCAL_FORMATS, *WAV_FORMATS)  # what the HTTP routes produce


class HttpError(Exception):
    """A refused request: its status, JSON body and extra headers."""

    def __init__(self, status: HTTPStatus, body: Any, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{int(status)} {body}")
        self.status, self.body, self.headers = status, body, dict(headers or {})


def detail(status: HTTPStatus, name: str, message: str, **headers: str) -> HttpError:
    """The live ElevenLabs API's error shape."""
    return HttpError(status, {"detail": {"status": name, "message": message}}, headers=headers)


def invalid(location: tuple[str | int, ...], message: str, *, kind: str = "value_error") -> HttpError:
    """A request that does not validate: 422 with FastAPI's list, as the live API answers."""
    return HttpError(
        HTTPStatus.UNPROCESSABLE_ENTITY, {"detail": [{"type": kind, "loc": list(location), "msg": message}]}
    )


def openai_error(status: HTTPStatus, message: str, *, param: str | None, code: str | None) -> HttpError:
    return HttpError(
        status, {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}
    )


@dataclass(frozen=True)
class SpeechRequest:
    """What to speak and how, whichever dialect asked."""

    text: str
    voice_id: str
    output_format: OutputFormat
    model_id: str = DEFAULT_MODEL
    voice_settings: VoiceSettings = field(default_factory=VoiceSettings)
    seed: int | None = None
    language_code: str | None = None
    dictionary_locators: tuple[DictionaryLocator, ...] = ()


def http_output_format(name: str | None, *, opus_encoder: bool = True) -> OutputFormat:
    """`output_format` from the query: every format the WebSocket path produces, plus `wav_*`.
    `opus_encoder`: whether PyAV (the 'opus' extra) is installed."""
    name = name or DEFAULT_OUTPUT_FORMAT
    try:
        fmt = parse_output_format(name)
    except FormatError:
        raise invalid(
            ("query", "output_format"), f"Input should be one of {', '.join(HTTP_FORMATS)}"
        ) from None
    if name not in HTTP_FORMATS or (fmt.codec == "opus" and not opus_encoder):
        message = f"output_format {name} is not produced by this server; use one of {', '.join(HTTP_FORMATS)}"
        if fmt.codec == "opus":
            message += " (Opus needs the 'opus' extra: pip install 'elevtts[opus]')"
        raise detail(HTTPStatus.BAD_REQUEST, "invalid_output_format", message)
    return fmt


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        position = getattr(exc, "pos", 0)
        raise invalid(("body", position), "JSON decode error", kind="json_invalid") from None
    if not isinstance(body, dict):
        raise invalid(("body",), "Input should be a valid dictionary or object", kind="model_attributes_type")
    return body


def elevenlabs_request(
    voice_id: str,
    raw: bytes,
    query: Mapping[str, str],
    *,
    max_chars: int | None = None,
    opus_encoder: bool = True,
) -> SpeechRequest:
    """A `POST /v1/text-to-speech/{voice_id}...` body and query, validated; `max_chars`: the
    operator's limit, instead of the model's."""
    fmt = http_output_format(query.get("output_format"), opus_encoder=opus_encoder)
    body = _json_object(raw)
    text = body.get("text")
    if not isinstance(text, str):
        raise invalid(
            ("body", "text"), "Field required" if text is None else "Input should be a valid string"
        )
    model_id = body.get("model_id") or DEFAULT_MODEL
    if not isinstance(model_id, str):
        raise invalid(("body", "model_id"), "Input should be a valid string")
    limit = max_chars or MODEL_MAX_CHARS.get(model_id, MODEL_MAX_CHARS[DEFAULT_MODEL])
    if len(text) > limit:
        message = (
            f"Text is too long: {len(text)} characters, the maximum for {model_id} is {limit} "
            "characters per request."
        )
        raise detail(HTTPStatus.BAD_REQUEST, "max_character_limit_exceeded", message)
    if not text.strip():
        raise detail(HTTPStatus.BAD_REQUEST, "invalid_text", "The text is empty: there is nothing to speak.")
    try:
        settings = VoiceSettings.parse(body.get("voice_settings")) or VoiceSettings()
    except ProtocolError as exc:
        raise invalid(("body", "voice_settings"), exc.message) from None
    seed = body.get("seed")
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 4294967295
    ):
        raise invalid(("body", "seed"), "Input should be an integer between 0 and 4294967295")
    language = body.get("language_code")
    try:
        locators = _parse_locators(body.get("pronunciation_dictionary_locators") or [])
    except ProtocolError as exc:
        raise invalid(("body", "pronunciation_dictionary_locators"), exc.message) from None
    return SpeechRequest(
        text,
        voice_id,
        fmt,
        model_id,
        settings,
        seed,
        language if isinstance(language, str) else None,
        locators,
    )


def openai_request(
    raw: bytes, voice_map: Mapping[str, str], served: tuple[str, ...], *, max_chars: int | None = None
) -> SpeechRequest:
    """A `POST /v1/audio/speech` body, validated; OpenAI's voice names go through `voice_map`."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise openai_error(HTTPStatus.BAD_REQUEST, "We could not parse the JSON body of your request.",
                           param=None, code=None) from None  # fmt: skip
    if not isinstance(body, dict):
        raise openai_error(HTTPStatus.BAD_REQUEST, "The body must be a JSON object.", param=None, code=None)
    model = body.get("model")
    if model not in OPENAI_MODELS:
        message = (
            f"Invalid model {model!r}: this server speaks {', '.join(OPENAI_MODELS)} with its local voices."
        )
        raise openai_error(HTTPStatus.BAD_REQUEST, message, param="model", code="invalid_value")
    text = body.get("input")
    if not isinstance(text, str) or not text.strip():
        raise openai_error(
            HTTPStatus.BAD_REQUEST, "input must be a non-empty string.", param="input", code=None
        )
    limit = max_chars or OPENAI_MAX_CHARS
    if len(text) > limit:
        message = f"input is {len(text)} characters long; the maximum is {limit}."
        raise openai_error(HTTPStatus.BAD_REQUEST, message, param="input", code="string_above_max_length")
    voice = body.get("voice")
    if isinstance(voice, dict):  # newer clients may send {"id": ...}
        voice = voice.get("id")
    voice_id = voice_map.get(voice, voice) if isinstance(voice, str) else None
    if voice_id not in served:
        names = sorted({*voice_map, *served})
        message = f"Invalid voice {voice!r}: use one of {', '.join(names)}."
        raise openai_error(HTTPStatus.BAD_REQUEST, message, param="voice", code="invalid_value")
    name = body.get("response_format", "mp3")
    if name in OPENAI_REFUSED_FORMATS:
        message = f"response_format {name} is not produced by this server; use mp3, wav or pcm."
        raise openai_error(HTTPStatus.BAD_REQUEST, message, param="response_format", code="unsupported_value")
    if name not in OPENAI_FORMATS:
        message = f"Invalid response_format {name!r}: use mp3, wav or pcm."
        raise openai_error(HTTPStatus.BAD_REQUEST, message, param="response_format", code="invalid_value")
    speed = body.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0.25 <= speed <= 4.0:
        raise openai_error(HTTPStatus.BAD_REQUEST, "speed must be a number from 0.25 to 4.0.",
                           param="speed", code="invalid_value")  # fmt: skip
    # The local voices speak from 0.7 to 1.2 times their rate (the live API's range): beyond it,
    # the nearest rate they can.
    settings = VoiceSettings(speed=min(max(float(speed), 0.7), 1.2))
    return SpeechRequest(text, voice_id, parse_output_format(OPENAI_FORMATS[name]), model, settings)


def default_voice_map(served: tuple[str, ...], overrides: Mapping[str, str]) -> dict[str, str]:
    """OpenAI's voice names -> served voices: the neural `joe` when served, else the first voice."""
    fallback = "joe" if "joe" in served else served[0]
    return {**dict.fromkeys(OPENAI_VOICES, fallback), **overrides}


def wav_header(sample_rate: int, data_bytes: int | None) -> bytes:
    """A RIFF/WAVE header for 16-bit mono PCM; `None`: a stream of unknown length (sizes at their
    maximum, as streaming servers write it and players accept)."""
    data = 0xFFFFFFFF if data_bytes is None else data_bytes
    riff = 0xFFFFFFFF if data_bytes is None else 36 + data_bytes
    return (
        b"RIFF" + struct.pack("<I", riff) + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data" + struct.pack("<I", data)
    )  # fmt: skip


def character_alignment(alignment: Alignment, *, offset_ms: int = 0) -> dict[str, Any] | None:
    """An alignment as the REST API's `CharacterAlignmentResponseModel` (seconds, start and end)."""
    if not alignment.chars:
        return None
    starts = [(offset_ms + start) / 1000 for start in alignment.char_start_times_ms]
    ends = [
        (offset_ms + start + duration) / 1000
        for start, duration in zip(alignment.char_start_times_ms, alignment.char_durations_ms, strict=True)
    ]
    return {
        "characters": list(alignment.chars),
        "character_start_times_seconds": starts,
        "character_end_times_seconds": ends,
    }


def models_json(voices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`GET /v1/models`: the live API's models, every one served by the local voices."""
    languages = sorted({voice.get("labels", {}).get("language", "en") for voice in voices})
    return [
        {
            "model_id": model_id,
            "name": MODEL_NAMES[model_id],
            "can_be_finetuned": False,
            "can_do_text_to_speech": True,
            "can_do_voice_conversion": False,
            "can_use_style": False,
            "can_use_speaker_boost": False,
            "serves_pro_voices": False,
            "token_cost_factor": 0.0,
            "description": "Served offline by elevtts with its local voices.",
            "requires_alpha_access": False,
            "max_characters_request_free_user": limit,
            "max_characters_request_subscribed_user": limit,
            "maximum_text_length_per_request": limit,
            "languages": [{"language_id": code, "name": code} for code in languages],
        }
        for model_id, limit in MODEL_MAX_CHARS.items()
    ]


def voice_json(voice: dict[str, Any]) -> dict[str, Any]:
    """A voice as the SDK's `Voice` model reads it."""
    return {**voice, "category": "premade", "available_for_tiers": [], "high_quality_base_model_ids": []}
