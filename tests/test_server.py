"""The local stream-input server, over real WebSockets on loopback, with real engines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import urllib.request
from typing import Any

import numpy as np
import pytest
from conftest import assert_speech, decode_mp3, decode_opus, exchange, rms, run, run_local_server
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from elevtts.formats import LOCAL_FORMATS as SUPPORTED_FORMATS
from elevtts.server import engines
from elevtts.server.app import ServerConfig
from elevtts.server.engines import Speech, SynthesisOptions, Voice, register_engine

BOS = {"text": " "}
EOS = {"text": ""}
SENTENCE = "The quick brown fox jumps over the lazy dog. "


def _url(base: str, voice: str = "espeak", *, path: str = "stream-input", **query: str) -> str:
    from urllib.parse import urlencode

    return f"{base}/v1/text-to-speech/{voice}/{path}" + (f"?{urlencode(query)}" if query else "")


def test_end_of_input_speaks_everything_then_final_then_close_1000(local_server: str) -> None:
    result = run(exchange(_url(local_server), [BOS, {"text": SENTENCE}, EOS]))
    assert result.close_code == 1000
    assert result.frames[-1] == {"isFinal": True}
    assert all(f["isFinal"] is None for f in result.audio_frames)
    samples, rate = decode_mp3(result.audio())
    assert rate == 44100
    assert_speech(samples, rate, words=9)


def test_no_audio_before_the_schedule_threshold_and_audio_after(local_server: str) -> None:
    async def scenario() -> tuple[int, int]:
        async with connect(_url(local_server)) as ws:
            await ws.send(json.dumps({"text": " ", "generation_config": {"chunk_length_schedule": [100]}}))
            await ws.send(json.dumps({"text": "Only a few words here. "}))  # 23 characters
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 1.0)
            await ws.send(
                json.dumps(
                    {
                        "text": "Now enough text arrives to pass the threshold "
                        "of one hundred characters in the schedule. "
                    }
                )
            )
            first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            await ws.send(json.dumps(EOS))
            rest = [json.loads(m) async for m in ws]
            return len(first.get("audio") or ""), len(rest)

    audio_len, rest = run(scenario())
    assert audio_len > 0 and rest >= 1


def test_flush_generates_below_the_threshold_without_final(local_server: str) -> None:
    async def scenario() -> dict:
        async with connect(_url(local_server)) as ws:
            await ws.send(json.dumps(BOS))
            await ws.send(json.dumps({"text": "Short. ", "flush": True}))
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            # the connection stays open after a flush: more text still works
            await ws.send(json.dumps({"text": "More. ", "flush": True}))
            more = json.loads(await asyncio.wait_for(ws.recv(), 10))
            await ws.send(json.dumps(EOS))
            async for _ in ws:
                pass
            return {"first": frame, "more": more}

    frames = run(scenario())
    assert frames["first"]["audio"] and frames["first"]["isFinal"] is None
    assert frames["more"]["audio"]


def test_keepalive_spaces_do_not_produce_audio_or_errors(local_server: str) -> None:
    result = run(
        exchange(
            _url(local_server, inactivity_timeout="1"),
            [BOS, 0.6, {"text": " "}, 0.6, {"text": " "}, 0.6, {"text": "Alive. "}, EOS],
        )
    )
    assert result.close_code == 1000 and not result.errors
    assert result.audio_frames


def test_real_text_in_the_opener_and_null_voice_settings(local_server: str) -> None:
    opener = {"text": "Hello from the opener. ", "voice_settings": None, "try_trigger_generation": True}
    result = run(exchange(_url(local_server), [opener, EOS]))
    assert result.close_code == 1000
    chars = "".join(c for f in result.audio_frames for c in f["alignment"]["chars"])
    assert chars == "Hello from the opener."


def test_inactivity_timeout_sends_the_error_then_closes_1008(local_server: str) -> None:
    result = run(exchange(_url(local_server, inactivity_timeout="1"), [BOS]))
    assert result.close_code == 1008
    assert result.errors[0]["error"] == "input_timeout_exceeded"
    assert "timeout of 1.0 seconds" in result.errors[0]["message"]
    assert "timeout of 1 seconds" in result.close_reason


def test_time_spent_speaking_does_not_count_as_inactivity(local_server: str) -> None:
    long_text = SENTENCE * 6
    result = run(
        exchange(
            _url(local_server, "joe", inactivity_timeout="1"),
            [BOS, {"text": long_text, "flush": True}, 1.5, EOS],
        )
    )
    assert result.close_code == 1000, result.errors


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        (["this is not json"], "invalid_input_message"),
        ([{"txt": "wrong field"}], "invalid_input_message"),
        ([{"text": 42}], "invalid_input_message"),
        (
            [{"text": " ", "generation_config": {"chunk_length_schedule": [20]}}],
            "invalid_chunk_length_schedule",
        ),
        (
            [
                {"text": " ", "voice_settings": {"stability": 0.5}},
                {"text": "x ", "voice_settings": {"stability": 0.9}},
            ],
            "invalid_input_message",
        ),
    ],
)
def test_bad_input_gets_an_error_frame_then_1008(local_server: str, messages: list, error: str) -> None:
    result = run(exchange(_url(local_server), messages))
    assert result.close_code == 1008
    assert result.errors and result.errors[0]["error"] == error
    assert result.errors[0]["code"] == 1008 and result.errors[0]["message"]


def test_changed_voice_settings_close_with_the_live_reason(local_server: str) -> None:
    result = run(
        exchange(
            _url(local_server),
            [
                {"text": " ", "voice_settings": {"speed": 1.0}},
                {"text": "x ", "voice_settings": {"speed": 1.1}},
            ],
        )
    )
    assert result.close_reason.startswith("voice_settings field must be provided in the first message")


def test_unknown_voice_is_refused_naming_the_listing(local_server: str) -> None:
    result = run(exchange(_url(local_server, "nobody"), [BOS]))
    assert result.close_code == 1008
    assert result.errors[0]["error"] == "voice_not_found"
    message = result.errors[0]["message"]
    assert "elevtts voices" in message and "GET /v1/voices" in message
    assert "espeak-de" not in message  # not 140 ids


@pytest.mark.parametrize("fmt", ["wav_44100", "mp3_1_2"])
def test_unsupported_output_format_is_refused(local_server: str, fmt: str) -> None:
    result = run(exchange(_url(local_server, output_format=fmt), [BOS]))
    assert result.close_code == 1008
    assert result.errors[0]["error"] == "invalid_output_format"
    assert "mp3_44100_128" in result.errors[0]["message"]


def test_bad_query_value_is_refused(local_server: str) -> None:
    result = run(exchange(_url(local_server, inactivity_timeout="500"), [BOS]))
    assert result.close_code == 1008 and "inactivity_timeout" in result.errors[0]["message"]


def test_oversized_message_closes_1009() -> None:
    thread, url = run_local_server(ServerConfig(port=0, voices=("espeak",), max_message_bytes=64 * 1024))
    try:
        huge = json.dumps({"text": "a" * (100 * 1024)})
        result = run(exchange(_url(url), [BOS, huge]))
    finally:
        thread.stop()
    assert result.close_code == 1009


def test_server_survives_bad_clients_and_keeps_serving(local_server: str) -> None:
    for raw in ["{", "[]", "null", '{"text": null, "flush": 3}']:
        assert run(exchange(_url(local_server), [raw])).close_code == 1008
    assert run(exchange(_url(local_server), [BOS, {"text": "Still here. "}, EOS])).close_code == 1000


def test_client_vanishing_mid_stream_leaves_the_server_healthy(local_server: str) -> None:
    async def vanish() -> None:
        async with connect(_url(local_server, "joe")) as ws:
            await ws.send(json.dumps(BOS))
            await ws.send(json.dumps({"text": SENTENCE * 5, "flush": True}))
            await asyncio.sleep(0.2)
            ws.transport.abort()  # no close frame

    run(vanish())
    assert run(exchange(_url(local_server), [BOS, {"text": "Fine. "}, EOS])).close_code == 1000


@pytest.mark.parametrize("fmt", SUPPORTED_FORMATS)
def test_every_format_has_its_sample_rate_and_duration(local_server: str, fmt: str) -> None:
    text = "Testing every output format of the local server. "
    result = run(exchange(_url(local_server, output_format=fmt), [BOS, {"text": text}, EOS]))
    assert result.close_code == 1000
    audio = result.audio()
    codec, rate = fmt.split("_")[0], int(fmt.split("_")[1])
    if codec == "mp3":
        samples, decoded_rate = decode_mp3(audio)
        assert decoded_rate == rate
    elif codec == "pcm":
        samples = np.frombuffer(audio, "<i2")
    elif codec == "opus":
        samples, decoded_rate = decode_opus(audio)
        assert decoded_rate == rate
    else:
        samples = np.frombuffer(audio, np.uint8)  # 8-bit G.711: one byte a sample
    seconds = len(samples) / rate
    aligned = _alignment_end_s(result.audio_frames)
    assert abs(seconds - aligned) < 0.25, (seconds, aligned)
    assert seconds > 1.5
    if codec in ("mp3", "pcm", "opus"):
        assert rms(samples) > 300


def _alignment_end_s(frames: list[dict]) -> float:
    """Total audio time covered by the frames, from the alignment (frame times are relative)."""
    total = 0.0
    for frame in frames:
        alignment = frame["alignment"]
        if alignment["chars"]:
            end = alignment["charStartTimesMs"][-1] + alignment["charDurationsMs"][-1]
            total += end / 1000
    return total


def test_alignment_covers_the_text_and_matches_the_decoded_audio(local_server: str) -> None:
    text = "Alignment should cover every character. It should also match the audio length."
    result = run(exchange(_url(local_server, output_format="pcm_22050"), [BOS, {"text": text + " "}, EOS]))
    frames = result.audio_frames
    chars = "".join(c for f in frames for c in f["alignment"]["chars"])
    assert chars == text
    for frame in frames:
        alignment = frame["alignment"]
        assert (
            len(alignment["chars"]) == len(alignment["charStartTimesMs"]) == len(alignment["charDurationsMs"])
        )
        frame_s = len(__import__("base64").b64decode(frame["audio"])) / 2 / 22050
        starts = alignment["charStartTimesMs"]
        assert starts == sorted(starts) and all(0 <= s <= frame_s * 1000 + 1 for s in starts)
        assert frame["normalizedAlignment"]["chars"] == alignment["chars"]
    assert max(len(json.dumps(f)) for f in result.frames) < 1024 * 1024


def test_speed_really_changes_the_speaking_rate(local_server: str) -> None:
    def seconds(speed: float) -> float:
        opener = {"text": " ", "voice_settings": {"speed": speed}}
        result = run(
            exchange(_url(local_server, output_format="pcm_16000"), [opener, {"text": SENTENCE}, EOS])
        )
        return len(result.audio()) / 2 / 16000

    assert seconds(0.7) > seconds(1.2) * 1.3


def test_concurrent_connections_are_all_served(local_server: str) -> None:
    async def many() -> list:
        return await asyncio.gather(
            *(
                exchange(_url(local_server), [BOS, {"text": f"Connection number {i}. "}, EOS])
                for i in range(6)
            )
        )

    results = run(many())
    assert all(r.close_code == 1000 and r.audio_frames for r in results)


def test_voices_endpoint_lists_both_voices(local_server: str) -> None:
    http = local_server.replace("ws://", "http://")
    with urllib.request.urlopen(f"{http}/v1/voices", timeout=10) as response:
        assert response.headers["Content-Type"] == "application/json"
        voices = json.load(response)["voices"]
    assert {v["voice_id"] for v in voices} >= {"joe", "espeak"}


def test_eleven_v3_is_refused_at_the_handshake_like_the_live_api(local_server: str) -> None:
    from websockets.exceptions import InvalidStatus

    async def attempt() -> int:
        try:
            async with connect(_url(local_server, model_id="eleven_v3")):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    assert run(attempt()) == 403


def test_unknown_paths_are_404(local_server: str) -> None:
    http = local_server.replace("ws://", "http://")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{http}/v1/nothing", timeout=10)
    caught.value.close()
    assert caught.value.code == 404


# -- authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "opener"),
    [
        ({"xi-api-key": " sesame"}, BOS),  # the latency tool sends a leading space
        ({}, {"text": " ", "xi_api_key": "sesame"}),
        ({}, {"text": " ", "xi-api-key": "sesame"}),
        ({}, {"text": " ", "authorization": "Bearer sesame"}),
    ],
)
def test_every_documented_key_location_is_accepted(keyed_server: str, headers: dict, opener: dict) -> None:
    result = run(exchange(_url(keyed_server), [opener, {"text": "Authorized. "}, EOS], headers=headers))
    assert result.close_code == 1000 and result.audio_frames


def test_key_in_the_authorization_query_parameter(keyed_server: str) -> None:
    result = run(exchange(_url(keyed_server, authorization="sesame"), [BOS, {"text": "Hi. "}, EOS]))
    assert result.close_code == 1000


@pytest.mark.parametrize(
    ("headers", "opener"),
    [({}, BOS), ({"xi-api-key": "wrong"}, BOS), ({}, {"text": " ", "xi_api_key": "wrong"})],
)
def test_missing_or_wrong_key_is_refused(keyed_server: str, headers: dict, opener: dict) -> None:
    result = run(exchange(_url(keyed_server), [opener, {"text": "Hi. "}, EOS], headers=headers))
    assert result.close_code == 1008
    assert result.errors[0]["error"] == "invalid_api_key"
    assert "wrong" not in json.dumps(result.frames) + result.close_reason  # never echoes a key


# -- streaming -----------------------------------------------------------------------------------


@pytest.mark.neural
def test_first_audio_does_not_wait_for_the_whole_flushed_text(local_server: str) -> None:
    """A long flush streams sentence by sentence: first audio well before the last."""
    text = " ".join(f"This is sentence number {i} of a long flushed paragraph." for i in range(12)) + " "
    result = run(exchange(_url(local_server, "joe"), [BOS, {"text": text, "flush": True}, EOS]))
    arrivals = [t for f, t in zip(result.frames, result.arrivals, strict=True) if f.get("audio")]
    assert len(arrivals) >= 10
    spread = arrivals[-1] - arrivals[0]
    assert spread > 0 and (arrivals[1] - arrivals[0]) < spread / 3
    samples, rate = decode_mp3(result.audio())
    assert_speech(samples, rate, words=12 * 10)


@pytest.mark.neural
def test_neural_voice_speaks_with_word_alignment(local_server: str) -> None:
    text = "The neural voice reads this sentence aloud."
    result = run(
        exchange(_url(local_server, "joe", output_format="mp3_22050_32"), [BOS, {"text": text + " "}, EOS])
    )
    samples, rate = decode_mp3(result.audio())
    assert rate == 22050
    assert_speech(samples, rate, words=7)
    chars = "".join(c for f in result.audio_frames for c in f["alignment"]["chars"])
    assert chars == text
    assert abs(len(samples) / rate - _alignment_end_s(result.audio_frames)) < 0.3


def test_fallback_voice_speaks_unknown_voice_ids() -> None:
    """Agents configured with a service voice id work unchanged when the server has a fallback."""
    thread, url = run_local_server(ServerConfig(port=0, voices=("espeak",), fallback_voice="espeak"))
    try:
        result = run(exchange(_url(url, "21m00Tcm4TlvDq8ikWAM"), [BOS, {"text": "Any voice id. "}, EOS]))
    finally:
        thread.stop()
    assert result.close_code == 1000 and not result.errors
    samples, rate = decode_mp3(result.audio())
    assert_speech(samples, rate, words=3)


def test_inactivity_never_fires_after_end_of_input(local_server: str) -> None:
    """After `{"text": ""}` the stream only finishes: a tiny timeout must not turn it into an error.

    The client reads slowly (one queued frame), so the server's close waits on it well past the
    timeout, as a busy client's does under load.
    """

    async def scenario() -> tuple[list[dict], int | None]:
        url = _url(local_server, inactivity_timeout="0.01", output_format="pcm_44100")
        async with connect(url, max_queue=1, max_size=None) as ws:
            await ws.send(json.dumps({"text": SENTENCE * 6}))
            await ws.send(json.dumps(EOS))
            await asyncio.sleep(1.0)
            frames = [json.loads(m) async for m in ws]
            return frames, ws.close_code

    frames, code = run(scenario())
    assert [f for f in frames if "error" in f] == []
    assert code == 1000 and frames[-1] == {"isFinal": True}


def test_the_key_is_checked_before_a_large_message_is_read(keyed_server: str) -> None:
    """Issue 11 item 5: a stranger's large first message is refused before it is held."""
    # 100 KB, nearly all of it a field the server ignores (so that speaking it takes no time)
    large = json.dumps({"text": "Hello. ", "xi_api_key": "sesame", "padding": "x" * 100_000})
    refused = run(exchange(_url(keyed_server), [large]))
    assert refused.close_code == 1009
    accepted = run(exchange(_url(keyed_server), [large, EOS], headers={"xi-api-key": "sesame"}))
    assert accepted.close_code == 1000 and accepted.audio() and not accepted.errors


def test_buffered_text_and_connections_are_bounded() -> None:
    config = ServerConfig(port=0, voices=("espeak",), max_connections=1, max_buffered_chars=5000)
    thread, url = run_local_server(config)

    async def scenario() -> tuple[int | None, int, Any]:
        async with connect(_url(url)) as first:
            with pytest.raises(InvalidStatus) as refused:
                async with connect(_url(url)):
                    pass
            await first.send(json.dumps({"text": "x" * 6000}))  # one word: all of it stays buffered
            with contextlib.suppress(ConnectionClosed):
                error = json.loads(await first.recv())
            await first.wait_closed()
            return first.close_code, refused.value.response.status_code, error

    try:
        code, status, error = run(scenario())
        assert status == 503
        assert (code, error["error"]) == (1009, "max_character_limit_exceeded")
        after = run(_retry_while_busy(_url(url), [{"text": "Served again. "}, EOS]))  # the slot is free again
        assert after.close_code == 1000 and after.audio()
    finally:
        thread.stop()


async def _retry_while_busy(url: str, messages: list[Any]) -> Any:
    """503 means "try again later": the refused connection's handler may still be ending."""
    for _ in range(50):
        try:
            return await exchange(url, messages)
        except InvalidStatus as refused:
            assert refused.response.status_code == 503
            await asyncio.sleep(0.05)
    raise AssertionError("the server stayed full")


class _BrokenEngine:
    voice = Voice("server-broken", "Broken", "test", "en", 22050, "fails on a text that says so")

    def synthesize(self, text: str, options: SynthesisOptions) -> Speech:
        if "break" in text:
            raise RuntimeError("the engine broke")
        return Speech.empty(22050)  # the warm-up at start


def test_an_engine_failure_is_1011_logged_and_the_server_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    register_engine(_BrokenEngine.voice, _BrokenEngine)
    thread, url = run_local_server(ServerConfig(port=0, voices=("espeak", "server-broken")))
    try:
        with caplog.at_level(logging.ERROR, logger="elevtts.server"):
            broken = run(exchange(_url(url, "server-broken"), [{"text": "Please break. "}, EOS]))
        served = run(exchange(_url(url), [{"text": "Still here. "}, EOS]))
    finally:
        thread.stop()
        engines._REGISTRY.pop("server-broken", None)
    assert broken.close_code == 1011 and [e["error"] for e in broken.errors] == ["internal_error"]
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [RuntimeError]
    assert served.close_code == 1000 and served.audio()
