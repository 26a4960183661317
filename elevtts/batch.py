"""Speak many files: find them, name their outputs, resume from a manifest, retry, run N at once.

    inputs = discover_inputs(["book/", "notes.md"])
    async with open_endpoint(target, voices=(options.voice_id,)) as endpoint:
        report = await run_batch(inputs, endpoint=endpoint, options=options, text_policy=policy,
                                 plan=BatchPlan(output_dir=Path("output")))

Every file is spoken by `elevtts.speak.speak` on its own connection (`.part`, then rename, and a
stats sidecar `<name>.json`); at most `plan.jobs` files are in flight and each is read as a stream,
so memory does not grow with the number or size of the files.

Inputs: files as given; directories searched recursively for the patterns (default `*.txt`,
`*.md`; hidden entries, symlinked directories and the output directory are not entered); `-` for
a list of paths on stdin (one per line, or NUL-separated). `.md`/`.markdown` files get their own
send policy (Markdown stripped by default).

Output names mirror the input tree (relative to each directory given) under the output directory.
Every path component is sanitized (no separators, no leading dots, no control or format
characters, NFC, at most 120 UTF-8 bytes); inputs whose outputs would collide (`a.txt` and `a.md`,
or names equal after sanitizing or case folding) are told apart by their suffix (`a.txt.mp3`,
`a.md.mp3`), then by a number. A name recorded in the manifest is kept on later runs. Nothing is
written through a symbolic link or into a directory that resolves outside the output directory.

The manifest, `<output-dir>/elevtts-manifest.json` (one JSON line per input, keyed by its absolute
path), is rewritten atomically (temporary file, fsync, rename) after every status change; for
manifests over 2000 entries, at most once a second. `elevtts-manifest.lock` keeps a second batch
out of the same directory. Per input it records the SHA-256 of its bytes, the SHA-256 of the
settings that shape the audio (`audio_settings`: never the key, the server address or timeouts),
the status (`running`, `done`, `failed`, `interrupted`), the output files, the attempts of the
last run, the last error and the stats. On a re-run, an input is:

    skipped       done, same text and settings, its audio present with the recorded size
                  (and any requested subtitles present)
    redone        new, changed text or settings, unfinished (running / interrupted), or its
                  audio missing or a different size
    still failed  failed before with the same text and settings: reported as failed (exit 10)
                  without a new attempt, unless --retry-failed
    everything is redone with --force (which also overwrites files the manifest does not know;
    without it, an audio file the manifest does not know fails its input rather than being
    overwritten). A file in flight at Ctrl-C keeps its `.part` and is recorded `interrupted`.

Retries (`plan.retries`, default 3, so up to 4 attempts; each restarts the file): a dropped
connection, a connection that cannot be made (except an HTTP 4xx refusal other than 408, 425 and
429), a close code 1001/1011/1012/1013/1014, the errors `too_many_concurrent_requests`,
`system_busy` and `rate_limit_exceeded`, and a stream that ended with no audio for its text.
The wait is jittered exponential backoff: uniform in [d/2, d] with d = min(10, 0.5 * 2**(n-1)) s
before retry n, or longer when the error's text carries a hint (`retry_after: 5`,
`"retry_after": 5`, `Retry-After: 5`, `retry after 5s`, `try again in 5 seconds`, `retry in 500 ms`;
honoured up to 60 s). Authentication errors stop the whole batch; bad input, unreadable files and
other server errors fail the file at once, and the others go on.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import fnmatch
import hashlib
import json
import os
import random
import re
import sys
import time
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from elevtts.audio import extension_for
from elevtts.client import Endpoint, StreamOptions
from elevtts.display import SilentDisplay
from elevtts.errors import (
    AuthenticationError,
    ConnectError,
    ConnectionDropped,
    ElevttsError,
    ExitCode,
    InactivityTimeout,
    InputError,
    OutputError,
    ServerError,
    UsageError,
)
from elevtts.output import PART_SUFFIX, OutputPaths, ensure_directory
from elevtts.speak import READ_SIZE, OutputPlan, SendPolicy, file_source, options_for_stats, speak

DEFAULT_PATTERNS = ("*.txt", "*.md")
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
MANIFEST_NAME = "elevtts-manifest.json"
LOCK_NAME = "elevtts-manifest.lock"
MANIFEST_FORMAT = "elevtts-batch-manifest"
MANIFEST_VERSION = 1
# Files in flight by target: the embedded server shares one machine (2 cores here) and the live
# service's free plan allows 2 concurrent requests.
DEFAULT_JOBS = {"embedded": 2, "url": 2, "elevenlabs": 2}
MAX_NAME_BYTES = 120  # leaves room for ".<tag>-NN.words.json.part" under the 255-byte limit

DONE, FAILED, RUNNING, INTERRUPTED = "done", "failed", "running", "interrupted"
SKIPPED, NOT_STARTED = "skipped", "not_started"  # report-only statuses
FAILED_BEFORE = "failed before"  # the reason of a failure kept from an earlier run

RETRYABLE_CLOSE_CODES = frozenset({1001, 1011, 1012, 1013, 1014})
RETRYABLE_ERRORS = frozenset({"too_many_concurrent_requests", "system_busy", "rate_limit_exceeded"})
RETRYABLE_HTTP = frozenset({408, 425, 429})
# Settings that do not change the audio: left out of the settings hash.
NOT_AUDIO_SETTINGS = frozenset({"target", "inactivity_timeout", "authorization", "enable_logging", "multi"})


class BatchIncomplete(ElevttsError):
    """Some files of a batch failed; the others are done."""

    exit_code = ExitCode.BATCH_INCOMPLETE


class IncompleteAudio(ElevttsError):
    """The stream ended normally but brought no audio for text that has some (retried)."""

    exit_code = ExitCode.DROPPED


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
        return _printable(str(self.path))


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


def _printable(text: str) -> str:
    """A path for messages and JSON: undecodable bytes shown as \\xNN (never a lone surrogate)."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def _input_for(path: Path, rel_parts: Sequence[str]) -> BatchInput:
    absolute = Path(os.path.normpath(path.absolute()))
    stem, dot, suffix = path.name.rpartition(".")
    if not stem or not dot:  # "README" or ".hidden": the whole name is the stem
        stem, suffix = path.name, ""
    return BatchInput(
        path=path,
        key=_printable(str(absolute)),
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
    raise InputError(f"cannot read {_printable(str(exc.filename))}: {exc.strerror or exc}")


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
            raise InputError(f"cannot read {_printable(str(path))}: not a regular file or directory")
        else:
            raise InputError(f"cannot read {_printable(str(path))}: no such file or directory")
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
        raise OutputError(f"{_printable(str(paths.directory))} leads outside {_printable(str(root))}")
    for filename in layout.filenames(paths.name):
        target = paths.directory / filename
        if target.is_symlink():
            raise OutputError(f"{_printable(str(target))} is a symbolic link; not writing through it")


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


def scan_file(path: Path) -> Scan:
    """Hash and count a file in pieces (memory stays flat); report unreadable or non-UTF-8 text."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
    chars, offset, error = 0, 0, None
    try:
        with open(path, "rb") as handle:
            while data := handle.read(READ_SIZE):
                digest.update(data)
                if error is None:
                    try:
                        chars += len(decoder.decode(data))
                    except UnicodeDecodeError as exc:
                        error = _not_utf8(exc, offset)
                offset += len(data)
        if error is None:
            try:
                chars += len(decoder.decode(b"", final=True))
            except UnicodeDecodeError as exc:
                error = _not_utf8(exc, offset)
    except OSError as exc:
        return Scan(None, 0, f"cannot read the file: {exc.strerror or exc}")
    return Scan(digest.hexdigest(), chars, error)


def _not_utf8(exc: UnicodeDecodeError, offset: int) -> str:
    return f"not UTF-8 text ({exc.reason} at byte {offset + exc.start})"


# ---------------------------------------------------------------------------------------------
# The manifest


@dataclass
class ManifestEntry:
    input: str
    name: str  # output name relative to the output directory, without extension
    content_sha256: str | None
    settings_sha256: str
    status: str
    files: dict[str, str] = field(default_factory=dict)  # kind -> path relative to the output dir
    audio_bytes: int | None = None
    attempts: int = 0  # attempts in the last run that worked on this input
    error: str | None = None
    stats: dict[str, Any] | None = None
    updated_at: str = ""


class Manifest:
    """`<output-dir>/elevtts-manifest.json`: one entry per input, rewritten atomically on each change."""

    def __init__(self, path: Path, entries: dict[str, ManifestEntry] | None = None) -> None:
        self.path = path
        self.entries: dict[str, ManifestEntry] = entries or {}
        self.settings: dict[str, dict[str, Any]] = {}  # settings hash -> the settings

    @classmethod
    def load(cls, path: Path, *, ignore_invalid: bool = False) -> Manifest:
        """Read the manifest (an empty one if there is none). An unreadable or foreign file is an
        `OutputError` unless `ignore_invalid` (--force), when it is replaced."""
        manifest = cls(path)
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return manifest
        except OSError as exc:
            raise OutputError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            data = json.loads(raw)
            if data.get("format") != MANIFEST_FORMAT or data.get("version") != MANIFEST_VERSION:
                raise ValueError("not an elevtts batch manifest of version 1")
            fields = set(ManifestEntry.__dataclass_fields__)
            manifest.entries = {
                key: ManifestEntry(**{k: v for k, v in value.items() if k in fields})
                for key, value in data["files"].items()
            }
            manifest.settings = dict(data.get("settings") or {})
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            if ignore_invalid:
                return cls(path)
            raise OutputError(
                f"{path} is not a valid manifest ({exc}); move it away or use --force"
            ) from None
        return manifest

    def to_json(self) -> dict[str, Any]:
        used = {entry.settings_sha256 for entry in self.entries.values()}
        return {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "updated_at": _now(),
            "settings": {k: v for k, v in sorted(self.settings.items()) if k in used},
            "files": {key: dict(vars(entry)) for key, entry in self.entries.items()},
        }

    def dumps(self) -> str:
        """The JSON text: one line per file and per settings set (readable, greppable, and fast:
        `indent` would switch json to its pure-Python encoder)."""
        data = self.to_json()

        def block(items: dict[str, Any]) -> str:
            lines = [f"    {_compact(key)}: {_compact(value)}" for key, value in items.items()]
            return "{\n" + ",\n".join(lines) + "\n  }" if lines else "{}"

        head = [f'  "{key}": {_compact(data[key])}' for key in ("format", "version", "updated_at")]
        body = [f'  "settings": {block(data["settings"])}', f'  "files": {block(data["files"])}']
        return "{\n" + ",\n".join(head + body) + "\n}\n"

    def save(self) -> None:
        """Write to a temporary file, fsync, rename: a crash leaves the old or the new manifest."""
        temp = self.path.with_name(self.path.name + PART_SUFFIX)
        text = self.dumps()
        try:
            with open(temp, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


@contextlib.contextmanager
def manifest_lock(directory: Path) -> Iterator[None]:
    """One batch at a time per output directory (POSIX advisory lock; a no-op elsewhere)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path = directory / LOCK_NAME
    try:
        handle = open(path, "a")  # noqa: SIM115  (closed below)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UsageError(f"another elevtts batch is writing to {directory}") from None
        yield
    finally:
        handle.close()


# ---------------------------------------------------------------------------------------------
# Retries


@dataclass(frozen=True)
class Backoff:
    """Jittered exponential backoff: uniform in [d/2, d], d = min(cap, base * 2**(retry-1))."""

    base_s: float = 0.5
    cap_s: float = 10.0
    hint_cap_s: float = 60.0  # a server's retry hint is honoured up to this

    def delay(self, retry: int, hint_s: float | None = None, *, rng: random.Random | None = None) -> float:
        ceiling = min(self.cap_s, self.base_s * 2 ** max(0, retry - 1))
        wait = (rng or random).uniform(ceiling / 2, ceiling)
        if hint_s is not None:
            wait = max(wait, min(hint_s, self.hint_cap_s))
        return wait


_RETRY_HINT = re.compile(
    r"(?:retry[-_ ]?after|try\s+again\s+in|retry\s+in)[\"']?\s*[:=]?\s*(\d+(?:\.\d+)?)\s*"
    r"(ms|milliseconds?|min(?:ute)?s?|s|secs?|seconds?)?\b",
    re.IGNORECASE,
)
_HTTP_STATUS = re.compile(r"\bHTTP (\d{3})\b")


def retry_hint(message: str) -> float | None:
    """Seconds to wait, if the error's text says (`retry_after: 5`, `try again in 500 ms`, ...)."""
    match = _RETRY_HINT.search(message)
    if match is None:
        return None
    value = float(match.group(1))
    unit = (match.group(2) or "s").lower()
    if unit.startswith("mi") and not unit.startswith("mil"):
        return value * 60
    return value / 1000 if unit.startswith("m") else value


def is_retryable(exc: BaseException) -> bool:
    """Worth another attempt: the same request might succeed later."""
    if isinstance(exc, AuthenticationError | InputError | OutputError | UsageError | InactivityTimeout):
        return False
    if isinstance(exc, ConnectionDropped | IncompleteAudio):
        return True
    if isinstance(exc, ConnectError):
        status = _HTTP_STATUS.search(exc.message)
        return (
            status is None or not 400 <= int(status.group(1)) < 500 or int(status.group(1)) in RETRYABLE_HTTP
        )
    if isinstance(exc, ServerError):
        return exc.code in RETRYABLE_CLOSE_CODES or exc.error in RETRYABLE_ERRORS
    return False


# ---------------------------------------------------------------------------------------------
# Plan, reports, progress


@dataclass(frozen=True)
class BatchPlan:
    output_dir: Path
    jobs: int = 2
    retries: int = 3  # further attempts after the first
    retry_failed: bool = False
    force: bool = False
    subtitles: tuple[str, ...] = ()
    keep_chunks: bool = False
    write_stats: bool = True
    backoff: Backoff = field(default_factory=Backoff)


@dataclass
class FileReport:
    """One input in the report (`--json`) and in the progress display."""

    input: str
    output: str | None
    status: str = NOT_STARTED
    ttfb_ms: float | None = None
    audio_seconds: float | None = None
    real_time_factor: float | None = None
    error: str | None = None
    attempts: int = 0
    chars: int = 0
    reason: str = ""  # why it was run or skipped: new, changed text, unfinished, ...

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BatchReport:
    files: list[FileReport] = field(default_factory=list)
    manifest: str | None = None
    started_at: float = field(default_factory=time.monotonic)
    wall_s: float | None = None
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(f.status == status for f in self.files)

    @property
    def failed(self) -> list[FileReport]:
        return [f for f in self.files if f.status == FAILED]

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(f.status in (DONE, SKIPPED) for f in self.files)

    def totals(self) -> dict[str, Any]:
        done = [f for f in self.files if f.status == DONE]
        return {
            "files": len(self.files),
            **{status: self.count(status) for status in (DONE, SKIPPED, FAILED, INTERRUPTED, NOT_STARTED)},
            "chars": sum(f.chars for f in done),
            "audio_seconds": round(sum(f.audio_seconds or 0.0 for f in done), 3),
            "wall_s": None if self.wall_s is None else round(self.wall_s, 3),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "interrupted": self.interrupted,
            "manifest": self.manifest,
            "totals": self.totals(),
            "files": [f.to_json() for f in self.files],
        }


class BatchProgress(Protocol):
    """What a batch tells its display; see `PlainBatchProgress` and `RichBatchProgress`."""

    def begin(self, report: BatchReport, *, to_run: int, chars: int, target: str) -> None: ...
    def file_started(self, file: FileReport) -> None: ...
    def file_update(
        self,
        file: FileReport,
        *,
        state: str | None = None,
        chars_sent: int | None = None,
        audio_s: float | None = None,
    ) -> None: ...
    def file_retry(self, file: FileReport, *, delay_s: float, error: str) -> None: ...
    def file_finished(self, file: FileReport) -> None: ...
    def end(self, report: BatchReport) -> None: ...


class SilentBatchProgress:
    def begin(self, report: BatchReport, *, to_run: int, chars: int, target: str) -> None:
        pass

    def file_started(self, file: FileReport) -> None:
        pass

    def file_update(
        self,
        file: FileReport,
        *,
        state: str | None = None,
        chars_sent: int | None = None,
        audio_s: float | None = None,
    ) -> None:
        pass

    def file_retry(self, file: FileReport, *, delay_s: float, error: str) -> None:
        pass

    def file_finished(self, file: FileReport) -> None:
        pass

    def end(self, report: BatchReport) -> None:
        pass


def _file_line(file: FileReport) -> str:
    if file.status == DONE:
        details = [f"{file.audio_seconds or 0:.1f} s audio"]
        if file.ttfb_ms is not None:
            details.append(f"TTFB {file.ttfb_ms:,.0f} ms")
        if file.real_time_factor is not None:
            details.append(f"RTF {file.real_time_factor:.2f}")
        if file.attempts > 1:
            details.append(f"{file.attempts} attempts")
        return f"done    {file.input} -> {file.output}  ({', '.join(details)})"
    if file.status == FAILED:
        tries = f" ({file.attempts} attempt{'s' if file.attempts != 1 else ''})" if file.attempts else ""
        if file.reason == FAILED_BEFORE:
            tries = " (in an earlier run; --retry-failed tries again)"
        return f"failed  {file.input}: {file.error}{tries}"
    return f"{file.status:<7} {file.input}"


def _summary_line(report: BatchReport) -> str:
    totals = report.totals()
    parts = [f"{totals[DONE]} done"]
    parts += [
        f"{totals[s]} {s.replace('_', ' ')}" for s in (SKIPPED, FAILED, INTERRUPTED, NOT_STARTED) if totals[s]
    ]
    audio, wall = totals["audio_seconds"], totals["wall_s"] or 0.0
    line = f"batch: {', '.join(parts)}; {audio:.1f} s of audio in {wall:.1f} s"
    return line + (f" (manifest {report.manifest})" if report.manifest else "")


class PlainBatchProgress(SilentBatchProgress):
    """Not a terminal: a line per finished file, retry and summary on stderr."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.finished = 0
        self.to_run = 0

    def _print(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def begin(self, report: BatchReport, *, to_run: int, chars: int, target: str) -> None:
        self.to_run = to_run
        skipped = report.count(SKIPPED)
        failed_before = [f for f in report.files if f.status == FAILED]
        line = f"batch: {len(report.files)} files, {to_run} to speak ({chars:,} chars) on {target}"
        self._print(line + (f"; {skipped} unchanged, skipped" if skipped else ""))
        for file in failed_before:
            self._print(_file_line(file))

    def file_retry(self, file: FileReport, *, delay_s: float, error: str) -> None:
        self._print(f"retry   {file.input}: {error} (attempt {file.attempts + 1} in {delay_s:.1f} s)")

    def file_finished(self, file: FileReport) -> None:
        self.finished += 1
        self._print(f"[{self.finished}/{self.to_run}] {_file_line(file)}")

    def end(self, report: BatchReport) -> None:
        self._print(_summary_line(report))


class RichBatchProgress(PlainBatchProgress):
    """A terminal: one live line per file in flight and an overall bar; finished files scroll above."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console

        super().__init__()
        self.console = console or Console(stderr=True)
        self._live: Any = None
        self._progress: Any = None
        self._task: Any = None
        self._active: dict[int, dict[str, Any]] = {}
        self._done_chars = 0
        self._failed_chars = 0  # failed files count as processed, so the bar ends full
        self._audio_s = 0.0

    def _print(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False)

    def begin(self, report: BatchReport, *, to_run: int, chars: int, target: str) -> None:
        from rich.live import Live
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        super().begin(report, to_run=to_run, chars=chars, target=target)
        self._progress = Progress(
            TextColumn("[bold]batch"),
            BarColumn(),
            TextColumn("{task.fields[files]}/{task.fields[to_run]} files"),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} chars"),
            TextColumn("{task.fields[audio]:.1f} s audio"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            auto_refresh=False,
        )
        self._task = self._progress.add_task("batch", total=max(1, chars), files=0, to_run=to_run, audio=0.0)

        self._live = Live(self, console=self.console, refresh_per_second=8, transient=True)
        self._live.start()

    def __rich__(self) -> Any:
        from rich.console import Group

        return Group(*(self._line(state) for state in self._active.values()), self._progress)

    def _line(self, state: dict[str, Any]) -> Any:
        from rich.text import Text

        file: FileReport = state["file"]
        text = Text()
        text.append(f"{file.input} ", style="bold")
        text.append(f"[{state['state']}] ", style="cyan")
        text.append(f"{state['chars']:,}/{file.chars:,} chars · audio {state['audio']:.1f} s")
        if file.attempts > 1:
            text.append(f" · attempt {file.attempts}", style="yellow")
        return text

    def _refresh(self) -> None:
        if self._progress is None:
            return
        # Text is sent well ahead of the audio: count a file in flight by the text its audio
        # covers so far, at the characters-per-second rate of the files already finished.
        rate = self._done_chars / self._audio_s if self._audio_s else 15.0
        in_flight = sum(min(s["chars"], s["audio"] * rate, s["file"].chars) for s in self._active.values())
        audio = self._audio_s + sum(s["audio"] for s in self._active.values())
        completed = self._done_chars + self._failed_chars + in_flight
        self._progress.update(self._task, completed=completed, files=self.finished, audio=audio)

    def file_started(self, file: FileReport) -> None:
        self._active[id(file)] = {"file": file, "state": "connecting", "chars": 0, "audio": 0.0}
        self._refresh()

    def file_update(
        self,
        file: FileReport,
        *,
        state: str | None = None,
        chars_sent: int | None = None,
        audio_s: float | None = None,
    ) -> None:
        current = self._active.get(id(file))
        if current is None:
            return
        if state is not None:
            current["state"] = state
        if chars_sent is not None:
            current["chars"] = chars_sent
        if audio_s is not None:
            current["audio"] = audio_s
        self._refresh()

    def file_retry(self, file: FileReport, *, delay_s: float, error: str) -> None:
        super().file_retry(file, delay_s=delay_s, error=error)
        self.file_update(file, state=f"retry in {delay_s:.1f} s", chars_sent=0, audio_s=0.0)

    def file_finished(self, file: FileReport) -> None:
        self._active.pop(id(file), None)
        if file.status == DONE:
            self._done_chars += file.chars
            self._audio_s += file.audio_seconds or 0.0
        else:
            self._failed_chars += file.chars
        super().file_finished(file)
        self._refresh()

    def end(self, report: BatchReport) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        super().end(report)


def make_batch_progress(*, quiet: bool, console: Any = None) -> BatchProgress:
    """Rich on a terminal, plain lines elsewhere, nothing with --quiet (all on stderr)."""
    if quiet:
        return SilentBatchProgress()
    from rich.console import Console

    console = console or Console(stderr=True)
    return RichBatchProgress(console) if console.is_terminal else PlainBatchProgress()


class _FileDisplay(SilentDisplay):
    """`speak`'s per-stream display, forwarded to the batch progress."""

    def __init__(self, progress: BatchProgress, file: FileReport) -> None:
        self.progress = progress
        self.file = file

    def start(self, label: str, target: str) -> None:
        self.progress.file_update(self.file, state="connecting", chars_sent=0, audio_s=0.0)

    def update(
        self, *, state: str | None = None, chars_sent: int | None = None, audio_s: float | None = None
    ) -> None:
        self.progress.file_update(self.file, state=state, chars_sent=chars_sent, audio_s=audio_s)


# ---------------------------------------------------------------------------------------------
# Running


@dataclass
class _Job:
    item: BatchInput
    file: FileReport
    paths: OutputPaths
    policy: SendPolicy
    settings_sha256: str
    scan: Scan


def default_jobs(target_kind: str) -> int:
    return DEFAULT_JOBS.get(target_kind, 2)


def _outputs_present(entry: ManifestEntry, paths: OutputPaths, plan: BatchPlan) -> bool:
    try:
        if paths.audio.stat().st_size != entry.audio_bytes:
            return False
    except OSError:
        return False
    if any(not paths.subtitles(kind).exists() for kind in plan.subtitles):
        return False
    return not plan.keep_chunks or paths.chunks.is_dir()


def _decide(job: _Job, entry: ManifestEntry | None, name: str, plan: BatchPlan) -> str:
    """The reason to speak the file, or "" to skip it (done, or failed before and not retried)."""
    if plan.force:
        return "forced"
    if entry is None:
        if job.paths.audio.exists():
            audio = _printable(str(job.paths.audio))
            raise OutputError(f"{audio} exists and is not in the manifest (use --force to overwrite)")
        return "new"
    if entry.content_sha256 != job.scan.sha256:
        return "changed text"
    if entry.settings_sha256 != job.settings_sha256:
        return "changed settings"
    if entry.name != name:
        return "renamed"
    if entry.status == DONE:
        return "" if _outputs_present(entry, job.paths, plan) else "output missing"
    if entry.status == FAILED:
        return "retry failed" if plan.retry_failed else ""
    return "unfinished"


async def run_batch(
    inputs: Sequence[BatchInput],
    *,
    endpoint: Endpoint,
    options: StreamOptions,
    text_policy: SendPolicy,
    markdown_policy: SendPolicy | None = None,
    plan: BatchPlan,
    progress: BatchProgress | None = None,
    multi: bool = False,
    settings_for_stats: dict[str, Any] | None = None,
    target: str | None = None,
    report: BatchReport | None = None,
) -> BatchReport:
    """Speak every input into `plan.output_dir`, resuming from and updating the manifest.

    `markdown_policy` is used for `.md`/`.markdown` files (default: `text_policy`). Files that fail
    are in the report (status "failed"); the batch goes on. Raises `AuthenticationError` (the batch
    stops), `OutputError` (the output directory or manifest cannot be written), `UsageError`
    (another batch holds the directory). When cancelled (Ctrl-C), files in flight are recorded as
    interrupted and the cancellation propagates; pass `report` to read what was done.
    """
    progress = progress or SilentBatchProgress()
    report = report if report is not None else BatchReport()
    report.started_at = time.monotonic()
    root = ensure_directory(plan.output_dir)
    layout = OutputLayout(extension_for(options.params.output_format), plan.subtitles, plan.keep_chunks)
    manifest_path = root / MANIFEST_NAME
    report.manifest = _printable(str(manifest_path))
    with manifest_lock(root):
        manifest = Manifest.load(manifest_path, ignore_invalid=plan.force)
        names = assign_names(inputs, layout, manifest)
        jobs = await asyncio.to_thread(
            _prepare,
            inputs,
            names,
            manifest,
            root,
            layout,
            plan,
            options,
            text_policy,
            markdown_policy or text_policy,
        )
        for job in jobs:
            report.files.append(job.file)
        to_run = [job for job in jobs if job.file.status == NOT_STARTED]
        progress.begin(
            report,
            to_run=len(to_run),
            chars=sum(j.scan.chars for j in to_run),
            target=target or endpoint.display,
        )
        runner = _Runner(
            manifest=manifest,
            endpoint=endpoint,
            options=options,
            plan=plan,
            progress=progress,
            multi=multi,
            settings_for_stats=settings_for_stats,
            root=root,
        )
        try:
            await runner.run_all(to_run)
        except (asyncio.CancelledError, KeyboardInterrupt):
            report.interrupted = True
            raise
        finally:
            report.wall_s = time.monotonic() - report.started_at
            progress.end(report)
    if runner.fatal is not None:
        raise runner.fatal
    return report


def _prepare(
    inputs: Sequence[BatchInput],
    names: dict[str, str],
    manifest: Manifest,
    root: Path,
    layout: OutputLayout,
    plan: BatchPlan,
    options: StreamOptions,
    text_policy: SendPolicy,
    markdown_policy: SendPolicy,
) -> list[_Job]:
    """Scan every input (one streamed read each) and decide what to do with it."""
    hashes: dict[int, tuple[str, dict[str, Any]]] = {}
    jobs = []
    for item in inputs:
        policy = markdown_policy if item.markdown else text_policy
        if id(policy) not in hashes:
            settings = audio_settings(options, policy)
            hashes[id(policy)] = (settings_hash(settings), settings)
        digest, settings = hashes[id(policy)]
        manifest.settings[digest] = settings
        name = names[item.key]
        paths = layout.paths(root, name)
        file = FileReport(input=item.display, output=_printable(str(paths.audio)))
        job = _Job(item, file, paths, policy, digest, scan_file(item.path))
        file.chars = job.scan.chars
        entry = manifest.entries.get(item.key)
        try:
            check_inside(root, paths, layout)
            reason = _decide(job, entry, name, plan)
        except OutputError as exc:  # unsafe or foreign output: not recorded, checked again next run
            file.status, file.error = FAILED, exc.message
            jobs.append(job)
            continue
        if reason:
            file.reason = reason
        elif entry is not None and entry.status == DONE:
            file.status, file.reason = SKIPPED, "unchanged"
            _copy_stats(file, entry)
        elif entry is not None:
            file.status, file.reason = FAILED, FAILED_BEFORE
            file.error = entry.error
        if file.status == NOT_STARTED and job.scan.error is not None:
            file.status, file.error = FAILED, job.scan.error
            _record_failure(manifest, job, name, job.scan.error)
        jobs.append(job)
    manifest.save()
    return jobs


def _record_failure(manifest: Manifest, job: _Job, name: str, error: str) -> None:
    """Record a file that fails before any attempt (unreadable or not UTF-8)."""
    manifest.entries[job.item.key] = ManifestEntry(
        input=job.item.key,
        name=name,
        content_sha256=job.scan.sha256,
        settings_sha256=job.settings_sha256,
        status=FAILED,
        error=error,
        updated_at=_now(),
    )


def _copy_stats(file: FileReport, entry: ManifestEntry) -> None:
    stats = entry.stats or {}
    file.ttfb_ms = stats.get("ttfb_ms")
    file.audio_seconds = stats.get("audio_seconds")
    file.real_time_factor = stats.get("real_time_factor")


class _Runner:
    """Runs the jobs, at most `plan.jobs` at once, and keeps the manifest current."""

    def __init__(
        self,
        *,
        manifest: Manifest,
        endpoint: Endpoint,
        options: StreamOptions,
        plan: BatchPlan,
        progress: BatchProgress,
        multi: bool,
        settings_for_stats: dict[str, Any] | None,
        root: Path,
    ) -> None:
        self.manifest = manifest
        self.endpoint = endpoint
        self.options = options
        self.plan = plan
        self.progress = progress
        self.multi = multi
        self.settings_for_stats = settings_for_stats
        self.root = root
        self.fatal: ElevttsError | None = None
        self._dirty = False
        self._saved_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._write_error: OutputError | None = None

    async def run_all(self, jobs: Sequence[_Job]) -> None:
        pending = iter(jobs)

        async def worker() -> None:
            for job in pending:  # shared: each job is taken once
                if self.fatal is not None:
                    return
                await self.run_one(job)

        # gather, not a TaskGroup: the first error propagates as itself (not an ExceptionGroup);
        # the other files in flight are cancelled and recorded as interrupted.
        tasks = [asyncio.ensure_future(worker()) for _ in range(max(1, min(self.plan.jobs, len(jobs))))]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.flush()
        if self._write_error is not None:
            raise self._write_error

    def _entry(self, job: _Job) -> ManifestEntry:
        name = job.paths.directory.relative_to(self.root).joinpath(job.paths.name).as_posix()
        files = {"audio": self._rel(job.paths.audio)}
        if self.plan.write_stats:
            files["stats"] = self._rel(job.paths.stats)
        files.update({kind: self._rel(job.paths.subtitles(kind)) for kind in self.plan.subtitles})
        if self.plan.keep_chunks:
            files["chunks"] = self._rel(job.paths.chunks)
        return ManifestEntry(
            input=job.item.key,
            name=name,
            content_sha256=job.scan.sha256,
            settings_sha256=job.settings_sha256,
            status=RUNNING,
            files=files,
            updated_at=_now(),
        )

    def _rel(self, path: Path) -> str:
        return _printable(path.relative_to(self.root).as_posix())

    def _save(self, entry: ManifestEntry, **changes: Any) -> None:
        """Record a change and write the manifest: at once, or (for big manifests, where each
        write costs more) at most every `len/2000` seconds, capped at 1 s, so writes stay cheap."""
        for key, value in changes.items():
            setattr(entry, key, value)
        entry.updated_at = _now()
        if self._write_error is not None:
            raise self._write_error
        self._dirty = True
        interval = min(1.0, len(self.manifest.entries) / 2000)
        if time.monotonic() - self._saved_at >= interval:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(interval, self._flush_later)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._dirty:
            self.manifest.save()
            self._dirty = False
            self._saved_at = time.monotonic()

    def _flush_later(self) -> None:
        self._timer = None
        try:
            self.flush()
        except OutputError as exc:  # raised by the next change, or at the end
            self._write_error = exc

    async def run_one(self, job: _Job) -> None:
        file = job.file
        entry = self._entry(job)
        self.manifest.entries[job.item.key] = entry
        file.status = RUNNING
        self.progress.file_started(file)
        try:
            await self._attempts(job, entry)
        except asyncio.CancelledError:
            file.status = INTERRUPTED
            file.error = "interrupted"
            with contextlib.suppress(OutputError):
                self._save(entry, status=INTERRUPTED, error="interrupted")
                self.flush()
            raise
        self.progress.file_finished(file)

    async def _attempts(self, job: _Job, entry: ManifestEntry) -> None:
        file = job.file
        while True:
            file.attempts += 1
            self._save(entry, attempts=file.attempts, status=RUNNING)
            try:
                digest = hashlib.sha256()
                result = await speak(
                    file_source(job.item.path, digest=digest),
                    endpoint=self.endpoint,
                    options=self.options,
                    policy=job.policy,
                    plan=OutputPlan(
                        paths=job.paths,
                        keep_chunks=self.plan.keep_chunks,
                        subtitles=self.plan.subtitles,
                        force=True,  # the manifest decided this file is ours to (re)write
                        write_stats=self.plan.write_stats,
                    ),
                    display=_FileDisplay(self.progress, file),
                    multi=self.multi,
                    settings_for_stats={
                        **(self.settings_for_stats or {}),
                        "flush": job.policy.flush,
                        "strip_markdown": job.policy.strip_markdown,
                    },
                    label=file.input,
                )
                stats = result.stats
                if stats.get("chars_sent") and not stats.get("audio_bytes"):
                    with contextlib.suppress(OSError):
                        job.paths.audio.unlink()  # an empty file must not look finished
                    raise IncompleteAudio(f"the server sent no audio for {stats['chars_sent']} characters")
            except ElevttsError as exc:
                if isinstance(exc, AuthenticationError):
                    self.fatal = self.fatal or exc
                if not is_retryable(exc) or file.attempts > self.plan.retries:
                    file.status, file.error = FAILED, exc.message
                    self._save(entry, status=FAILED, error=exc.message)
                    return
                delay = self.plan.backoff.delay(file.attempts, retry_hint(exc.message))
                self._save(entry, error=exc.message)
                self.progress.file_retry(file, delay_s=delay, error=exc.message)
                await asyncio.sleep(delay)
                continue
            summary = {
                "ttfb_ms": stats.get("ttfb_ms"),
                "audio_seconds": stats.get("audio_seconds"),
                "real_time_factor": stats.get("real_time_factor"),
                "total_ms": stats.get("total_ms"),
                "chars_sent": stats.get("chars_sent"),
            }
            file.status, file.error = DONE, None
            file.ttfb_ms, file.audio_seconds = summary["ttfb_ms"], summary["audio_seconds"]
            file.real_time_factor = summary["real_time_factor"]
            try:
                size: int | None = job.paths.audio.stat().st_size
            except OSError:
                size = None  # gone already: the next run redoes it ("output missing")
            self._save(
                entry,
                status=DONE,
                error=None,
                content_sha256=digest.hexdigest(),
                audio_bytes=size,
                stats=summary,
            )
            return
