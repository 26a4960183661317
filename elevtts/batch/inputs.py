"""Which files a batch speaks, the names of their outputs, and the hashes that say what changed."""

from __future__ import annotations

import codecs
import fnmatch
import hashlib
import json
import os
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from elevtts.batch.manifest import LOCK_NAME, MANIFEST_NAME, Manifest
from elevtts.client import StreamOptions
from elevtts.errors import (
    InputError,
    OutputError,
    UsageError,
)
from elevtts.output import PART_SUFFIX, OutputPaths
from elevtts.speak import READ_SIZE, SendPolicy, options_for_stats

DEFAULT_PATTERNS = ("*.txt", "*.md")
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
MAX_NAME_BYTES = 120  # leaves room for ".<tag>-NN.words.json.part" under the 255-byte limit
# Settings that do not change the audio: left out of the settings hash.
NOT_AUDIO_SETTINGS = frozenset({"target", "inactivity_timeout", "authorization", "enable_logging", "multi"})


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class BatchInput:
    """One input file and where its outputs go (before collisions are resolved)."""

    path: Path  # as given or found; opened for reading
    key: str  # the manifest key: the absolute, normalized path
    rel_dir: tuple[str, ...]  # sanitized output subdirectory, relative to the output directory
    stem: str  # sanitized name wanted for the outputs
    tag: str  # sanitized suffix that tells same-stem inputs apart ("txt")

    @property
    def markdown(self) -> bool:
        return self.path.suffix.lower() in MARKDOWN_SUFFIXES

    @property
    def display(self) -> str:
        return printable(str(self.path))


def safe_component(name: str) -> str:
    """One sanitized path component: NFC, no separators or control/format characters, no leading dot."""
    name = unicodedata.normalize("NFC", name)
    name = "".join(
        "_" if ch in "/\\:" or unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") else ch
        for ch in name
    )
    name = name.strip().lstrip(".").strip()
    encoded = name.encode("utf-8")
    if len(encoded) > MAX_NAME_BYTES:
        name = encoded[:MAX_NAME_BYTES].decode("utf-8", "ignore").rstrip()
    return name or "_"


def printable(text: str) -> str:
    """A path for messages and JSON: undecodable bytes shown as \\xNN (never a lone surrogate)."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def _input_for(path: Path, rel_parts: Sequence[str]) -> BatchInput:
    absolute = Path(os.path.normpath(path.absolute()))
    stem, dot, suffix = path.name.rpartition(".")
    if not stem or not dot:  # "README" or ".hidden": the whole name is the stem
        stem, suffix = path.name, ""
    return BatchInput(
        path=path,
        key=printable(str(absolute)),
        rel_dir=tuple(safe_component(p) for p in rel_parts),
        stem=safe_component(stem),
        tag=safe_component(suffix) if suffix else "",
    )


def _matches(rel: str, name: str, patterns: Sequence[str]) -> bool:
    name, rel = name.lower(), rel.lower()
    return any(fnmatch.fnmatchcase(rel if "/" in p else name, p.lower()) for p in patterns)


def _walk(root: Path, patterns: Sequence[str], exclude: Path | None) -> Iterator[BatchInput]:
    """Files under `root` matching a pattern, sorted; hidden entries, symlinked directories and
    the output directory are not entered."""
    for directory, dirnames, filenames in os.walk(root, onerror=_raise_walk_error):
        here = Path(directory)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".") and not (exclude is not None and _same_dir(here / d, exclude))
        )
        rel_parts = here.relative_to(root).parts
        for filename in sorted(filenames):
            if filename.startswith("."):
                continue
            rel = "/".join((*rel_parts, filename))
            if _matches(rel, filename, patterns) and (here / filename).is_file():
                yield _input_for(here / filename, rel_parts)


def _raise_walk_error(exc: OSError) -> None:
    raise InputError(f"cannot read {printable(str(exc.filename))}: {exc.strerror or exc}")


def _same_dir(path: Path, other: Path) -> bool:
    try:
        return path.resolve() == other.resolve()
    except OSError:
        return False


def read_path_list(stream: IO[str]) -> list[str]:
    """Paths from a stream: one per line, or NUL-separated (`find -print0`); blank lines ignored."""
    data = stream.read()
    parts = data.split("\0") if "\0" in data else data.splitlines()
    return [p.rstrip("\r\n") for p in parts if p.strip()]


def discover_inputs(
    paths: Iterable[str | Path],
    *,
    patterns: Sequence[str] = DEFAULT_PATTERNS,
    stdin: IO[str] | None = None,
    exclude: Path | None = None,
) -> list[BatchInput]:
    """Every input named by `paths`: files as given, directories searched recursively for
    `patterns`, `-` for a list of paths read from `stdin`. Each file once, in the order given.

    Raises `InputError` for a path that does not exist and when nothing is found.
    """
    expanded: list[str | Path] = []
    for path in paths:
        if str(path) == "-":
            if stdin is None:
                raise UsageError("'-' reads a list of paths from standard input, but there is none")
            expanded.extend(read_path_list(stdin))
        else:
            expanded.append(path)
    found: list[BatchInput] = []
    seen: set[str] = set()
    for item in expanded:
        path = Path(item)
        if path.is_dir():
            candidates: Iterable[BatchInput] = _walk(path, patterns, exclude)
        elif path.is_file():
            candidates = [_input_for(path, ())]
        elif path.exists():
            raise InputError(f"cannot read {printable(str(path))}: not a regular file or directory")
        else:
            raise InputError(f"cannot read {printable(str(path))}: no such file or directory")
        for candidate in candidates:
            try:
                identity = str(candidate.path.resolve())
            except OSError:
                identity = candidate.key
            if identity not in seen:
                seen.add(identity)
                found.append(candidate)
    if not found:
        raise InputError(f"no input files found (looked for {', '.join(patterns)})")
    return found


# ---------------------------------------------------------------------------------------------
# Output names


@dataclass(frozen=True)
class OutputLayout:
    """Which files one output name produces, to find collisions before anything is written."""

    extension: str
    subtitles: tuple[str, ...] = ()
    keep_chunks: bool = False

    def paths(self, root: Path, name: str) -> OutputPaths:
        *dirs, base = name.split("/")
        return OutputPaths(root.joinpath(*dirs), base, self.extension)

    def filenames(self, base: str) -> list[str]:
        """Every entry `base` creates in its directory (a `.part` for each file written)."""
        files = [f"{base}.{self.extension}", f"{base}.json"]
        files += [f"{base}.{'words.json' if kind == 'json' else kind}" for kind in self.subtitles]
        names = files + [f + PART_SUFFIX for f in files]
        return [*names, base] if self.keep_chunks else names


def assign_names(
    inputs: Sequence[BatchInput], layout: OutputLayout, manifest: Manifest | None = None
) -> dict[str, str]:
    """A unique output name ("dir/sub/base", no extension) for each input key.

    A name already recorded in the manifest is kept if it is still free; otherwise a stem used by
    one input only is used as is, a shared stem gets the input's suffix, then a number.
    """
    taken: set[tuple[str, str]] = {("", MANIFEST_NAME.casefold()), ("", LOCK_NAME.casefold())}
    taken |= {("", (MANIFEST_NAME + PART_SUFFIX).casefold())}
    for item in inputs:  # mirrored subdirectories are taken names in their parents
        for depth in range(len(item.rel_dir)):
            taken.add(("/".join(item.rel_dir[:depth]).casefold(), item.rel_dir[depth].casefold()))

    def claim(rel_dir: tuple[str, ...], base: str) -> bool:
        folder = "/".join(rel_dir).casefold()
        wanted = {(folder, f.casefold()) for f in layout.filenames(base)}
        if wanted & taken:
            return False
        taken.update(wanted)
        return True

    names: dict[str, str] = {}
    for item in inputs:  # sticky names first
        entry = manifest.entries.get(item.key) if manifest is not None else None
        if entry is None or not entry.name:
            continue
        *dirs, base = entry.name.split("/")
        if tuple(dirs) == item.rel_dir and base == safe_component(base) and claim(item.rel_dir, base):
            names[item.key] = entry.name
    stems: dict[tuple[str, str], int] = {}
    for item in inputs:
        if item.key not in names:
            group = ("/".join(item.rel_dir).casefold(), item.stem.casefold())
            stems[group] = stems.get(group, 0) + 1
    for item in inputs:
        if item.key in names:
            continue
        shared = stems[("/".join(item.rel_dir).casefold(), item.stem.casefold())] > 1
        tagged = f"{item.stem}.{item.tag}" if item.tag else item.stem
        candidates = ([] if shared else [item.stem]) + [tagged] + [f"{tagged}-{n}" for n in range(2, 10_000)]
        base = next(c for c in candidates if claim(item.rel_dir, c))
        names[item.key] = "/".join((*item.rel_dir, base))
    return names


def check_inside(root: Path, paths: OutputPaths, layout: OutputLayout) -> None:
    """Refuse to write outside `root`: through a symlinked directory or onto a symlink."""
    real_root = root.resolve()
    real_dir = paths.directory.resolve()
    if not real_dir.is_relative_to(real_root):
        raise OutputError(f"{printable(str(paths.directory))} leads outside {printable(str(root))}")
    for filename in layout.filenames(paths.name):
        target = paths.directory / filename
        if target.is_symlink():
            raise OutputError(f"{printable(str(target))} is a symbolic link; not writing through it")


# ---------------------------------------------------------------------------------------------
# Settings and content hashes


def audio_settings(options: StreamOptions, policy: SendPolicy) -> dict[str, Any]:
    """The settings that shape the audio of a file (never the key, server or timeouts)."""
    settings = options_for_stats(options, policy, target="")
    settings["max_chunk_chars"] = policy.max_chunk_chars
    return {k: v for k, v in sorted(settings.items()) if k not in NOT_AUDIO_SETTINGS}


def settings_hash(settings: dict[str, Any]) -> str:
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Scan:
    """What reading a file once told us: its hash, length, and whether it can be spoken."""

    sha256: str | None
    chars: int
    error: str | None = None
    speakable: bool = True  # holds a letter or a digit: an input without any is skipped, not spoken


def scan_file(path: Path) -> Scan:
    """Hash and count a file in pieces (memory stays flat); report unreadable or non-UTF-8 text."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
    chars, offset, error, speakable = 0, 0, None, False
    try:
        with open(path, "rb") as handle:
            while data := handle.read(READ_SIZE):
                digest.update(data)
                if error is None:
                    try:
                        text = decoder.decode(data)
                    except UnicodeDecodeError as exc:
                        error = _not_utf8(exc, offset)
                    else:
                        chars += len(text)
                        speakable = speakable or any(char.isalnum() for char in text)
                offset += len(data)
        if error is None:
            try:
                chars += len(decoder.decode(b"", final=True))
            except UnicodeDecodeError as exc:
                error = _not_utf8(exc, offset)
    except OSError as exc:
        return Scan(None, 0, f"cannot read the file: {exc.strerror or exc}")
    return Scan(digest.hexdigest(), chars, error, speakable)


def _not_utf8(exc: UnicodeDecodeError, offset: int) -> str:
    return f"not UTF-8 text ({exc.reason} at byte {offset + exc.start})"
