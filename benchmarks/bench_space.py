"""Time until the Space (spaces/copy_recall) shows the separation, with its default settings, on this machine.

Starts the real app on localhost, presses Train through gradio_client with the page's default settings (the study's
Mamba 2 copy regime, 200 steps) and timestamps every streamed update. "Separation visible" is the first update whose
plot has mimetic's token accuracy at 2L at least 0.2 above the default's at the same evaluation step (the status
line's criterion, ``app.SEPARATION``). Times count from pressing Train.

Example (pausing the background study, so that the app has both cores as on a Space)::

    /tmp/study/exclusive.sh python benchmarks/bench_space.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
from gradio_client import Client

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before app imports gradio
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "spaces" / "copy_recall"))
import app  # noqa: E402
from side_by_side import RunSettings  # noqa: E402


def accuracy_at(rows: list[list], init: str, length: int) -> dict[int, float]:
    """Step → accuracy of one curve of the plot's data."""
    label = app.curve_label(init, "2L", length)
    return {step: accuracy for step, accuracy, curve in rows if curve == label}


def first_separation(rows: list[list], length: int) -> tuple[int, float] | None:
    """(step, mimetic − default) of the first evaluation at 2L with a lead of at least app.SEPARATION."""
    mimetic, default = accuracy_at(rows, "mimetic", length), accuracy_at(rows, "default", length)
    for step in sorted(set(mimetic) & set(default)):
        if mimetic[step] - default[step] >= app.SEPARATION:
            return step, mimetic[step] - default[step]
    return None


def run_once(client: Client, settings: RunSettings) -> dict:
    """Press Train with ``settings`` and time the stream until the run ends."""
    length = 2 * settings.train_length
    start = time.perf_counter()
    job = client.submit(
        task=settings.task, model_type=settings.model_type, train_length=settings.train_length,
        lr_default=settings.lr_default, lr_mimetic=settings.lr_mimetic, max_steps=settings.max_steps,
        eval_4x=settings.eval_4x, api_name="/train",
    )  # fmt: skip
    record = {"first_update_s": None, "separation_s": None, "separation_step": None, "separation_gap": None}
    for plot, status, _ in job:
        now = time.perf_counter() - start
        record["first_update_s"] = record["first_update_s"] or round(now, 1)
        rows = plot["value"]["data"] if isinstance(plot, dict) and "value" in plot else None
        if rows and record["separation_s"] is None and (found := first_separation(rows, length)):
            record.update(separation_s=round(now, 1), separation_step=found[0], separation_gap=round(found[1], 3))
        print(f"{now:6.1f} s  {status}", flush=True)
    plot, status, _ = job.result()
    rows = plot["value"]["data"]
    last = max(step for step, _, _ in rows)
    return {
        **record,
        "total_s": round(time.perf_counter() - start, 1),
        "final_status": status,
        "final_2L": {init: round(accuracy_at(rows, init, length)[last], 3) for init in ("default", "mimetic")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1, help="repeat the default run (same seed: timing spread only)")
    parser.add_argument("--max-steps", type=int, default=RunSettings().max_steps, help="the page's step budget")
    parser.add_argument("--no-4x", action="store_true", help="untick the page's 'Also evaluate at 4L'")
    args = parser.parse_args()
    settings = RunSettings(max_steps=args.max_steps, eval_4x=not args.no_4x)
    load_before = os.getloadavg()[0]
    demo = app.build_demo()
    demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1")
    client = Client(demo.local_url, verbose=False)
    try:
        results = [run_once(client, settings) for _ in range(args.runs)]
    finally:
        client.close()
        demo.close()
    # Other processes slow the run down; the 1-minute load average before and after shows whether there were any.
    machine = {
        "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
        "torch": torch.__version__, "load_before": load_before, "load_after": os.getloadavg()[0],
    }  # fmt: skip
    print(json.dumps({"settings": settings.__dict__, "machine": machine, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
