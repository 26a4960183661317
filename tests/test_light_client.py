"""The client path stays light: no engine, encoder or numpy is imported to speak to a server."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("numpy", "onnxruntime", "piper", "lameenc", "soxr", "elevtts.server.engines")


def test_the_cli_and_client_import_no_engine() -> None:
    code = (
        "import json, sys; import elevtts.cli, elevtts.client, elevtts.speak, elevtts.batch; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []
