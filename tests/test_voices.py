"""`elevtts voices`: local, or from a server over HTTP."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from elevtts.cli import app
from elevtts.cli.exit_codes import ExitCode


def test_voices_of_a_server(local_server: str) -> None:
    result = CliRunner().invoke(app, ["voices", "--url", local_server, "--json"])
    assert result.exit_code == 0, result.output
    assert {v["voice_id"] for v in json.loads(result.stdout)["voices"]} >= {"joe", "espeak"}
    plain = CliRunner().invoke(app, ["voices", "--url", local_server])
    assert plain.stdout.splitlines()[0].split()[0] in ("joe", "espeak")


def test_voices_of_a_server_that_is_not_there() -> None:
    result = CliRunner().invoke(app, ["voices", "--url", "ws://127.0.0.1:9"])
    assert result.exit_code == ExitCode.CONNECT and "cannot list the voices" in result.stderr
