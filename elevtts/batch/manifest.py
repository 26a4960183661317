"""The manifest: what each input of a batch became, rewritten atomically after every change.

How a batch survives kill -9 at any moment (the order is the whole scheme):

1. Before a file is spoken, the stale outputs of its name are removed, then its `running` entry
   (input, name, content and settings hashes) is written and fsynced: the intent is on disk.
2. The audio is streamed into `<name>.<ext>.part` and renamed into place only when complete;
   subtitles and then the stats sidecar (`"ok": true`) follow.
3. The `done` entry is written later, coalesced with other changes.

A re-run that finds a `running` (or `interrupted`) entry whose hashes and name still match and
whose final audio and subtitles are there knows they were written by that attempt (step 1
removed any older ones, and the audio is renamed only after a complete stream), so it records
the file as done without speaking it again, rewriting a stats sidecar the crash cut off. Every final file the
batch writes has an entry (step 1 precedes step 2), so a crash never leaves "exists and is not
in the manifest". Writes run in a worker thread (`ManifestWriter`), never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elevtts.errors import (
    OutputError,
    UsageError,
)
from elevtts.output import PART_SUFFIX

MANIFEST_NAME = "elevtts-manifest.json"
LOCK_NAME = "elevtts-manifest.lock"
MANIFEST_FORMAT = "elevtts-batch-manifest"
MANIFEST_VERSION = 1

DONE, FAILED, RUNNING, INTERRUPTED = "done", "failed", "running", "interrupted"
SKIPPED, NOT_STARTED = "skipped", "not_started"  # report-only statuses
FAILED_BEFORE = "failed before"  # the reason of a failure kept from an earlier run


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
        self._save_lock = threading.Lock()  # one writer of the temporary file at a time

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
            "updated_at": utc_now(),
            "settings": {k: v for k, v in sorted(self.settings.items()) if k in used},
            "files": {key: dict(vars(entry)) for key, entry in self.entries.items()},
        }

    def dumps(self, data: dict[str, Any] | None = None) -> str:
        """The JSON text: one line per file and per settings set (readable, greppable, and fast:
        `indent` would switch json to its pure-Python encoder). `data`: a `to_json()` snapshot."""
        data = self.to_json() if data is None else data

        def block(items: dict[str, Any]) -> str:
            lines = [f"    {_compact(key)}: {_compact(value)}" for key, value in items.items()]
            return "{\n" + ",\n".join(lines) + "\n  }" if lines else "{}"

        head = [f'  "{key}": {_compact(data[key])}' for key in ("format", "version", "updated_at")]
        body = [f'  "settings": {block(data["settings"])}', f'  "files": {block(data["files"])}']
        return "{\n" + ",\n".join(head + body) + "\n}\n"

    def save(self, data: dict[str, Any] | None = None) -> None:
        """Write to a temporary file, fsync, rename: a crash leaves the old or the new manifest.

        `data`: a `to_json()` snapshot taken earlier (so another thread can write it)."""
        temp = self.path.with_name(self.path.name + PART_SUFFIX)
        text = self.dumps(data)
        with self._save_lock:
            self._write(temp, text)

    def _write(self, temp: Path, text: str) -> None:
        try:
            with open(temp, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None


class ManifestWriter:
    """Writes a manifest in a worker thread, one write at a time: changes recorded while a write
    is under way go into the next one, so a burst of changes costs one or two writes.

    `changed()` records a change and returns at once; `await durable()` returns once every
    change recorded before it is on disk. A failed write is an `OutputError`, raised by
    `durable()` (and by `changed()` afterwards).
    """

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self._recorded = 0  # changes recorded
        self._written = 0  # changes known to be on disk
        self._task: asyncio.Task[None] | None = None
        self.error: OutputError | None = None

    def changed(self) -> None:
        if self.error is not None:
            raise self.error
        self._recorded += 1
        self._start()

    async def durable(self) -> None:
        target = self._recorded
        while self._written < target and self.error is None:
            self._start()
            assert self._task is not None
            # shielded: a cancelled waiter must not cancel a write other waiters rely on
            with contextlib.suppress(OutputError):
                await asyncio.shield(self._task)
        if self.error is not None:
            raise self.error

    def _start(self) -> None:
        if self._task is not None and not self._task.done():
            return  # the done callback starts the next write
        if self._written < self._recorded and self.error is None:
            self._task = asyncio.ensure_future(self._write())
            self._task.add_done_callback(self._finished)

    async def _write(self) -> None:
        covered = self._recorded
        snapshot = self.manifest.to_json()  # on the loop: entries change only here
        try:
            await asyncio.to_thread(self.manifest.save, snapshot)
        except OutputError as exc:
            self.error = self.error or exc
            raise
        self._written = max(self._written, covered)

    def _finished(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is None:
            self._start()


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


@contextlib.contextmanager
def manifest_lock(directory: Path) -> Iterator[None]:
    """One batch at a time per output directory (POSIX advisory lock; a no-op elsewhere).

    The lock file is removed when the batch ends. A batch that opened it just before, and locks it
    after the removal, sees that the file it holds is no longer the one at the path, and starts over.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path = directory / LOCK_NAME
    while True:
        try:
            handle = open(path, "a")  # noqa: SIM115  (closed below)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise UsageError(f"another elevtts batch is writing to {directory}") from None
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except OSError:
            same = False
        if same:
            break
        handle.close()  # removed by the batch that held it: lock the new one
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # while still holding the lock
        handle.close()
