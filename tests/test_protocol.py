"""Wire messages: parsing, validation and serialization."""

from __future__ import annotations

import base64
import json

import pytest

from elevtts.errors import ElevttsError
from elevtts.protocol import (
    DEFAULT_SCHEDULE,
    ENDPOINT_TEMPLATE,
    MAX_MESSAGE_BYTES,
    MULTI_PATH,
    SINGLE_PATH,
    Alignment,
    AudioFrame,
    ClientMessage,
    CloseCode,
    ErrorFrame,
    ErrorName,
    FinalFrame,
    OtherFrame,
    ProtocolError,
    StreamParams,
    VoiceSettings,
    check_schedule,
    close_reason,
    inactivity_message,
    parse_client_message,
    parse_server_message,
)


def test_bos_with_everything() -> None:
    message = parse_client_message(
        json.dumps(
            {
                "text": " ",
                "voice_settings": {"stability": 0.3, "similarity_boost": 0.8, "speed": 1.1},
                "generation_config": {"chunk_length_schedule": [50, 120.0]},
                "pronunciation_dictionary_locators": [
                    {"pronunciation_dictionary_id": "abc", "version_id": "v1"}
                ],
                "xi_api_key": "k",
            }
        )
    )
    assert message.text == " "
    assert message.voice_settings == VoiceSettings(stability=0.3, similarity_boost=0.8, speed=1.1)
    assert message.schedule == (50, 120)
    assert message.dictionary_locators is not None
    assert message.dictionary_locators[0].pronunciation_dictionary_id == "abc"
    assert message.api_key == "k"


def test_null_voice_settings_and_hyphenated_key_are_accepted() -> None:
    message = parse_client_message('{"text": " ", "voice_settings": null, "xi-api-key": "k"}')
    assert message.voice_settings is None
    assert message.api_key == "k"


def test_empty_voice_settings_are_the_defaults() -> None:
    assert parse_client_message('{"text": " ", "voice_settings": {}}').voice_settings == VoiceSettings()


def test_generator_config_spelling_is_accepted() -> None:
    assert parse_client_message(
        '{"text": "a ", "generator_config": {"chunk_length_schedule": [60]}}'
    ).schedule == (60,)


def test_both_context_id_spellings() -> None:
    assert parse_client_message('{"text": "", "context_id": "a"}').context_id == "a"
    assert parse_client_message('{"text": "", "contextId": "b"}').context_id == "b"


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        '"text"',
        '{"unknown": 1}',
        '{"text": 5}',
        '{"text": "a", "flush": "yes"}',
        '{"text": " ", "voice_settings": {"stability": 2}}',
        '{"text": " ", "voice_settings": {"speed": 3}}',
        '{"text": " ", "voice_settings": "fast"}',
        b"\xff\xfe",
    ],
)
def test_malformed_messages_are_invalid_input(raw: str | bytes) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_client_message(raw)
    assert caught.value.error == "invalid_input_message"
    assert caught.value.code == CloseCode.POLICY_VIOLATION


@pytest.mark.parametrize("schedule", [[49], [501], [], [120, "x"], "120", [float("nan")], [True]])
def test_bad_schedules_are_refused(schedule: object) -> None:
    with pytest.raises(ProtocolError) as caught:
        check_schedule(schedule)  # type: ignore[arg-type]
    assert caught.value.error == "invalid_chunk_length_schedule"


def test_schedule_bounds_are_inclusive() -> None:
    assert check_schedule([50, 500]) == (50, 500)


def test_more_than_three_dictionaries_are_refused() -> None:
    locators = [{"pronunciation_dictionary_id": str(i)} for i in range(4)]
    with pytest.raises(ProtocolError):
        parse_client_message(json.dumps({"text": " ", "pronunciation_dictionary_locators": locators}))


def test_client_message_round_trip() -> None:
    message = ClientMessage(
        text="Hello ",
        flush=True,
        voice_settings=VoiceSettings(speed=0.9),
        schedule=(50, 100),
        context_id="c1",
        close_context=True,
    )
    assert parse_client_message(message.serialize()) == message


def test_query_parameters_with_defaults() -> None:
    params = StreamParams.from_query({})
    assert params.output_format == "mp3_44100_128"
    assert params.inactivity_timeout == 20
    assert not params.auto_mode and not params.sync_alignment


def test_query_parameters_parsed_and_unknown_ignored() -> None:
    params = StreamParams.from_query(
        {
            "model_id": "eleven_flash_v2_5",
            "output_format": "pcm_16000",
            "inactivity_timeout": "180",
            "sync_alignment": "true",
            "auto_mode": "true",
            "language_code": "en",
            "seed": "42",
            "apply_text_normalization": "off",
            "enable_ssml_parsing": "false",
            "enable_logging": "false",
            "optimize_streaming_latency": "3",
            "apply_language_text_normalization": "true",
        }
    )
    assert params.inactivity_timeout == 180 and params.auto_mode and params.sync_alignment
    assert params.seed == 42 and params.apply_text_normalization == "off" and not params.enable_logging
    assert StreamParams.from_query(params.to_query()) == params


def test_ellipsis_model_id_from_old_sdks_is_tolerated() -> None:
    assert StreamParams.from_query({"model_id": "Ellipsis"}).model_id is None


@pytest.mark.parametrize(
    "query",
    [
        {"inactivity_timeout": "181"},
        {"inactivity_timeout": "0"},
        {"inactivity_timeout": "x"},
        {"seed": "-1"},
        {"auto_mode": "maybe"},
        {"apply_text_normalization": "sometimes"},
    ],
)
def test_bad_query_values_are_refused(query: dict[str, str]) -> None:
    with pytest.raises(ProtocolError):
        StreamParams.from_query(query)


def test_audio_frame_shape() -> None:
    alignment = Alignment(("H", "i"), (0, 50), (50, 60))
    data = json.loads(AudioFrame(b"\x01\x02", alignment, alignment).serialize())
    assert data == {
        "audio": base64.b64encode(b"\x01\x02").decode(),
        "isFinal": None,
        "normalizedAlignment": {
            "chars": ["H", "i"],
            "charStartTimesMs": [0, 50],
            "charDurationsMs": [50, 60],
        },
        "alignment": {"chars": ["H", "i"], "charStartTimesMs": [0, 50], "charDurationsMs": [50, 60]},
    }


def test_multi_frames_carry_both_context_id_spellings() -> None:
    for frame in (AudioFrame(b"x", context_id="c"), FinalFrame("c"), ErrorFrame("e", "m", context_id="c")):
        data = json.loads(frame.serialize())
        assert data["contextId"] == data["context_id"] == "c"


def test_final_frame_shape() -> None:
    assert json.loads(FinalFrame().serialize()) == {"isFinal": True}


def test_alignment_lengths_must_match() -> None:
    with pytest.raises(ValueError):
        Alignment(("a",), (0, 1), (1,))


def test_parse_server_frames() -> None:
    audio = parse_server_message(AudioFrame(b"abc", Alignment(("a",), (0,), (5,)), None, "c").serialize())
    assert isinstance(audio, AudioFrame) and audio.audio == b"abc" and audio.context_id == "c"
    assert audio.normalized_alignment is None
    assert isinstance(parse_server_message('{"isFinal": true, "context_id": "x"}'), FinalFrame)
    error = parse_server_message(ErrorFrame("input_timeout_exceeded", "late", 1008).serialize())
    assert isinstance(error, ErrorFrame) and error.error == "input_timeout_exceeded"
    assert isinstance(parse_server_message('{"type": "flush_done", "context_id": "x"}'), OtherFrame)
    assert isinstance(parse_server_message('{"audio": null, "isFinal": null}'), OtherFrame)


def test_alignment_accepts_old_key_spellings() -> None:
    parsed = Alignment.parse({"chars": ["a"], "charsStartTimesMs": [3], "charsDurationsMs": [4]})
    assert parsed == Alignment(("a",), (3,), (4,))


@pytest.mark.parametrize("raw", ["nope", "[]", '{"audio": "%%%"}'])
def test_bad_server_frames_raise_value_error(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_server_message(raw)


def test_inactivity_messages_match_the_live_wording() -> None:
    assert "timeout of 20.0 seconds" in inactivity_message(20, json_form=True)
    assert "timeout of 20 seconds" in inactivity_message(20, json_form=False)


def test_default_schedule() -> None:
    assert DEFAULT_SCHEDULE == (120, 160, 250, 290)


# ---------------------------------------------------------------------------------------------
# One home for what client and server share


def test_endpoint_paths_and_limits_are_the_live_services() -> None:
    assert (SINGLE_PATH, MULTI_PATH) == ("stream-input", "multi-stream-input")
    assert ENDPOINT_TEMPLATE.format(voice_id="joe", path=SINGLE_PATH) == "/v1/text-to-speech/joe/stream-input"
    assert MAX_MESSAGE_BYTES == 16 * 1024 * 1024


def test_error_names_are_strings_on_the_wire() -> None:
    error = ProtocolError(ErrorName.VOICE_NOT_FOUND, "no such voice")
    frame = json.loads(ErrorFrame.from_error(error).serialize())
    assert frame == {"message": "no such voice", "error": "voice_not_found", "code": 1008}
    assert parse_client_error("{") == "invalid_input_message"


def parse_client_error(raw: str | bytes) -> str:
    with pytest.raises(ProtocolError) as info:
        parse_client_message(raw)
    assert info.value.code == CloseCode.POLICY_VIOLATION
    return info.value.error


def test_protocol_errors_share_the_projects_exception_tree() -> None:
    from elevtts.server.engines import UnknownVoiceError

    assert issubclass(ProtocolError, ElevttsError)
    assert issubclass(UnknownVoiceError, ElevttsError) and issubclass(UnknownVoiceError, LookupError)
    error = UnknownVoiceError("Rachel", ["joe"])
    assert (error.voice_id, error.available) == ("Rachel", ("joe",))
    assert ProtocolError("x", "m", context_id="c").context_id == "c"


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 100_000 + "]" * 100_000,  # RecursionError inside json
        '{"text": ' * 50_000,
        b'{"text": "\xff"}',  # not UTF-8
        b'\xfe\xff\x00{\x00"\x00t\x00e\x00x\x00t\x00"\x00:\x00"\x00a\x00"\x00}',  # UTF-16 is not a text frame
        '{"text": "\\ud800"}',  # a lone surrogate
        '{"text": " ", "context_id": "\\udc00"}',
        '{"text": " ", "xi_api_key": "\\ud83d"}',
        '{"text": " ", "pronunciation_dictionary_locators": [{"pronunciation_dictionary_id": "\\ud800"}]}',
    ],
)
def test_hostile_frames_are_invalid_input(raw: str | bytes) -> None:
    assert parse_client_error(raw) == "invalid_input_message"


def test_a_surrogate_pair_is_a_character_not_an_error() -> None:
    assert parse_client_message('{"text": "\\ud83d\\ude00 "}').text == "\U0001f600 "


@pytest.mark.parametrize(
    ("text", "expected_bytes"),
    [("short", 5), ("a" * 200, 123), ("é" * 100, 122), ("😀" * 40, 120), ("a" + "😀" * 40, 121)],
)
def test_close_reasons_fit_a_close_frame_on_a_character_boundary(text: str, expected_bytes: int) -> None:
    reason = close_reason(text)
    assert len(reason.encode()) == expected_bytes
    assert text.startswith(reason)
