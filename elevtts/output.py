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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from elevtts.errors import OutputError
from elevtts.protocol import Alignment

PART_SUFFIX = ".part"


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


def safe_name(name: str) -> str:
    """One path component: no separators, no '..', no control characters, not hidden."""
    name = unicodedata.normalize("NFC", name)
    name = re.sub(r"[\x00-\x1f\x7f/\\:]", "_", name).strip().lstrip(".")
    return name[:200] or "speech"


def _os_error(path: Path, exc: OSError) -> OutputError:
    reason = exc.strerror or str(exc)
    return OutputError(f"cannot write {path}: {reason}")


def ensure_directory(path: Path) -> Path:
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
        """Refuse to overwrite silently."""
        if force:
            return
        taken = [p for p in (self.audio, *(self.subtitles(k) for k in subtitle_kinds)) if p.exists()]
        if taken:
            raise OutputError(f"{taken[0]} already exists (use --force to overwrite, or --name)")


class AudioFile:
    """Audio written as it arrives into the `.part` file; `commit()` renames it into place."""

    def __init__(self, paths: OutputPaths) -> None:
        self.paths = paths
        self.bytes_written = 0
        self._file: BinaryIO | None = None

    @property
    def is_open(self) -> bool:
        return self._file is not None

    def open(self) -> None:
        ensure_directory(self.paths.directory)
        try:
            self._file = open(self.paths.part, "wb")  # noqa: SIM115  (closed in commit/abandon)
        except OSError as exc:
            raise _os_error(self.paths.part, exc) from None

    def write(self, data: bytes) -> None:
        if self._file is None:
            self.open()
        assert self._file is not None
        try:
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
            self._file.close()
        try:
            if self.paths.part.stat().st_size > 0:
                return self.paths.part
            self.paths.part.unlink()
        except OSError:
            pass
        return None


class ChunkWriter:
    """`--keep-chunks`: each received audio chunk as its own numbered file, with its alignment."""

    def __init__(self, paths: OutputPaths) -> None:
        self.directory = paths.chunks
        self.extension = paths.extension
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
