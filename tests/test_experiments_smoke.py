"""Smoke runs of experiments/ and benchmarks/: every script loads (its imports and module-level code, which break
first when the library moves a name), and one benchmark runs end to end at toy sizes. The studies themselves take
minutes to hours and are not run here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "experiments").glob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py"))
LOAD_ALL = """
import runpy, sys
for path in sys.argv[1:]:
    folder = path.rsplit("/", 1)[0]
    sys.path.insert(0, folder)
    namespace = runpy.run_path(path, run_name="smoke")  # not "__main__": defines, does not run
    sys.path.remove(folder)
    print(path, len(namespace))
"""


def run(*command: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_every_experiment_and_benchmark_script_loads():
    assert len(SCRIPTS) >= 10
    loaded = run("-c", LOAD_ALL, *map(str, SCRIPTS)).splitlines()
    assert [line.split()[0] for line in loaded] == list(map(str, SCRIPTS))


def test_the_mamba_scan_benchmark_runs_at_toy_sizes():
    output = run("benchmarks/bench_mamba_scan.py", "--hidden", "16", "--layers", "1", "--state", "4", "--batch", "2",
                 "--lengths", "8", "--steps", "1", "--warmup", "0", "--ref-max-length", "8", "--mamba2-head-dim", "8",
                 "--mamba2-chunk", "8")  # fmt: skip
    [row] = [line for line in output.splitlines() if line.startswith("| 8 |")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert float(cells[-1]) < 1e-4  # the fast scan's logits agree with transformers' sequential scan
