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

from elevtts.batch.inputs import BatchInput, discover_inputs
from elevtts.batch.progress import BatchPlan, BatchReport, make_batch_progress
from elevtts.batch.runner import default_jobs, run_batch

__all__ = [
    "BatchInput",
    "BatchPlan",
    "BatchReport",
    "default_jobs",
    "discover_inputs",
    "make_batch_progress",
    "run_batch",
]
