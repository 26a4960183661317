"""Running a batch: decide what to do with each input, then speak up to `jobs` files at once."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elevtts.batch.inputs import (
    BatchInput,
    OutputLayout,
    Scan,
    assign_names,
    audio_settings,
    check_inside,
    printable,
    scan_file,
    settings_hash,
)
from elevtts.batch.manifest import (
    DONE,
    FAILED,
    FAILED_BEFORE,
    INTERRUPTED,
    MANIFEST_NAME,
    NOT_STARTED,
    RUNNING,
    SKIPPED,
    Manifest,
    ManifestEntry,
    ManifestWriter,
    manifest_lock,
    utc_now,
)
from elevtts.batch.progress import (
    BatchPlan,
    BatchProgress,
    BatchReport,
    FileDisplay,
    FileReport,
    SilentBatchProgress,
)
from elevtts.client import Endpoint, StreamOptions
from elevtts.errors import (
    AuthenticationError,
    ElevttsError,
    IncompleteAudio,
    OutputError,
)
from elevtts.formats import parse_output_format
from elevtts.output import OutputPaths, ensure_directory, write_json
from elevtts.retry import is_retryable, retry_hint_for
from elevtts.speak import OutputPlan, SendPolicy, file_source, speak

NOTHING_TO_SPEAK = "nothing to speak"  # the reason an input without a letter or digit is skipped

# Files in flight by target: the embedded server shares one machine (2 cores here) and the live
# service's free plan allows 2 concurrent requests.
DEFAULT_JOBS = {"embedded": 2, "url": 2, "elevenlabs": 2}


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


_SUMMARY_KEYS = ("ttfb_ms", "audio_seconds", "real_time_factor", "total_ms", "chars_sent")


def _remove_outputs(paths: OutputPaths, plan: BatchPlan) -> bool:
    """Remove the final files (not the chunks directory) an earlier run left under this name."""
    removed = False
    for path in (paths.audio, paths.stats, *(paths.subtitles(kind) for kind in plan.subtitles)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed = True
    return removed


def _sync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a directory
        handle = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


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


def _finished_before_a_crash(job: _Job, entry: ManifestEntry, name: str, plan: BatchPlan) -> bool:
    """A `running` or `interrupted` entry whose final outputs are all there: the attempt that
    recorded it wrote them (it removed older ones first), and a crash came before `done`."""
    if plan.force or entry.status not in (RUNNING, INTERRUPTED) or entry.name != name:
        return False
    if (entry.content_sha256, entry.settings_sha256) != (job.scan.sha256, job.settings_sha256):
        return False
    try:
        if not job.paths.audio.stat().st_size:
            return False
    except OSError:
        return False
    if any(not job.paths.subtitles(kind).exists() for kind in plan.subtitles):
        return False
    # the audio is renamed into place only after a complete stream; the stats sidecar, written
    # last, may be missing (or left from a failed attempt): `_recover` rewrites it
    return not plan.keep_chunks or job.paths.chunks.is_dir()


def _read_stats(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _recover(job: _Job, entry: ManifestEntry) -> None:
    """Record as done a file found finished by `_finished_before_a_crash`; a stats sidecar the
    crash cut off is written again with what is known (the stream's figures were lost)."""
    size = job.paths.audio.stat().st_size
    stats = _read_stats(job.paths.stats)
    if not stats.get("ok"):
        stats = {"ok": True, "audio_bytes": size, "recovered": "finished before a crash; figures lost"}
        if "stats" in entry.files:
            write_json(job.paths.stats, stats)
    entry.status, entry.error, entry.updated_at = DONE, None, utc_now()
    entry.audio_bytes = size
    entry.stats = {key: stats.get(key) for key in _SUMMARY_KEYS}


def _decide(job: _Job, entry: ManifestEntry | None, name: str, plan: BatchPlan) -> str:
    """The reason to speak the file, or "" to skip it (done, or failed before and not retried)."""
    if plan.force:
        return "forced"
    if entry is None:
        if job.paths.audio.exists():
            audio = printable(str(job.paths.audio))
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
    prepare: Callable[[], Awaitable[None]] | None = None,
) -> BatchReport:
    """Speak every input into `plan.output_dir`, resuming from and updating the manifest.

    `markdown_policy` is used for `.md`/`.markdown` files (default: `text_policy`). Files that fail
    are in the report (status "failed"); the batch goes on. Raises `AuthenticationError` (the batch
    stops), `OutputError` (the output directory or manifest cannot be written), `UsageError`
    (another batch holds the directory). When cancelled (Ctrl-C), files in flight are recorded as
    interrupted and the cancellation propagates; pass `report` to read what was done.
    `prepare` (e.g. loading the embedded server's voice) is awaited once, only if a file is to be spoken.
    """
    progress = progress or SilentBatchProgress()
    report = report if report is not None else BatchReport()
    report.started_at = time.monotonic()
    root = ensure_directory(plan.output_dir)
    layout = OutputLayout(
        parse_output_format(options.params.output_format).extension, plan.subtitles, plan.keep_chunks
    )
    manifest_path = root / MANIFEST_NAME
    report.manifest = printable(str(manifest_path))
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
            if to_run and prepare is not None:
                await prepare()
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
        file = FileReport(input=item.display, output=printable(str(paths.audio)))
        job = _Job(item, file, paths, policy, digest, scan_file(item.path))
        file.chars = job.scan.chars
        entry = manifest.entries.get(item.key)
        try:
            check_inside(root, paths, layout)
            if entry is not None and _finished_before_a_crash(job, entry, name, plan):
                _recover(job, entry)
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
        elif file.status == NOT_STARTED and not job.scan.speakable:
            # Empty, or spaces and punctuation only: no audio file at all (never a 0-byte one).
            file.status, file.reason = SKIPPED, NOTHING_TO_SPEAK
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
        updated_at=utc_now(),
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
        self.writer = ManifestWriter(manifest)

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
            await self.writer.durable()

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
            updated_at=utc_now(),
        )

    def _rel(self, path: Path) -> str:
        return printable(path.relative_to(self.root).as_posix())

    def _save(self, entry: ManifestEntry, **changes: Any) -> None:
        """Record a change; the writer puts it on disk soon, in its thread."""
        for key, value in changes.items():
            setattr(entry, key, value)
        entry.updated_at = utc_now()
        self.writer.changed()

    async def _record_intent(self, job: _Job, entry: ManifestEntry) -> None:
        """Remove the stale outputs of this name, then put the `running` entry on disk: from
        here on, final outputs under this name can only come from this attempt."""
        removed = await asyncio.to_thread(_remove_outputs, job.paths, self.plan)
        self.manifest.entries[job.item.key] = entry
        if removed:  # the removals reach the directory before the entry that relies on them
            await asyncio.to_thread(_sync_directory, job.paths.audio.parent)
        self.writer.changed()
        await self.writer.durable()

    async def run_one(self, job: _Job) -> None:
        file = job.file
        entry = self._entry(job)
        file.status = RUNNING
        self.progress.file_started(file)
        try:
            await self._record_intent(job, entry)
            await self._attempts(job, entry)
        except asyncio.CancelledError:
            file.status = INTERRUPTED
            file.error = "interrupted"
            if self.manifest.entries.get(job.item.key) is entry:
                with contextlib.suppress(OutputError):
                    self._save(entry, status=INTERRUPTED, error="interrupted")
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
                    display=FileDisplay(self.progress, file),
                    multi=self.multi,
                    settings_for_stats={
                        **(self.settings_for_stats or {}),
                        "flush": job.policy.flush,
                        "strip_markdown": job.policy.strip_markdown,
                    },
                    label=file.input,
                    retries=self.plan.retries,  # reconnections that resume the file, before restarting it
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
                delay = self.plan.backoff.delay(file.attempts, retry_hint_for(exc))
                self._save(entry, error=exc.message)
                self.progress.file_retry(file, delay_s=delay, error=exc.message)
                await asyncio.sleep(delay)
                continue
            summary = {key: stats.get(key) for key in _SUMMARY_KEYS}
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
