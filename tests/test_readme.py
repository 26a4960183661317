"""Every shell example of the README runs, and its output is checked (issue 10, last section).

The examples are read from README.md itself (each line of each fenced `sh` block), so an example
that stops working fails here. Each runs in bash in a fresh directory holding the files the
examples name (chapter1.txt, chapter2.md, notes.md, chapters/, book/, tech.pls, cert.pem), with
the `elevtts` of this checkout first on PATH and no key in the environment. Then its result is
checked: audio files decode to speech, named files exist, Markdown is gone where it should be,
JSON parses, a server answers.

What is changed to run here, explicitly (`REWRITES`): `ws://127.0.0.1:8765` and `ws://host:8765`
become a running local server; `llm "..." |` (a network model) becomes `printf` of a short poem;
`| aplay ...` (a sound card) is dropped and the audio it would get is checked instead; `.venv/bin/`
is this interpreter's; `elevtts serve` gets `--port 0` (8765 may be taken on a shared machine) and
`--voice espeak` unless it names a voice, is spoken to once it listens, then stopped; `[--json]`
runs without and with `--json`. The fast espeak voice is
used (`ELEVTTS_VOICE=espeak`), except for the first command, which runs as written with the
neural voice. What cannot run here is listed in `NOT_RUN`, with the reason, and reported as a skip.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import wave
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import decode_mp3, decode_opus, rms
from test_books_epub import epub3
from test_books_pdf import build_book as build_pdf

README = Path(__file__).resolve().parents[1] / "README.md"
BIN = Path(sys.executable).parent

NOT_RUN: dict[str, str] = {
    "ELEVENLABS_API_KEY=...": "needs the live service's key",
    "pip install -e '.[test]'": "installs the test extra and runs this very suite",
    "pip install -e '.[dev]'": "installs the dev extra (the environment running this test has it)",
    ".venv/bin/python -m pytest": "this suite itself",
    "ruff check": "CI runs the linter as its own step",
    "benchmarks/": "benchmarks take minutes on an idle machine; run by hand, their tables are in the README",
    "~/piper-voices": "needs Piper models you downloaded (test_voices speaks joe copied under another name)",
}
REWRITES: tuple[tuple[str, str], ...] = (
    (r'llm "[^"]*" \|', "printf 'Roses are red. Violets are blue. Sugar is sweet.\\n' |"),
    (r"\| aplay [^#]*", ""),
)
POEM_WORDS = 9

MARKDOWN = "# A Heading\n\nSome **bold** words and a [link](https://example.com/x_(y)).\n\n```\ncode\n```\n"
PLS = """<?xml version="1.0" encoding="UTF-8"?>
<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon"
         alphabet="ipa" xml:lang="en-US">
  <lexeme><grapheme>SQL</grapheme><alias>sequel</alias></lexeme>
</lexicon>
"""


@dataclass(frozen=True)
class Example:
    line: int
    command: str

    def __str__(self) -> str:
        return f"README.md:{self.line}: {self.command}"


def readme_examples() -> list[Example]:
    """Each command of each `sh` block; a line ending in a backslash continues on the next."""
    examples, block, pending = [], False, None
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("```"):
            block = line.strip() == "```sh" if not block else False
            continue
        if not block or not line.strip() or (pending is None and line.lstrip().startswith("#")):
            continue
        text = line.strip()
        if pending is not None:
            text = f"{pending.command} {text}"
        start = pending.line if pending is not None else number
        if text.endswith("\\"):
            pending = Example(start, text[:-1].rstrip())
            continue
        pending = None
        examples.append(Example(start, text))
    return examples


EXAMPLES = readme_examples()


def test_the_readme_has_examples_to_run() -> None:
    assert len(EXAMPLES) >= 20
    assert any("elevtts speak" in e.command for e in EXAMPLES)
    assert any("elevtts batch" in e.command for e in EXAMPLES)


@pytest.fixture
def workdir(tmp_path: Path, local_server: str) -> Path:
    (tmp_path / "chapter1.txt").write_text("Chapter one begins with plain text and its *stars* stay.\n")
    (tmp_path / "chapter2.md").write_text(MARKDOWN)
    (tmp_path / "notes.md").write_text("## Notes\n\n- a **first** note\n")
    for directory, files in {
        "chapters": {"one.txt": "The first chapter.", "two.md": "# Two\n\nThe *second* chapter."},
        "book": {"part.md": "# Part\n\nA book in **Markdown**.", "skip.txt": "Not Markdown."},
    }.items():
        (tmp_path / directory).mkdir()
        for name, text in files.items():
            (tmp_path / directory / name).write_text(text)
    (tmp_path / "tech.pls").write_text(PLS)
    (tmp_path / "novel.epub").write_bytes(epub3())  # three chapters: One, Two, Three
    (tmp_path / "report.pdf").write_bytes(build_pdf())
    return tmp_path


def environment(*, neural: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ELEVENLABS", "ELEVTTS"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["KEY"] = "a-server-key-for-the-example"
    if not neural:
        env["ELEVTTS_VOICE"] = "espeak"
    return env


def prepared(example: Example, server_url: str) -> str:
    command = example.command
    for pattern, replacement in REWRITES:
        command = re.sub(pattern, replacement, command)
    command = command.replace("ws://127.0.0.1:8765", server_url).replace("ws://host:8765", server_url)
    command = command.replace("http://127.0.0.1:8765", server_url.replace("ws://", "http://", 1))
    command = command.replace(".venv/bin/", f"{BIN}/")
    if "pip install" in command:  # the first command: only its `elevtts speak`, from this checkout
        command = " && ".join(part for part in command.split(" && ") if "elevtts speak" in part)
    return command


def run(command: str, cwd: Path, *, neural: bool = False) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=environment(neural=neural), capture_output=True, timeout=300
    )


def audio_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in (".mp3", ".wav", ".opus") and p.is_file())


def check_audio(path: Path) -> None:
    if path.suffix == ".wav":
        with wave.open(str(path), "rb") as audio:
            assert audio.getnframes() > audio.getframerate() // 4, path
        return
    decode = decode_opus if path.suffix == ".opus" else decode_mp3
    samples, rate = decode(path.read_bytes())
    assert len(samples) / rate > 0.3 and rms(samples) > 300, path  # speech, not silence


@pytest.mark.parametrize(
    "example",
    [
        pytest.param(e, id=f"L{e.line}", marks=[pytest.mark.neural] if "pip install" in e.command else [])
        for e in EXAMPLES
    ],
)
def test_readme_example(example: Example, workdir: Path, local_server: str) -> None:
    for needle, reason in NOT_RUN.items():
        if needle in example.command:
            pytest.skip(f"{example}: not run here: {reason}")
    command = prepared(example, local_server)
    if re.match(r"(\w+=\S+ )*elevtts serve", command):
        check_serve(command, workdir)
        return
    if optional := re.findall(
        r" \[([^\]]+)\]", command
    ):  # `[--json] [--language de]`: without, then with all
        bare = re.sub(r" \[[^\]]+\]", "", command)
        for variant in (bare, bare.replace("elevtts voices", f"elevtts voices {' '.join(optional)}")):
            check_voices(run(variant, workdir), variant)
        return
    done = run(command, workdir, neural="pip install" in example.command)
    assert done.returncode == 0, f"{example}\n{done.stderr.decode()}"
    assert b"Traceback" not in done.stderr
    if "elevtts speak" in command:
        check_speak(command, done, workdir)
    elif "elevtts batch" in command:
        check_batch(command, done, workdir)
    elif "elevtts voices" in command:
        check_voices(done, command)
    elif "elevtts book" in command:
        check_book(command, done, workdir)
    elif "elevtts bench" in command:
        check_bench(command, done)
    elif command.startswith("curl"):
        check_curl(command, done, workdir)
    else:
        raise AssertionError(f"{example}: no check for this example: add one")


def check_speak(command: str, done: subprocess.CompletedProcess[bytes], workdir: Path) -> None:
    if " -o - " in command:
        rate = int(re.search(r"pcm_(\d+)", command).group(1)) if "pcm_" in command else 0  # type: ignore[union-attr]
        assert rate and len(done.stdout) > rate // 2, "raw audio on stdout, as aplay would get it"
        return
    files = audio_files(workdir)
    assert files, "no audio file written"
    for path in files:
        check_audio(path)
    if "-o hello.wav" in command:
        assert [p.name for p in files] == ["hello.wav"]
    if "2> wire.log" in command:
        log = (workdir / "wire.log").read_text()
        assert "TEXT" in log and "websockets" in log
    if "printf 'Roses" in command and "-f" not in command:
        stats = next(workdir.glob("output/*.json"))
        assert json.loads(stats.read_text())["settings"]["flush"] == "sentence"  # streamed per sentence
    if ".md" in command:
        # Run it again with subtitles to read what was spoken: the Markdown must be gone.
        again = run(command.replace("elevtts speak", "elevtts speak --subtitles json --name spoken"), workdir)
        assert again.returncode == 0, again.stderr.decode()
        words = " ".join(
            w["text"] for w in json.loads((workdir / "output/spoken.words.json").read_text())["words"]
        )
        for markup in ("#", "**", "https", "example.com", "code", "- a"):
            assert markup not in words, (markup, words)
        assert "Heading" in words or "Notes" in words
        if "chapter1.txt" in command:
            assert "*stars*" in words  # a .txt file is spoken as written


def check_batch(command: str, done: subprocess.CompletedProcess[bytes], workdir: Path) -> None:
    out = workdir / (re.search(r"-d (\S+)", command).group(1) if " -d " in command else "output")  # type: ignore[union-attr]
    manifest = out / "elevtts-manifest.json"
    assert manifest.exists(), manifest
    entries = list(json.loads(manifest.read_text())["files"].values())
    assert entries and all(e["status"] == "done" for e in entries), entries
    files = audio_files(out)
    assert len(files) == len(entries)
    for path in files:
        check_audio(path)
    if "--glob '*.md'" in command:
        assert sorted(p.name for p in files) == ["part.mp3"]
    if "--json" in command:
        assert json.loads(done.stdout)["ok"] is True
    assert not list(out.rglob("*.part")) and not list(out.glob("*.lock"))


def check_book(command: str, done: subprocess.CompletedProcess[bytes], workdir: Path) -> None:
    from mutagen.id3 import ID3

    if "--list-chapters" in command:
        assert done.stdout.decode().splitlines()[0].startswith("1  One  "), done.stdout
        assert not (workdir / "output").exists()
        return
    stem = re.search(r"elevtts book (\S+)\.\w+", command).group(1)  # type: ignore[union-attr]
    out = workdir / (re.search(r"-d (\S+)", command).group(1) if " -d " in command else f"output/{stem}")  # type: ignore[union-attr]
    chapters = sorted(out.glob("[0-9]*.mp3"))
    assert chapters and len(ID3(out / f"{stem}.mp3").getall("CHAP")) == len(chapters)
    for path in [*chapters, out / f"{stem}.mp3"]:
        check_audio(path)
    if "--chapters 3" in command:
        assert [p.name for p in chapters] == ["03-three.mp3"]
    if "--m4b" in command:
        assert (out / f"{stem}.m4b").stat().st_size > 0
    if "--subtitles srt" in command:
        assert len(list(out.glob("*.srt"))) == len(chapters)
    if "--json" in command:
        assert json.loads(done.stdout)["ok"] is True


def check_voices(done: subprocess.CompletedProcess[bytes], command: str) -> None:
    assert done.returncode == 0, done.stderr.decode()
    if "--json" in command:
        listed = {v["voice_id"] for v in json.loads(done.stdout)["voices"]}
    else:
        listed = {
            line.split()[0].lstrip("*") for line in done.stdout.decode().splitlines()[1:] if line.strip()
        }
    assert "espeak" in listed, listed
    if "--language de" in command:
        assert "espeak-de" in listed and "joe" not in listed, listed


def check_bench(command: str, done: subprocess.CompletedProcess[bytes]) -> None:
    stderr = done.stderr.decode()
    assert "ttfb_ms" in stderr and "histogram" in stderr, stderr
    if "--json" in command:
        report = json.loads(done.stdout)
        trials = [t for result in report["results"] for t in result["trials"]]
        assert trials and all(t["ttfb_ms"] > 0 for t in trials)
    settings = command.count("--schedule") or 1
    if "--compare-auto-mode" in command:
        settings *= 2
    assert stderr.count("auto_mode") >= settings


def check_curl(command: str, done: subprocess.CompletedProcess[bytes], workdir: Path) -> None:
    if "/health" in command:
        assert json.loads(done.stdout)["status"] == "ok"
        return
    written = workdir / re.search(r"-o (\S+)", command).group(1)  # type: ignore[union-attr]
    check_audio(written)
    if "break" in command:  # "Hello <break time=1s/> world.": the pause is in the audio
        with wave.open(str(written), "rb") as audio:
            assert audio.getnframes() / audio.getframerate() > 1.0


def check_serve(command: str, workdir: Path) -> None:
    """Start it (on a free port), wait until it listens, check a client gets audio, stop it."""
    command = command.split("#", 1)[0].strip()
    command = re.sub(r"ELEVTTS_PORT=\d+", "ELEVTTS_PORT=0", command)
    if "--port" not in command and "ELEVTTS_PORT" not in command:
        command = command.replace("elevtts serve", "elevtts serve --port 0", 1)
    if "--voice" not in command and "joe" not in command:  # loading the neural voice takes seconds
        command = command.replace("elevtts serve", "elevtts serve --voice espeak", 1)
    if "--certfile" in command:
        from test_sdk import self_signed_cert

        self_signed_cert(workdir)
    process = subprocess.Popen(
        [
            "bash",
            "-c",
            re.sub(r"((?:\w+=\S+ )*)elevtts serve", r"exec env \1elevtts serve", command, count=1),
        ],
        cwd=workdir,
        env=environment(neural=False),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().decode().strip()
        assert url.startswith(("ws://", "wss://")), url
        voice = "joe" if re.search(r"SERVE_VOICE=joe|--voice joe", command) else "espeak"
        client = f"elevtts speak --url {url} -v {voice} -o served.mp3 'Served by the example.'"
        if "--api-key" in command:
            client += ' --api-key "$KEY"'
        if url.startswith("wss://"):
            client = f"SSL_CERT_FILE=cert.pem {client}"
        spoken = run(client, workdir)
        assert spoken.returncode == 0, spoken.stderr.decode()
        check_audio(workdir / "served.mp3")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert b"Traceback" not in stderr
    assert b"listening on" in stderr and b"stopped" in stderr
