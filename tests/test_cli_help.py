"""The help users read: -h, completion, the exit codes, panels, metavars; and `--help` stays light."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from elevtts.cli import app
from elevtts.cli.exit_codes import EXIT_CODES_HELP, ExitCode

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ("speak", "batch", "serve", "voices")
# What `--help` must not pull in: the client stack, the batch runner, the server and its engines.
HEAVY = (
    "asyncio",
    "websockets",
    "numpy",
    "onnxruntime",
    "piper",
    "dotenv",
    "elevtts.client",
    "elevtts.speak",
    "elevtts.batch",
    "elevtts.batch.runner",
    "elevtts.server",
)


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args], env={"COLUMNS": "160"}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("command", [(), *((c,) for c in COMMANDS)])
def test_dash_h_is_help(command: tuple[str, ...]) -> None:
    assert _help(*command, "-h") == _help(*command, "--help")


def test_shell_completion_is_on() -> None:
    assert "--install-completion" in _help("--help")


@pytest.mark.parametrize("command", ["speak", "batch"])
def test_help_ends_with_the_exit_codes(command: str) -> None:
    text = _help(command, "--help")
    tail = text[text.index("Exit codes") :]
    for code in ExitCode:
        if code != ExitCode.OK:
            assert f" {int(code)} " in tail, code
    assert "Exit codes" in EXIT_CODES_HELP


def test_input_panel_holds_the_text_options() -> None:
    text = _help("speak", "--help")
    panel = text[text.index("─ Input ") :]
    panel = panel[: panel.index("╰")]
    for option in ("--file", "--strip-markdown", "--idle-flush"):
        assert option in panel


@pytest.mark.parametrize("command", COMMANDS)
def test_metavars_name_what_to_type(command: str) -> None:
    text = _help(command, "--help")
    # Option rows (Typer always labels an argument with its type; options take our metavars)
    options = [line for line in text.splitlines() if line.startswith(("│ --", "│ -"))]
    assert options
    for line in options:
        assert "<list[" not in line and "<str>" not in line and "<path>" not in line, line
    if command in ("speak", "batch"):
        for metavar in ("URL", "MS", "PATH"):
            assert metavar in text, metavar


def _options(command: Any) -> dict[str, tuple[Any, ...]]:
    return {
        p.name or "": (tuple(p.opts), tuple(p.secondary_opts), p.default, p.envvar, p.help)
        for p in command.params
        if p.param_type_name == "option"
    }


def test_speak_and_batch_expose_the_same_shared_options() -> None:
    group: Any = typer.main.get_command(app)
    speak, batch = _options(group.commands["speak"]), _options(group.commands["batch"])
    from elevtts.cli.options import SHARED_OPTION_NAMES

    assert len(SHARED_OPTION_NAMES) > 20
    for name in SHARED_OPTION_NAMES:
        assert speak[name] == batch[name], name
    # ...and each command's own options are few and named
    assert set(speak) - set(SHARED_OPTION_NAMES) == {"file", "output", "name", "play"}
    assert set(batch) - set(SHARED_OPTION_NAMES) == {"jobs", "glob", "retry_failed"}


def _modules_after(*args: str) -> list[str]:
    code = (
        "import json, runpy, sys\n"
        f"sys.argv = ['elevtts', *{list(args)!r}]\n"
        "try:\n"
        "    runpy.run_module('elevtts', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]), file=sys.stderr)\n"
    )
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, timeout=60
    )
    return json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [("--help",), ("speak", "--help"), ("batch", "--help"), ("voices", "-h")])
def test_help_imports_nothing_heavier_than_typer_and_rich(args: tuple[str, ...]) -> None:
    assert _modules_after(*args) == []
