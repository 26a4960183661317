"""Every espeak-ng language: its voice, `language_code` on the `espeak` voice, and German, French,
Spanish and Chinese end to end through a real server (alignment, word timings, subtitles, resume)."""

from __future__ import annotations

import contextlib
import json
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ServerThread, exchange, run
from typer.testing import CliRunner

from elevtts.cli import app
from elevtts.server.engines import SynthesisOptions, available_voices, get_engine, language_voices
from elevtts.server.engines.languages import espeak_languages, pick_language

SAME_TEXT = "Das ist eine gute Idee, nicht wahr?"
TEXTS = {
    "de": "Guten Morgen! Heute scheint die Sonne über der Stadt, und die Kinder spielen im Park.",
    "fr": "Bonjour à tous ! Aujourd'hui, le soleil brille sur la ville et les enfants jouent au parc.",
    "es": "¡Buenos días! Hoy el sol brilla sobre la ciudad y los niños juegan en el parque.",
    "zh": "今天天气很好。我们去公园散步吧！孩子们在玩。",  # noqa: RUF001 (a Chinese full-width "!")
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("ELEVENLABS_API_KEY", "ELEVTTS_URL", "ELEVTTS_VOICE", "ELEVTTS_OUTPUT_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def url(server: str, voice: str = "espeak", *, multi: bool = False, **query: str) -> str:
    path = "multi-stream-input" if multi else "stream-input"
    return f"{server}/v1/text-to-speech/{voice}/{path}" + (
        "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    )


def pcm_seconds(result: Any, rate: int = 16000) -> float:
    return len(result.audio()) / 2 / rate


def speak_pcm(server: str, voice: str, text: str, **query: str) -> Any:
    query.setdefault("output_format", "pcm_16000")
    result = run(exchange(url(server, voice, **query), [{"text": " "}, {"text": text}, {"text": ""}]))
    assert result.close_code == 1000, result.errors
    return result


# -- the voices ---------------------------------------------------------------------------------


def test_one_voice_per_espeak_language() -> None:
    voices = {v.voice_id: v for v in available_voices()}
    languages = espeak_languages()
    assert len(languages) >= 120  # espeak-ng 1.52 has 141
    for language in languages:
        voice = voices[language.voice_id]
        assert voice.engine == "espeak" and voice.name == language.name
    for voice_id in ("espeak-de", "espeak-fr", "espeak-fr-be", "espeak-pt-br", "espeak-cmn", "espeak-es"):
        assert voice_id in voices
    assert voices["espeak-de"].name == "German"
    assert voices["espeak-fr-be"].name == "French (Belgium)"
    # ISO 639-1 where one exists, else espeak's tag.
    assert voices["espeak-fr-be"].language == "fr"
    assert voices["espeak-cmn"].language == "zh"
    assert voices["espeak-hak"].language == "hak"
    assert {"joe", "espeak"} <= voices.keys()


def test_espeak_lists_the_languages_language_code_accepts() -> None:
    espeak = next(v for v in available_voices() if v.voice_id == "espeak").to_json()
    assert espeak["labels"] == {"engine": "espeak", "language": "en"}
    verified = espeak["verified_languages"]
    assert len(verified) == len(espeak_languages())
    assert verified[0]["locale"] == "en-US"
    assert {"language": "de", "locale": "de"}.items() <= next(
        v for v in verified if v["locale"] == "de"
    ).items()
    assert {"model_id", "accent", "preview_url"} <= verified[0].keys()
    german = next(v for v in available_voices() if v.voice_id == "espeak-de").to_json()
    assert [v["locale"] for v in german["verified_languages"]] == ["de"]


@pytest.mark.parametrize(
    ("code", "voice"),
    [
        ("de", "espeak-de"),
        ("DE", "espeak-de"),
        ("de-AT", "espeak-de"),
        ("pt-BR", "espeak-pt-br"),
        ("pt_br", "espeak-pt-br"),
        ("fr", "espeak-fr"),
        ("fr-BE", "espeak-fr-be"),
        ("fr-CA", "espeak-fr"),
        ("es-MX", "espeak-es-419"),
        ("zh", "espeak-cmn"),
        ("ja", "espeak-ja"),
        ("no", "espeak-nb"),
        ("en", "espeak"),  # the default stays American English
        ("en-US", "espeak"),
        ("en-GB", "espeak-en"),
        ("xx", None),
        ("klingon", None),
    ],
)
def test_language_code_picks_the_language(code: str, voice: str | None) -> None:
    assert language_voices()["espeak"](code) == voice
    picked = pick_language(espeak_languages(), code)
    assert (picked is None) == (voice is None)


@pytest.mark.parametrize("voice", ["espeak-de", "espeak-fr", "espeak-es"])
def test_each_language_reads_with_its_own_phonemes(voice: str) -> None:
    english = get_engine("espeak").phonemes(SAME_TEXT)  # type: ignore[attr-defined]
    own = get_engine(voice).phonemes(SAME_TEXT)  # type: ignore[attr-defined]
    assert own and english and own != english
    english_gute = "\u0261j\u02c8u\u02d0t"  # "gute" read as the English "gyoot" (IPA)
    assert english_gute in english
    assert english_gute not in own


def test_speed_changes_the_rate_of_every_espeak_language() -> None:
    engine = get_engine("espeak-de")
    normal = engine.synthesize(TEXTS["de"], SynthesisOptions(speed=1.0))
    fast = engine.synthesize(TEXTS["de"], SynthesisOptions(speed=1.2))
    slow = engine.synthesize(TEXTS["de"], SynthesisOptions(speed=0.7))
    assert slow.duration_s > normal.duration_s * 1.2 > fast.duration_s * 1.2


# -- language_code through the protocol ------------------------------------------------------------


def test_language_code_switches_the_espeak_voice(local_server: str) -> None:
    text = TEXTS["de"]
    english = pcm_seconds(speak_pcm(local_server, "espeak", text))
    german = pcm_seconds(speak_pcm(local_server, "espeak", text, language_code="de"))
    german_voice = pcm_seconds(speak_pcm(local_server, "espeak-de", text))
    assert abs(german - german_voice) < 0.05  # the German voice speaks
    assert abs(german - english) > 0.3  # not the English one


@pytest.mark.parametrize("multi", [False, True])
def test_an_unknown_language_code_is_refused(local_server: str, multi: bool) -> None:
    result = run(
        exchange(url(local_server, multi=multi, language_code="xx", model_id="any"), [{"text": " "}])
    )
    assert result.close_code == 1008
    error = result.errors[0]
    assert error["error"] == "invalid_request"
    assert "'xx'" in error["message"]
    assert "elevtts voices" in error["message"] and "GET /v1/voices" in error["message"]


def test_language_code_works_on_multi_stream_input(local_server: str) -> None:
    messages = [
        {"text": TEXTS["de"], "context_id": "a", "flush": True},
        {"context_id": "a", "close_context": True},
        {"close_socket": True},
    ]
    german = run(
        exchange(url(local_server, multi=True, language_code="de", output_format="pcm_16000"), messages)
    )
    direct = run(exchange(url(local_server, "espeak-de", multi=True, output_format="pcm_16000"), messages))
    assert german.close_code == direct.close_code == 1000
    assert abs(pcm_seconds(german) - pcm_seconds(direct)) < 0.05


def test_a_single_language_voice_ignores_another_language_code(local_server: str) -> None:
    text = TEXTS["de"]
    plain = pcm_seconds(speak_pcm(local_server, "espeak-de", text))
    with_french = pcm_seconds(speak_pcm(local_server, "espeak-de", text, language_code="fr"))
    assert abs(plain - with_french) < 0.05


# -- end to end: alignment, word timings, subtitles ----------------------------------------------


def _letters(text: str) -> str:
    return "".join(ch for ch in text if not ch.isspace() and not unicodedata.category(ch).startswith("P"))


@pytest.mark.parametrize("language", ["de", "fr", "es", "zh"])
def test_speak_subtitles_in_every_language(local_server: str, language: str) -> None:
    text = TEXTS[language]
    result = CliRunner().invoke(
        app,
        [
            "speak",
            "--url",
            local_server,
            "--voice",
            "espeak",
            "--language-code",
            language,
            "--name",
            language,
            "--subtitles",
            "srt,json",
            "--output-format",
            "pcm_16000",
            "-q",
            text,
        ],
    )
    assert result.exit_code == 0, result.output
    words = json.loads(Path(f"output/{language}.words.json").read_text())["words"]
    seconds = Path(f"output/{language}.pcm").stat().st_size / 32000
    if language == "zh":
        # No spaces: the subtitle words are cut at whitespace (one a clause here), together the text.
        assert len(words) >= 3
        assert _letters("".join(w["text"] for w in words)) == _letters(text)
    else:
        assert [w["text"] for w in words] == text.split()
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and all(w["end"] >= w["start"] for w in words)
    assert words[-1]["end"] <= seconds + 0.1
    assert words[-1]["start"] > seconds / 2  # real timings reach the end of the speech
    srt = Path(f"output/{language}.srt").read_text()
    assert srt.startswith("1\n00:00:00,")
    assert _letters(srt.split("\n", 2)[2]) and all(_letters(w["text"]) in _letters(srt) for w in words)


@pytest.mark.parametrize("language", ["de", "fr", "es", "zh"])
def test_alignment_covers_every_character(local_server: str, language: str) -> None:
    text = TEXTS[language]
    result = speak_pcm(local_server, "espeak", text, language_code=language)
    chars = "".join("".join(f["alignment"]["chars"]) for f in result.audio_frames)
    assert chars == text or chars.strip() == text.strip()
    audio_ms = pcm_seconds(result) * 1000
    durations = []
    for frame in result.audio_frames:
        alignment = frame["alignment"]
        assert alignment["charStartTimesMs"] == sorted(alignment["charStartTimesMs"])
        durations += alignment["charDurationsMs"]
    assert audio_ms > 500
    # Timed from espeak's word events, not spread evenly: the characters do not all last the same.
    assert len(set(durations)) > 3


@pytest.mark.parametrize("language", ["de", "zh"])
def test_a_dropped_connection_resumes_in_other_languages(local_server: str, language: str) -> None:
    import asyncio

    from test_speak import CuttingProxy

    proxy = CuttingProxy(local_server, cut_after=40_000)

    async def factory() -> tuple[Any, str]:
        server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
        return server, f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    thread = ServerThread(factory)
    proxied = thread.start()
    text = " ".join([TEXTS[language]] * 4)
    common = ["--voice", "espeak", "--language-code", language, "--output-format", "pcm_16000"]
    runner = CliRunner()
    try:
        result = runner.invoke(
            app,
            ["speak", "--url", proxied, "--name", "resumed", *common, "--subtitles", "json", "--json", text],
        )
    finally:
        thread.stop()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["reconnects"] == 1 and proxy.connections == 2
    words = [w["text"] for w in json.loads(Path("output/resumed.words.json").read_text())["words"]]
    if language == "zh":
        assert _letters("".join(words)) == _letters(text)
    else:
        assert words == text.split()
    direct = runner.invoke(app, ["speak", "--url", local_server, "--name", "direct", *common, "-q", text])
    assert direct.exit_code == 0
    resumed_s = Path("output/resumed.pcm").stat().st_size / 32000
    direct_s = Path("output/direct.pcm").stat().st_size / 32000
    assert resumed_s == pytest.approx(direct_s, rel=0.1)
    assert np.isfinite(resumed_s)


def test_connections_dropped_mid_speech_leave_the_server_speaking() -> None:
    """A connection that vanishes while its piece waits for the engine gives its slot back (a
    leaked slot once hung every later connection; the language voices' long first pieces showed it)."""
    import asyncio

    from conftest import run_local_server
    from websockets.asyncio.client import connect

    from elevtts.server.app import ServerConfig

    thread, server = run_local_server(ServerConfig(port=0, voices=("espeak",)))
    target = url(server, "espeak", language_code="de", output_format="pcm_16000")
    text = " ".join([TEXTS["de"]] * 6)

    async def vanish(after_frames: int) -> None:
        async with connect(target) as ws:
            await ws.send(json.dumps({"text": " "}))
            await ws.send(json.dumps({"text": text, "flush": True}))
            for _ in range(after_frames):
                await ws.recv()
            ws.transport.abort()  # gone without a close handshake

    async def drops() -> None:
        for n in range(24):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(vanish(n % 4), 10)

    try:
        run(drops())
        result = run(exchange(target, [{"text": " "}, {"text": TEXTS["de"]}, {"text": ""}], timeout=20))
    finally:
        thread.stop()
    assert result.close_code == 1000 and len(result.audio()) > 16000
