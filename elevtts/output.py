"""Files written while audio arrives: `<name>.<ext>.part` renamed on success, chunk files, sidecars.

A failed or interrupted run leaves the `.part` file (never a file that looks complete).
Every write error (permissions, disk full) becomes an `OutputError` naming the path.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import unicodedata
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from elevtts.errors import OutputError
from elevtts.protocol import Alignment

PART_SUFFIX = ".part"
NAME_MAX_BYTES = 255  # a file name's limit on Linux, macOS and Windows filesystems
# The longest name an output gets: `<name>.words.json.part`.
LONGEST_SUFFIX = ".words.json" + PART_SUFFIX
WAV_HEADER_BYTES = 44  # what `wave` writes before the samples


def slug(text: str, *, max_len: int = 40) -> str:
    """A readable, filesystem-safe name from text: 'Hello, World!' -> 'hello-world'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[A-Za-z0-9]+", ascii_text.lower())
    name = ""
    for word in words:
        candidate = f"{name}-{word}" if name else word
        if len(candidate) > max_len:
            break
        name = candidate
    return name or "speech"


def timestamped_slug(text: str) -> str:
    return f"{slug(text)}-{time.strftime('%Y%m%d-%H%M%S')}"


def safe_name(name: str, *, shorten: bool = True) -> str:
    """One path component: no separators, no '..', no control characters, not hidden.

    `shorten` cuts a name derived from input to 200 UTF-8 bytes (at a character boundary); a name
    the user chose is kept whole, and `OutputPaths.check_free` refuses it if it cannot fit.
    """
    name = unicodedata.normalize("NFC", name)
    name = re.sub(r"[\x00-\x1f\x7f/\\:]", "_", name).strip().lstrip(".")
    if shorten:
        name = name.encode("utf-8")[:200].decode("utf-8", "ignore")
    return name or "speech"


def _os_error(path: Path, exc: OSError) -> OutputError:
    reason = exc.strerror or str(exc)
    return OutputError(f"cannot write {path}: {reason}")


def ensure_directory(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise OutputError(f"cannot write to {path}: not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _os_error(path, exc) from None
    if not os.access(path, os.W_OK):
        raise OutputError(f"cannot write to {path}: permission denied")
    return path


@dataclass(frozen=True)
class OutputPaths:
    """Every file one spoken text may produce."""

    directory: Path
    name: str
    extension: str

    @property
    def audio(self) -> Path:
        return self.directory / f"{self.name}.{self.extension}"

    @property
    def part(self) -> Path:
        return self.audio.with_name(self.audio.name + PART_SUFFIX)

    @property
    def stats(self) -> Path:
        return self.directory / f"{self.name}.json"

    @property
    def chunks(self) -> Path:
        return self.directory / self.name

    def subtitles(self, kind: str) -> Path:
        return self.directory / f"{self.name}.{'words.json' if kind == 'json' else kind}"

    def check_free(self, *, force: bool, subtitle_kinds: tuple[str, ...] = ()) -> None:
        """Refuse a name too long for a file, and to overwrite silently."""
        longest = len(self.name.encode("utf-8")) + len(f".{self.extension}{LONGEST_SUFFIX}")
        if longest > NAME_MAX_BYTES:
            raise OutputError(
                f"the output name {self.name[:24]!r}... is too long: with its longest suffix it has "
                f"{longest} bytes, and a file name can have at most {NAME_MAX_BYTES} (use a shorter --name)"
            )
        if force:
            return
        try:
            taken = [p for p in (self.audio, *(self.subtitles(k) for k in subtitle_kinds)) if p.exists()]
        except OSError as exc:
            raise _os_error(self.audio, exc) from None
        if taken:
            raise OutputError(f"{taken[0]} already exists (use --force to overwrite, or --name)")


class AudioFile:
    """Audio written as it arrives into the `.part` file; `commit()` renames it into place.

    With `wav_sample_rate`, the file is a RIFF/WAVE container around 16-bit mono PCM (stdlib
    `wave`): its header says "no data yet" until `commit()` (or `abandon()`) writes the sizes.
    """

    def __init__(self, paths: OutputPaths, *, wav_sample_rate: int | None = None) -> None:
        self.paths = paths
        self.bytes_written = 0
        self.wav_sample_rate = wav_sample_rate
        self._file: BinaryIO | None = None
        self._wave: wave.Wave_write | None = None

    @property
    def is_open(self) -> bool:
        return self._file is not None

    def open(self) -> None:
        ensure_directory(self.paths.directory)
        try:
            self._file = open(self.paths.part, "wb")  # noqa: SIM115  (closed in commit/abandon)
            if self.wav_sample_rate is not None:
                self._wave = wave.open(self._file, "wb")  # noqa: SIM115  (closed in _close_wave)
                self._wave.setnchannels(1)
                self._wave.setsampwidth(2)
                self._wave.setframerate(self.wav_sample_rate)
                self._wave.writeframesraw(b"")  # the header goes out now, before any audio
                self._file.flush()
        except OSError as exc:
            raise _os_error(self.paths.part, exc) from None

    def _close_wave(self) -> None:
        """Complete the WAVE header with the sizes written (the file itself stays open)."""
        if self._wave is not None:
            self._wave.close()  # patches the RIFF and data sizes; does not close a file it was given
            self._wave = None

    def write(self, data: bytes) -> None:
        if self._file is None:
            self.open()
        assert self._file is not None
        try:
            if self._wave is not None:
                self._wave.writeframesraw(data)
            else:
                self._file.write(data)
            self._file.flush()
        except OSError as exc:
            raise _os_error(self.paths.part, exc) from None
        self.bytes_written += len(data)

    def commit(self) -> Path:
        if self._file is None:
            self.open()
        assert self._file is not None
        try:
            self._close_wave()
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self.paths.part, self.paths.audio)
        except OSError as exc:
            raise _os_error(self.paths.audio, exc) from None
        return self.paths.audio

    def abandon(self) -> Path | None:
        """Close and keep the `.part` if any audio reached the disk (a full disk may stop it midway)."""
        if self._file is None:
            return None
        with contextlib.suppress(OSError):  # the same failure again, flushing the buffer
            self._close_wave()  # a kept WAVE `.part` says how much audio it holds
        with contextlib.suppress(OSError):
            self._file.close()
        header = WAV_HEADER_BYTES if self.wav_sample_rate is not None else 0
        try:
            if self.paths.part.stat().st_size > header:
                return self.paths.part
            self.paths.part.unlink()
        except OSError:
            pass
        return None


class ChunkWriter:
    """`--keep-chunks`: each received audio chunk as its own numbered file, with its alignment."""

    def __init__(self, paths: OutputPaths) -> None:
        self.directory = paths.chunks
        self.extension = "pcm" if paths.extension.lower() == "wav" else paths.extension  # the chunks are raw
        self.count = 0

    def write(self, audio: bytes, alignment: Alignment | None, normalized: Alignment | None) -> None:
        if self.count == 0:
            ensure_directory(self.directory)
        self.count += 1
        stem = self.directory / f"{self.count:04d}"
        meta = {
            "index": self.count,
            "bytes": len(audio),
            "alignment": None if alignment is None else alignment.to_json(),
            "normalizedAlignment": None if normalized is None else normalized.to_json(),
        }
        write_bytes(stem.with_suffix(f".{self.extension}"), audio)
        write_text(stem.with_suffix(".json"), json.dumps(meta, ensure_ascii=False) + "\n")


def write_bytes(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise _os_error(path, exc) from None


def write_text(path: Path, text: str) -> None:
    """Write a whole small file atomically (temp file, then rename)."""
    temp = path.with_name(path.name + PART_SUFFIX)
    try:
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, path)
    except OSError as exc:
        with_part = temp if temp.exists() else path
        raise _os_error(with_part, exc) from None


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
