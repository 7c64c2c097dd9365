"""The one study runner: a grid of variants × learning rates × seeds, each init tuned the same way, resumable.

A study file (``length_generalization.py``, ``small_data.py``, …) holds only data: its variants, its
:class:`Study` objects and how to make its dataset; it ends with ``main(STUDIES, __doc__)``, which gives it this
command line::

    python experiments/<file>.py run --study NAME [--workers 2] [--only VARIANT:LR ...] [--results DIR]
    python experiments/<file>.py report --study NAME [--metric KEY] [--results DIR]

``run`` trains the study's missing cells in worker processes and appends one JSON line per finished run to
``experiments/results/<study>.jsonl``; cells already there are skipped, so an interrupted study resumes where it
stopped. Protocol, the same for every variant (so the baseline gets exactly the tuning mimetic init gets):

* ``sweep_seeds=None``: every seed runs every learning rate; each variant's learning rate is the one with the best
  mean ``select`` metric over its seeds;
* otherwise a sweep on ``sweep_seeds`` (extended by a factor of 2 past its edge, at most ``max_extensions`` times in
  all, while a variant's best is at the edge), then the other seeds at each variant's best learning rate.

``report`` prints, for each variant at its best learning rate, mean ± std [min, max] over seeds of each reported
metric, then the whole sweep, and draws ``docs/figures/<study>.png`` (the sweep, and learning curves at the best
learning rates). ``--results DIR`` puts the results, run folders, generated data and figures under ``DIR`` instead
(dry runs, tests).

A variant is a dict of mimetic options (``{}``: the family's preset), ``None`` (transformers' default init) or, for
script runs, :class:`Flags` (script flags with the default init, e.g. covariance transfer). A cell trains either
through :func:`hf_mimetic.train.synthetic.train_synthetic` (:class:`SyntheticRun`) or a training
script's ``main`` (:class:`ScriptRun`).
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib
import json
import math
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent
SCRIPTS = ROOT.parent / "scripts"
#: ``--results DIR`` reaches the worker processes through this variable (whichever way they are started).
RESULTS_VARIABLE = "HF_MIMETIC_STUDY_RESULTS"


def locate(folder: str | os.PathLike | None) -> None:
    """Where results (``RESULTS``), run folders and generated data (``RUNS``) and figures (``FIGURES``) go: by
    default experiments/results, its git-ignored runs/ and docs/figures; all three under ``folder`` if given."""
    global RESULTS, RUNS, FIGURES
    RESULTS = Path(folder) if folder else ROOT / "results"
    RUNS = RESULTS / "runs"
    FIGURES = RESULTS / "figures" if folder else ROOT.parent / "docs" / "figures"


locate(os.environ.get(RESULTS_VARIABLE))


# ----------------------------------------------------------------------------------------------------- how a cell runs
def generated_data(name: str, make_data: Callable[[Path], None]) -> Path:
    """The dataset folder ``name`` under the runs' folder, made by ``make_data`` on first use (shared by the run kinds
    and by studies on the same data)."""
    path = RUNS / "data" / name
    if not path.exists():
        make_data(path)
    return path


class Flags(dict):
    """A variant that passes script flags (not mimetic options) and keeps the default init."""


@dataclass
class SyntheticRun:
    """Cells trained on a synthetic task with ``train_synthetic`` (the study's recipe: AdamW, cosine, 5% warmup)."""

    model: dict[str, Any]
    task: dict[str, Any]
    max_steps: int = 200
    eval_steps: int = 100
    batch_size: int = 32
    #: False for the GPU studies (the thesis regime, out of reach of 2 CPU cores).
    use_cpu: bool = True

    def __call__(
        self, variant: dict[str, Any] | None, learning_rate: float, seed: int, output_dir: Path, study_name: str
    ) -> dict[str, Any]:
        from hf_mimetic.train import MimeticArguments
        from hf_mimetic.train.synthetic import (
            SyntheticModelArguments,
            SyntheticTaskArguments,
            study_training_arguments,
            train_synthetic,
        )

        model_args = SyntheticModelArguments(**self.model, mimetic_init=variant is not None)
        arguments = study_training_arguments(
            str(output_dir), self.max_steps, learning_rate, seed, batch_size=self.batch_size, eval_steps=self.eval_steps,
            use_cpu=self.use_cpu,
        )  # fmt: skip
        result = train_synthetic(model_args, SyntheticTaskArguments(**self.task), MimeticArguments(**(variant or {})), arguments)
        return {
            "results": {f"L{n}_{k}": v for n, metrics in result["eval"].items() for k, v in metrics.items()},
            "history": merge_by_step(result["history"]),
            "config": result["config"],
        }


@dataclass
class ScriptRun:
    """Cells trained by a training script (``scripts/<script>.py``'s ``main``) on a dataset made by ``make_data``."""

    script: str
    make_data: Callable[[Path], None]
    flags: dict[str, Any]
    #: Name of the dataset folder (studies on the same data share it); default: the study's name.
    data: str | None = None

    def data_path(self, study_name: str) -> Path:
        """The study's dataset, generated on first use."""
        return generated_data(self.data or study_name, self.make_data)

    def __call__(
        self, variant: dict[str, Any] | None, learning_rate: float, seed: int, output_dir: Path, study_name: str
    ) -> dict[str, Any]:
        sys.path.insert(0, str(SCRIPTS))
        init = variant if isinstance(variant, Flags) else {} if variant is None else {"mimetic_init": True, **variant}
        run = {"dataset_path": self.data_path(study_name), "output_dir": output_dir, "learning_rate": learning_rate,
               "seed": seed, "overwrite_output_dir": True}  # fmt: skip
        results = importlib.import_module(self.script).main(as_argv({**self.flags, **init, **run}))
        log = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
        return {
            "results": results,
            "history": [entry for entry in log if any(k.startswith("eval_") for k in entry)],
            "train_history": [{"step": e["step"], "loss": e["loss"]} for e in log if "loss" in e],
        }


def as_argv(flags: dict[str, Any]) -> list[str]:
    """``{"qk": False, "seed": 0}`` → ``["--qk", "false", "--seed", "0"]`` (lists become several values)."""
    argv = []
    for name, value in flags.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        argv += [f"--{name}", *(str(v).lower() if isinstance(v, bool) else str(v) for v in values)]
    return argv


def merge_by_step(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per step (the Trainer logs each eval set of a step separately)."""
    merged: dict[int, dict[str, Any]] = {}
    for entry in history:
        merged.setdefault(entry["step"], {}).update(entry)
    return [merged[step] for step in sorted(merged)]


# --------------------------------------------------------------------------------------------------------- the study
@dataclass
class Study:
    """A grid of ``variants`` × ``learning_rates`` × ``seeds`` of one kind of run.

    ``select`` is the result that picks each variant's learning rate and ``columns`` the results reported; both may
    contain ``{metric}``, filled with ``metric`` (``report --metric`` changes it). ``curves`` are history keys drawn
    against the step (with a transform, e.g. nats → bits).
    """

    run: SyntheticRun | ScriptRun
    variants: dict[str, dict[str, Any] | None]
    learning_rates: list[float]
    select: str
    columns: list[str]
    curves: dict[str, Callable[[float], float]]
    metric: str = ""
    lower_is_better: bool = False
    #: More learning rates for some variants (to extend a sweep whose best value sits at its edge).
    extra_learning_rates: dict[str, list[float]] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    #: The variant the paired table subtracts (another than ``default`` when the study compares mimetic options).
    baseline: str = "default"
    #: None: every seed runs every learning rate. Otherwise the seeds of the sweep; the others run at the best only.
    sweep_seeds: list[int] | None = None
    max_extensions: int = 0

    def learning_rates_of(self, variant: str) -> list[float]:
        return self.learning_rates + self.extra_learning_rates.get(variant, [])

    def grid(self) -> set[str]:
        return {f"{v}:{lr:g}" for v in self.variants for lr in self.learning_rates_of(v)}

    def scores(self, records: list[dict[str, Any]], metric: str, seeds: list[int] | None) -> dict[str, dict[float, list[float]]]:
        """Per variant: learning rate → ``select`` values of its runs (only ``seeds``' if given)."""
        key = self.select.format(metric=metric)
        found: dict[str, dict[float, list[float]]] = {v: {} for v in self.variants}
        for record in records:
            if record["variant"] in found and (seeds is None or record["seed"] in seeds):
                found[record["variant"]].setdefault(record["learning_rate"], []).append(record["results"][key])
        return found

    def best_learning_rates(self, records: list[dict[str, Any]], metric: str | None = None) -> dict[str, float]:
        """Each variant's learning rate with the best mean ``select``: over every seed (``sweep_seeds=None``) or over
        the sweep seeds once its initial sweep is complete (so a sweep still running cannot decide)."""
        sign = -1 if self.lower_is_better else 1
        best = {}
        for variant, by_lr in self.scores(records, metric or self.metric, self.sweep_seeds).items():
            if self.sweep_seeds is not None:
                by_lr = {lr: v for lr, v in by_lr.items() if len(v) == len(self.sweep_seeds)}
                if not set(self.learning_rates) <= set(by_lr):
                    continue
            if by_lr:
                best[variant] = max(by_lr, key=lambda lr: sign * statistics.fmean(by_lr[lr]))
        return best

    def extensions(self, records: list[dict[str, Any]]) -> list[tuple[str, float]]:
        """``(variant, learning rate)`` one step beyond the sweep's edge for each variant whose best is at it and
        whose sweep has been extended fewer than ``max_extensions`` times (over every ``run`` so far, not per call)."""
        cells = []
        swept = self.scores(records, self.metric, self.sweep_seeds)
        for variant, best in self.best_learning_rates(records).items():
            lrs = sorted(swept[variant])
            if len(set(lrs) - set(self.learning_rates_of(variant))) >= self.max_extensions:
                continue
            if best == lrs[0]:
                cells.append((variant, best / 2))
            elif best == lrs[-1]:
                cells.append((variant, best * 2))
        return cells


def cell_key(study: str, variant: str, learning_rate: float, seed: int) -> str:
    return f"{study}/{variant}/lr={learning_rate:g}/seed={seed}"


def load(study_name: str) -> list[dict[str, Any]]:
    path = RESULTS / f"{study_name}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_cell(module: str, study_name: str, variant: str, learning_rate: float, seed: int, threads: int) -> dict[str, Any]:
    """Train one cell in this (worker) process and return its JSON record."""
    import torch

    torch.set_num_threads(threads)
    study = importlib.import_module(module).STUDIES[study_name]
    output_dir = RUNS / cell_key(study_name, variant, learning_rate, seed).replace("/", "_")
    start = time.perf_counter()
    outcome = study.run(study.variants[variant], learning_rate, seed, output_dir, study_name)
    return {
        "key": cell_key(study_name, variant, learning_rate, seed), "study": study_name, "variant": variant,
        "learning_rate": learning_rate, "seed": seed, "seconds": time.perf_counter() - start, **outcome,
    }  # fmt: skip


def _run_cells(module: str, study_name: str, cells: list[tuple[str, float, int]], workers: int) -> None:
    done = {record["key"] for record in load(study_name)}
    cells = [cell for cell in cells if cell_key(study_name, *cell) not in done]
    print(f"{study_name}: {len(done)} runs done, {len(cells)} to go, {workers} worker(s)", flush=True)
    if not cells:
        return
    study = importlib.import_module(module).STUDIES[study_name]
    threads = max(1, (os.cpu_count() or 2) // max(1, workers))
    RESULTS.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        out = stack.enter_context(open(RESULTS / f"{study_name}.jsonl", "a"))
        if workers == 0:  # one after another in this process: no worker to start (dry runs)
            records = (run_cell(module, study_name, v, lr, s, threads) for v, lr, s in cells)
        else:
            pool = stack.enter_context(ProcessPoolExecutor(max_workers=workers))
            futures = [pool.submit(run_cell, module, study_name, v, lr, s, threads) for v, lr, s in cells]
            records = (future.result() for future in as_completed(futures))
        for record in records:
            out.write(json.dumps(record) + "\n")
            out.flush()
            shown = "  ".join(f"{k}={record['results'][k]:.4f}" for k in (c.format(metric=study.metric) for c in study.columns))
            print(f"{record['key']}  ({record['seconds']:.0f} s)  {shown}", flush=True)


def run(module: str, study_name: str, workers: int, only: list[str] | None = None, sweep_only: bool = False) -> None:
    """Train the study's missing cells; ``only`` (``"variant:lr"`` items) restricts them, e.g. to finish the seeds
    of each variant's best learning rate when the whole grid does not fit the time; ``sweep_only`` stops after the
    sweep (the first pass over a grid of studies, before choosing which cells get more seeds)."""
    study = importlib.import_module(module).STUDIES[study_name]
    if only and set(only) - study.grid():
        raise SystemExit(f"--only {sorted(set(only) - study.grid())} not in study {study_name}; its cells: {sorted(study.grid())}")
    if hasattr(study.run, "data_path"):
        study.run.data_path(study_name)  # once, before the workers start
    wanted = lambda v, lr: not only or f"{v}:{lr:g}" in only  # noqa: E731
    if study.sweep_seeds is None:
        cells = [(v, lr, s) for s in study.seeds for v in study.variants for lr in study.learning_rates_of(v) if wanted(v, lr)]
        _run_cells(module, study_name, cells, workers)
        return
    sweep = [(v, lr, s) for s in study.sweep_seeds for v in study.variants for lr in study.learning_rates_of(v)]
    _run_cells(module, study_name, [c for c in sweep if wanted(*c[:2])], workers)
    for _ in range(study.max_extensions):
        edges = study.extensions(load(study_name))
        if not edges:
            break
        _run_cells(module, study_name, [(v, lr, s) for s in study.sweep_seeds for v, lr in edges], workers)
    if sweep_only:
        return
    best = study.best_learning_rates(load(study_name))
    rest = [(v, best[v], s) for s in study.seeds if s not in study.sweep_seeds for v in study.variants if v in best]
    _run_cells(module, study_name, [c for c in rest if wanted(*c[:2])], workers)


# ------------------------------------------------------------------------------------------------------------ report
def summary(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4f} ± {spread:.4f} [{min(values):.3f}, {max(values):.3f}]"


def report(module: str, study_name: str, metric: str | None = None) -> str:
    """Markdown: each variant at its best learning rate (mean ± std [min, max] over its seeds), then the sweep."""
    study = importlib.import_module(module).STUDIES[study_name]
    metric = metric or study.metric
    records = load(study_name)
    if not records:
        return f"### {study_name}: no results yet (run it first)"
    columns = [c.format(metric=metric) for c in study.columns]
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["variant"], record["learning_rate"]), []).append(record)
    best = study.best_learning_rates(records, metric)

    def row(variant: str, lr: float) -> str:
        runs = groups[(variant, lr)]
        return f"| {variant} | {lr:g} | {len(runs)} | " + " | ".join(summary([r["results"][c] for r in runs]) for c in columns) + " |"

    header = ["| variant | lr | seeds | " + " | ".join(columns) + " |", "|---|---:|---:|" + "---:|" * len(columns)]
    chosen = "every seed" if study.sweep_seeds is None else f"seeds {study.sweep_seeds}"
    lines = [
        f"### {study_name}: best lr per variant (by {study.select.format(metric=metric)} over {chosen}), "
        "mean ± std [min, max] over its seeds", "", *header, *(row(v, best[v]) for v in study.variants if v in best),
        "", "Whole sweep:", "", *header, *(row(v, lr) for v, lr in sorted(groups)),
    ]  # fmt: skip
    lines += paired_table(study, groups, best, columns)
    lines += loss_table(study, groups, best)
    seconds = [r["seconds"] for r in records if "seconds" in r]
    if seconds:
        lines += ["", f"{len(records)} runs, {statistics.fmean(seconds):.0f} s each ({sum(seconds) / 3600:.1f} h of worker time)."]
    figure(study_name, study, groups, best, columns)
    return "\n".join(lines)


def paired_table(study: Study, groups: dict[tuple[str, float], list[dict[str, Any]]], best: dict[str, float],
                 columns: list[str]) -> list[str]:  # fmt: skip
    """Each variant minus the study's ``baseline`` (``default``) on the same seed (same data order and, for layers the
    variant leaves alone, the same init draw), both at their best learning rates: mean [min, max] over the shared
    seeds and on how many seeds the variant is ahead. Empty when the study has no such variant."""
    if study.baseline not in best:
        return []
    baseline = {r["seed"]: r["results"] for r in groups[(study.baseline, best[study.baseline])]}
    better = "lower" if study.lower_is_better else "higher"
    name = study.baseline
    lines = ["", f"Paired with {name} (variant − {name}, same seed), mean [min, max], seeds ahead ({better} is better):", "",
             "| variant | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]  # fmt: skip
    for variant in study.variants:
        if variant == study.baseline or variant not in best:
            continue
        runs = [r for r in groups[(variant, best[variant])] if r["seed"] in baseline]
        if not runs:
            continue
        cells = []
        for column in columns:
            gaps = [r["results"][column] - baseline[r["seed"]][column] for r in runs]
            ahead = sum((gap < 0) if study.lower_is_better else (gap > 0) for gap in gaps)
            cells.append(f"{statistics.fmean(gaps):+.4f} [{min(gaps):+.3f}, {max(gaps):+.3f}], {ahead}/{len(gaps)}")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return lines


def loss_table(study: Study, groups: dict[tuple[str, float], list[dict[str, Any]]], best: dict[str, float]) -> list[str]:
    """When the runs logged their training loss: its value at 10%, 25% and 50% of the budget at each variant's best
    learning rate, mean [min, max] over seeds (how fast each starts; a mean can hide a seed stuck at chance)."""
    # Only the variants whose runs logged it (older runs of a study may not have).
    runs = {v: [r for r in groups[(v, best[v])] if r.get("train_history")] for v in study.variants if v in best}
    runs = {v: rs for v, rs in runs.items() if rs}
    if not runs:
        return []
    logged = sorted({e["step"] for rs in runs.values() for r in rs for e in r["train_history"]})
    # The logged steps nearest to 10%, 25% and 50% of the budget (a label names a step that was logged).
    marks = sorted({min(logged, key=lambda step: abs(step - logged[-1] * f)) for f in (0.1, 0.25, 0.5)})

    def at(run: dict[str, Any], step: int) -> float:
        return min(run["train_history"], key=lambda e: abs(e["step"] - step))["loss"]

    lines = ["", "Training loss at each variant's best learning rate, mean [min, max] over seeds:", "",
             "| variant | " + " | ".join(f"step {m}" for m in marks) + " |", "|---|" + "---:|" * len(marks)]  # fmt: skip
    for variant, rs in runs.items():
        cells = []
        for mark in marks:
            values = [at(r, mark) for r in rs]
            cells.append(f"{statistics.fmean(values):.2f} [{min(values):.2f}, {max(values):.2f}]")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return lines


def figure(
    study_name: str, study: Study, groups: dict[tuple[str, float], list[dict[str, Any]]], best: dict[str, float], columns: list[str]
) -> None:
    """Top: each reported metric against the learning rate (mean ± std over seeds). Middle: the learning curves at
    each variant's best learning rate (mean, and min–max over seeds). Bottom, when the runs logged it: the training
    loss of every seed at each variant's best learning rate, one thin line per seed (a mean can hide a seed that
    never leaves the chance loss)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: skipping the figure (pip install matplotlib)")
        return
    losses = any(r.get("train_history") for runs in groups.values() for r in runs)
    swept = len({lr for _, lr in groups}) > 1
    shown = [v for v in study.variants if v in best]
    width = max(len(columns) if swept else 1, len(study.curves), len(shown) if losses else 1)
    rows = [row for row, wanted in (("sweep", swept), ("curves", True), ("losses", losses)) if wanted]
    fig, axes = plt.subplots(len(rows), width, figsize=(3.6 * width, 3.5 * len(rows)), squeeze=False)
    axes = dict(zip(rows, axes))
    for variant in study.variants:
        if variant not in best:
            continue
        lrs = sorted(lr for v, lr in groups if v == variant)
        for ax, column in zip(axes.get("sweep", []), columns):
            values = [[r["results"][column] for r in groups[variant, lr]] for lr in lrs]
            ax.errorbar(lrs, [statistics.fmean(v) for v in values], yerr=[statistics.pstdev(v) for v in values],
                        marker="o", capsize=3, label=variant)  # fmt: skip
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_xlabel("learning rate")
            ax.set_title(column, fontsize=9)
        runs = groups[(variant, best[variant])]
        for ax, (key, transform) in zip(axes["curves"], study.curves.items()):
            series = [[(h["step"], transform(h[key])) for h in r["history"] if key in h] for r in runs]
            steps = [s for s, _ in series[0]]
            values = list(zip(*[[v for _, v in run] for run in series]))
            (line,) = ax.plot(steps, [statistics.fmean(v) for v in values], marker=".", label=f"{variant} (lr {best[variant]:g})")
            ax.fill_between(steps, [min(v) for v in values], [max(v) for v in values], alpha=0.2, color=line.get_color())
            ax.set_xlabel("step")
            ax.set_title(key, fontsize=9)
        if losses:
            ax = axes["losses"][shown.index(variant)]
            color = axes["curves"][0].lines[-1].get_color()
            for run in runs:
                history = run.get("train_history", [])
                ax.plot([e["step"] for e in history], [e["loss"] for e in history], color=color, linewidth=0.9)
            ax.set_xlabel("step")
            ax.set_title(f"{variant}: training loss, each seed", fontsize=9)
    for ax in (ax for row in axes.values() for ax in row):
        if not ax.has_data():
            ax.axis("off")
    for row in ("sweep", "curves"):
        if row in axes:
            axes[row][0].legend(fontsize=7)
    if losses:  # one scale for every variant's losses
        top = max(ax.get_ylim()[1] for ax in axes["losses"] if ax.has_data())
        for ax in axes["losses"]:
            ax.set_ylim(0, top)
    fig.suptitle(f"{study_name}: learning curves at each variant's best learning rate" + (", and the sweep (top)" if swept else ""))
    fig.tight_layout()
    FIGURES.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURES / f"{study_name}.png", dpi=110)
    plt.close(fig)


def to_bits(nats: float) -> float:
    return nats / math.log(2)


def main(studies: dict[str, Study], description: str | None,
         commands: dict[str, tuple[str, Callable[[argparse.Namespace], None]]] | None = None) -> None:  # fmt: skip
    """The ``run`` / ``report`` command line of the study file that calls it (``--study`` takes several names, or
    shell-style patterns such as ``map-mamba2-*``); ``commands`` adds the file's own (name → help, function)."""
    module = Path(sys.argv[0]).stem
    sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    extra = commands or {}
    subparsers = parser.add_subparsers(dest="command", required=True)
    run_parser = subparsers.add_parser("run", help="train the missing cells of studies")
    run_parser.add_argument("--study", nargs="+", required=True, help=f"names or patterns: {sorted(studies)}")
    run_parser.add_argument("--workers", type=int, default=2,
                            help="parallel runs (threads are split between them); 0: one by one in this process")  # fmt: skip
    run_parser.add_argument("--only", nargs="+", metavar="VARIANT:LR", help="run only these cells, e.g. default:0.003")
    run_parser.add_argument("--sweep_only", action="store_true", help="stop after the sweep seeds")
    report_parser = subparsers.add_parser("report", help="tables and the figure from the results")
    for sub in (run_parser, report_parser):
        sub.add_argument("--results", metavar="DIR", help="results, run folders, data and figures under DIR (dry runs)")
    report_parser.add_argument("--study", nargs="+", required=True, help=f"names or patterns: {sorted(studies)}")
    report_parser.add_argument("--metric", help="fills {metric} in the study's columns, e.g. greedy_token_accuracy")
    for name, (help_text, _) in extra.items():
        subparsers.add_parser(name, help=help_text)
    args = parser.parse_args()
    if args.command in extra:
        extra[args.command][1](args)
        return
    if args.results:
        os.environ[RESULTS_VARIABLE] = str(Path(args.results).resolve())
        locate(os.environ[RESULTS_VARIABLE])
    names = [n for pattern in args.study for n in sorted(studies) if fnmatch.fnmatchcase(n, pattern)]
    unknown = [p for p in args.study if not any(fnmatch.fnmatchcase(n, p) for n in studies)]
    if unknown:
        parser.error(f"no study matches {unknown}; the studies: {sorted(studies)}")
    for name in dict.fromkeys(names):
        if args.command == "run":
            run(module, name, args.workers, args.only, args.sweep_only)
        else:
            print(report(module, name, args.metric) + "\n")
