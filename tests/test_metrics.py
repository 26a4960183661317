"""GET /metrics: scraped after real sessions (WebSocket and HTTP) and parsed with prometheus_client's
own parser; bounded labels, never a key, a text, a peer or a client-chosen voice string."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest
from conftest import exchange, run, run_local_server
from prometheus_client.parser import text_string_to_metric_families

from elevtts.server.app import ServerConfig

KEY = "sk-metrics-5e1b7c9a40"
SENTENCE = "Counting every word the server speaks for its metrics. "
MADE_UP_VOICE = "a-voice-the-client-invented"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    thread, url = run_local_server(
        ServerConfig(port=0, voices=("espeak",), api_key=KEY, fallback_voice="espeak")
    )
    yield url
    thread.stop()


def _scrape(url: str) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    with urllib.request.urlopen("http" + url.removeprefix("ws") + "/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = response.read().decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return text, samples


def test_metrics_count_real_sessions_by_endpoint_code_and_served_voice(server: str) -> None:
    stream = f"{server}/v1/text-to-speech/{{voice}}/stream-input"
    key = {"xi-api-key": KEY}
    speech = [{"text": " "}, {"text": SENTENCE}, {"text": ""}]
    ok = run(exchange(stream.format(voice="espeak"), speech, headers=key))
    assert ok.close_code == 1000
    fallback = run(exchange(stream.format(voice=MADE_UP_VOICE), speech, headers=key))
    assert fallback.close_code == 1000
    bad = run(exchange(stream.format(voice="espeak"), [{"text": " "}, "not json"], headers=key))
    assert bad.close_code == 1008
    request = urllib.request.Request(
        "http" + server.removeprefix("ws") + "/v1/text-to-speech/espeak",
        data=json.dumps({"text": SENTENCE}).encode(),
        headers={"Content-Type": "application/json", "xi-api-key": KEY},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200 and response.read()

    text, samples = _scrape(server)

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("elevtts_sessions_total", endpoint="stream-input", code="1000") == 2
    assert value("elevtts_sessions_total", endpoint="stream-input", code="1008") == 1
    assert value("elevtts_sessions_total", endpoint="convert", code="200") == 1
    assert value("elevtts_errors_total", error="invalid_input_message") == 1
    assert value("elevtts_active_sessions", endpoint="stream-input") == 0
    assert value("elevtts_active_sessions", endpoint="convert") == 0
    # Only the three sessions that produced audio have a time to first audio.
    assert value("elevtts_time_to_first_audio_seconds_count", endpoint="stream-input") == 2
    assert value("elevtts_time_to_first_audio_seconds_count", endpoint="convert") == 1
    assert 0 < value("elevtts_time_to_first_audio_seconds_sum", endpoint="stream-input") < 10
    # The fallback's sessions count under the voice that spoke, never the client's string.
    assert value("elevtts_characters_total", voice="espeak") >= 3 * len(SENTENCE.strip())
    assert 3 * 2.0 < value("elevtts_audio_seconds_total", voice="espeak") < 3 * 8.0  # ~9 words each
    assert value("elevtts_synthesis_real_time_factor_count", voice="espeak") >= 3
    assert value("elevtts_voice_load_seconds", voice="espeak") > 0
    assert value("elevtts_draining") == 0
    for secret in (KEY, MADE_UP_VOICE, "Counting every word", "127.0.0.1"):
        assert secret not in text
