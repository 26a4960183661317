"""`serve --log-format json`: one JSON object a line on stderr, lifecycle events, one `session_end`
per session with its outcome; never the key, never the text. A real `serve` subprocess."""

from __future__ import annotations

import datetime
import json
import signal
import urllib.request
from pathlib import Path
from typing import Any

from conftest import exchange, run
from test_serve_cli import _env, serving

KEY = "sk-jsonlogs-93c1d7e2b4"
SECRET_TEXT = "Nobody reads this sentence in the logs. "


def _events(stderr: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]  # every line is JSON
    for line in lines:
        when = datetime.datetime.fromisoformat(line["time"])
        assert line["time"].endswith("Z") and when.utcoffset() == datetime.timedelta(0)
        assert line["level"] in {"debug", "info", "warning", "error"}
    return lines


def test_json_logs_give_lifecycle_events_and_one_session_end_per_session(tmp_path: Path) -> None:
    env = _env(ELEVTTS_LOG_FORMAT="json", ELEVTTS_SERVER_API_KEY=KEY)
    with serving(tmp_path, "--voice", "espeak", env=env) as server:
        headers = {"xi-api-key": KEY}
        spoken = run(
            exchange(
                server.stream_url(), [{"text": " "}, {"text": SECRET_TEXT}, {"text": ""}], headers=headers
            )
        )
        assert spoken.close_code == 1000
        refused = run(exchange(server.stream_url(), [{"text": " "}, "not json"], headers=headers))
        assert refused.close_code == 1008
        request = urllib.request.Request(
            f"{server.http}/v1/text-to-speech/espeak/stream",
            data=json.dumps({"text": SECRET_TEXT}).encode(),
            headers={"Content-Type": "application/json", **headers},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.read()
        assert server.stop(signal.SIGTERM) == 0
        stdout = server.stdout_path.read_text()
        stderr = server.stderr_path.read_text()

    assert stdout.splitlines() == [server.url]  # stdout keeps the plain URL line
    events = _events(stderr)
    names = [e["event"] for e in events]
    for lifecycle in ("voice_loaded", "listening", "draining", "stopped"):
        assert lifecycle in names, names
    assert names.index("listening") < names.index("draining") < names.index("stopped")
    [loaded] = [e for e in events if e["event"] == "voice_loaded"]
    assert loaded["voice"] == "espeak" and loaded["load_time_s"] >= 0
    [draining] = [e for e in events if e["event"] == "draining"]
    assert draining["open_sessions"] == 0

    ends = [e for e in events if e["event"] == "session_end"]
    assert [e["endpoint"] for e in ends] == ["stream-input", "stream-input", "stream"]
    assert len({e["session_id"] for e in ends}) == 3
    ok, bad, http = ends
    assert ok["close_code"] == 1000 and ok["error"] is None
    assert ok["voice"] == "espeak" and ok["output_format"] == "mp3_44100_128"
    assert ok["characters"] >= len(SECRET_TEXT.strip()) and ok["audio_seconds"] > 1
    assert 0 < ok["ttfb_ms"] < 10_000 and ok["duration_s"] > 0
    assert bad["close_code"] == 1008 and bad["error"] == "invalid_input_message"
    assert bad["ttfb_ms"] is None and bad["characters"] == 0
    assert http["close_code"] == 200 and http["ttfb_ms"] > 0 and http["audio_seconds"] > 1
    for field in ("model", "output_format", "voice", "error", "duration_s", "characters"):
        assert all(field in e for e in ends)
    assert KEY not in stderr and "Nobody reads" not in stderr


def test_text_logs_stay_readable_lines(tmp_path: Path) -> None:
    with serving(tmp_path, "--voice", "espeak") as server:
        result = run(exchange(server.stream_url(), [{"text": " "}, {"text": SECRET_TEXT}, {"text": ""}]))
        assert result.close_code == 1000
        assert server.stop(signal.SIGTERM) == 0
        stderr = server.stderr_path.read_text()
    assert "elevtts serve: listening on" in stderr and "elevtts serve: stopped" in stderr
    assert "session_end session_id=" in stderr and "close_code=1000" in stderr
    assert "Nobody reads" not in stderr
