"""The frozen configuration: parsing, validation in the constructor, and where `.env` comes from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from elevtts.config import (
    StreamConfig,
    load_env_file,
    parse_locators,
    parse_schedule,
    parse_streamable_format,
    parse_subtitles,
)
from elevtts.errors import UsageError
from elevtts.protocol import DictionaryLocator

REPO = Path(__file__).resolve().parents[1]
NOBODY = "ws://127.0.0.1:9"


def test_schedule_takes_whole_numbers_only() -> None:
    assert parse_schedule("120, 160,250") == (120, 160, 250)
    assert parse_schedule(None) is None
    for bad in ("120,,160", "120.5,160", "", "120,", "fast", "49", "501", "-60"):
        with pytest.raises(UsageError, match="--chunk-length-schedule"):
            parse_schedule(bad)


def test_subtitles_and_locators() -> None:
    assert parse_subtitles("VTT, srt,vtt") == ("srt", "vtt")
    assert parse_subtitles(None) == ()
    with pytest.raises(UsageError, match="ass"):
        parse_subtitles("srt,ass")
    assert parse_locators(["d1:v1", "d2"]) == (DictionaryLocator("d1", "v1"), DictionaryLocator("d2", None))
    with pytest.raises(UsageError, match="at most 3"):
        parse_locators(["a", "b", "c", "d"])


@pytest.mark.parametrize("name", ["wav_44100", "pcm", "", "foo_1", "mp3_1_2", "MP3_44100_128"])
def test_output_format_is_checked_before_connecting(name: str) -> None:
    with pytest.raises(UsageError, match="--output-format"):
        parse_streamable_format(name)
    assert parse_streamable_format("ulaw_8000").sample_rate == 8000


def test_config_is_frozen_and_valid_once_built() -> None:
    config = StreamConfig.from_flags(output_format="pcm_16000", url=NOBODY, speed=1.1, flush="auto")
    assert config.voice_settings == {"speed": 1.1}
    assert config.target.kind == "url" and config.voice_id == "joe"
    assert config.flush_for(streamed=True) == "sentence" and config.flush_for(streamed=False) == "end"
    assert config.strip_markdown_for(markdown_input=True) is True
    with pytest.raises(AttributeError):
        config.flush = "never"  # type: ignore[misc]
    with pytest.raises(UsageError, match="--inactivity-timeout"):
        StreamConfig(target=config.target, output_format=config.output_format, inactivity_timeout=0)
    with pytest.raises(UsageError, match="--speed"):
        StreamConfig(target=config.target, output_format=config.output_format, voice_settings={"speed": 2.0})
    with pytest.raises(UsageError, match="--region"):
        StreamConfig.from_flags(output_format="pcm_16000", region="mars")  # type: ignore[arg-type]


def test_api_key_never_in_the_repr() -> None:
    config = StreamConfig.from_flags(output_format="mp3_44100_128", api_key="sk-secret-1234")
    assert config.target.kind == "elevenlabs"
    assert "sk-secret-1234" not in repr(config)


def test_load_env_file_never_overrides_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ELEVTTS_TEST_KEPT", "from-env")
    monkeypatch.delenv("ELEVTTS_TEST_NEW", raising=False)
    assert load_env_file() is None  # no .env here
    Path(".env").write_text("ELEVTTS_TEST_KEPT=from-file\nELEVTTS_TEST_NEW=new\n")
    assert load_env_file() == Path(".env")
    assert os.environ["ELEVTTS_TEST_KEPT"] == "from-env" and os.environ["ELEVTTS_TEST_NEW"] == "new"
    monkeypatch.delenv("ELEVTTS_TEST_NEW")
    with pytest.raises(UsageError, match="--env-file"):
        load_env_file(tmp_path / "missing.env")


# -- .env as a user meets it: real processes ---------------------------------------------------


def _voices(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ELEVTTS_", "ELEVENLABS_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "elevtts", *args, "voices", "--json"],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_dotenv_is_read_from_the_current_directory_only(tmp_path: Path) -> None:
    # A .env in a parent folder must not switch the command to another server (or the paid service).
    (tmp_path / ".env").write_text(f"ELEVTTS_URL={NOBODY}\n")
    child = tmp_path / "project"
    child.mkdir()
    done = _voices(child)
    assert done.returncode == 0, done.stderr  # the local voices: the parent's .env was not read
    assert '"joe"' in done.stdout
    here = _voices(tmp_path)
    assert here.returncode == 5 and "ws://127.0.0.1:9" in here.stderr  # ./.env is read


def test_env_file_option(tmp_path: Path) -> None:
    settings = tmp_path / "staging.env"
    settings.write_text(f"ELEVTTS_URL={NOBODY}\n")
    done = _voices(tmp_path, "--env-file", str(settings))
    assert done.returncode == 5 and "ws://127.0.0.1:9" in done.stderr
    missing = _voices(tmp_path, "--env-file", str(tmp_path / "nope.env"))
    assert missing.returncode == 2 and "--env-file" in missing.stderr and "Traceback" not in missing.stderr
