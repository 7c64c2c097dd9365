"""Length-generalisation study: default vs mimetic init, each at its own best learning rate, over seeds.

    python experiments/length_generalization.py run --study copy-mamba2 --workers 2     # resumable
    python experiments/length_generalization.py report --study copy-mamba2              # table + figures

``run`` trains every (variant, learning rate, seed) cell of a study with :func:`hf_mimetic.train.synthetic.train_synthetic`
and appends one JSON line per finished run to ``experiments/results/<study>.jsonl``; cells already there are
skipped, so an interrupted study resumes where it stopped. ``report`` picks, for each variant separately, the
learning rate with the best mean teacher-forced token accuracy at 2L (the comparison metric, so the baseline gets
the same tuning as mimetic init), prints mean ± std over seeds at L, 2L and 4L plus the whole sweep, and draws
learning curves and the sweep into ``docs/figures/``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
FIGURES = ROOT.parent / "docs" / "figures"

# Mimetic variants (None: default init). Components of thesis Fig. 3.26: A (ssm_a), Δ (ssm_delta),
# W_Cᵀ W_B (ssm_bc), identity conv (ssm_identity_conv).
ALL_SSM = {"ssm_a": True, "ssm_delta": True, "ssm_bc": True, "ssm_identity_conv": True}
VARIANTS: dict[str, dict[str, Any] | None] = {
    "default": None,
    "mimetic": {"ssm_identity_conv": True},  # the thesis's Mamba 2 recipe: all four components
    "mimetic-no-conv": {"ssm_identity_conv": False},
    "only-A": {**{k: False for k in ALL_SSM}, "ssm_a": True},
    "only-A-delta": {**{k: False for k in ALL_SSM}, "ssm_a": True, "ssm_delta": True},  # = no W_Cᵀ W_B
    "no-A": {"ssm_a": False, "ssm_identity_conv": False},
    "no-delta": {"ssm_delta": False, "ssm_identity_conv": False},  # = A + W_Cᵀ W_B
    "bc-diag-1": {"ssm_bc_diagonal": 1.0, "ssm_identity_conv": False},
    "one-layer": {"layers": [1], "ssm_identity_conv": False},
}


@dataclass
class Study:
    """A grid: model/task flags shared by every run, and the variants × learning rates × seeds to cross."""

    model: dict[str, Any]
    task: dict[str, Any]
    variants: list[str]
    learning_rates: list[float]
    #: More learning rates for some variants (to extend a sweep whose best value sits at its edge).
    extra_learning_rates: dict[str, list[float]] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    max_steps: int = 200
    eval_steps: int = 100
    batch_size: int = 32
    #: False for the GPU studies (the thesis regime, out of reach of 2 CPU cores).
    use_cpu: bool = True


ABLATION = ["only-A", "only-A-delta", "no-A", "no-delta", "bc-diag-1", "one-layer"]
# The thesis-like regime as far as 2 CPU cores allow (thesis: Mamba 2 hidden up to 1024, state 128, head dim 64,
# train length 50, 5000 steps): Mamba 2 with state 128 and head dim 64, width 256, 2 layers, copy, L = 50.
THESIS_LIKE_MAMBA2 = {"model_type": "mamba2", "hidden_size": 256, "num_layers": 2, "state_size": 128, "head_dim": 64}
STUDIES = {
    "copy-mamba2": Study(
        model=THESIS_LIKE_MAMBA2,
        task={"task": "copy", "vocab_size": 16, "train_max_len": 50, "eval_examples": 64},
        variants=["default", "mimetic", "mimetic-no-conv"],
        learning_rates=[3e-4, 1e-3, 3e-3],
        # Both inits were best at 3e-3, the edge of the first sweep; the thesis recipe learned nothing at any lr.
        extra_learning_rates={"default": [1e-2], "mimetic-no-conv": [1e-2]},
    ),
    # Thesis Fig. 3.26 at the learning rate where the full (no-conv) recipe was best in "copy-mamba2".
    "copy-mamba2-ablation": Study(
        model=THESIS_LIKE_MAMBA2,
        task={"task": "copy", "vocab_size": 16, "train_max_len": 50, "eval_examples": 64},
        variants=ABLATION,
        learning_rates=[1e-2],
    ),
    # The first, single-seed pass of the ablation, at lr 1e-3 (kept: it shows the ranking depends on the lr).
    "copy-mamba2-ablation-lr1e-3": Study(
        model=THESIS_LIKE_MAMBA2,
        task={"task": "copy", "vocab_size": 16, "train_max_len": 50, "eval_examples": 64},
        variants=ABLATION,
        learning_rates=[1e-3],
        seeds=[0],
    ),
    # MQAR with up to 16 key-value pairs in training (65 tokens); 2L and 4L need 64 keys, hence 128 tokens.
    "mqar-mamba2": Study(
        model=THESIS_LIKE_MAMBA2,
        task={"task": "mqar", "vocab_size": 128, "train_max_len": 16, "eval_examples": 64},
        variants=["default", "mimetic-no-conv"],
        learning_rates=[1e-3, 3e-3, 1e-2],
    ),
    # Mamba 1 with the thesis's state size 32 (its recipe has no identity conv, as the library's preset).
    "copy-mamba": Study(
        model={"model_type": "mamba", "hidden_size": 256, "num_layers": 2, "state_size": 32},
        task={"task": "copy", "vocab_size": 16, "train_max_len": 50, "eval_examples": 64},
        variants=["default", "mimetic-no-conv"],
        learning_rates=[1e-3, 3e-3, 1e-2],
    ),
    # The thesis regime itself (§3.3.2–3.3.4: 24 layers, width 1024 as in Jelassi et al. 2024; train length 50,
    # eval 100 and 300; 5000 steps; 5 seeds). GPU only (pip install -e ".[cuda]"; chunk 256 suits mamba-ssm's kernels):
    #   python experiments/length_generalization.py run --study copy-mamba2-thesis --workers 1
    "copy-mamba2-thesis": Study(
        model={**THESIS_LIKE_MAMBA2, "hidden_size": 1024, "num_layers": 24, "chunk_size": 256},
        task={"task": "copy", "vocab_size": 16, "train_max_len": 50, "eval_lengths": [50, 100, 300], "eval_examples": 256},
        variants=["default", "mimetic", "mimetic-no-conv", *ABLATION],
        learning_rates=[3e-4, 1e-3, 3e-3],
        seeds=[0, 1, 2, 3, 4],
        max_steps=5000,
        eval_steps=500,
        use_cpu=False,
    ),
    "copy-mamba-thesis": Study(
        model={"model_type": "mamba", "hidden_size": 1024, "num_layers": 24, "state_size": 32},
        task={"task": "copy", "vocab_size": 16, "train_max_len": 50, "eval_lengths": [50, 100, 300], "eval_examples": 256},
        variants=["default", "mimetic-no-conv", "mimetic", "only-A"],
        learning_rates=[3e-4, 1e-3, 3e-3],
        seeds=[0, 1, 2, 3, 4],
        max_steps=5000,
        eval_steps=500,
        use_cpu=False,
    ),
}


def cell_key(study: str, variant: str, learning_rate: float, seed: int) -> str:
    return f"{study}/{variant}/lr={learning_rate:g}/seed={seed}"


def run_cell(study_name: str, variant: str, learning_rate: float, seed: int, threads: int) -> dict[str, Any]:
    """Train one cell in this (worker) process and return its JSON record."""
    import torch
    from hf_mimetic.train.synthetic import (
        MimeticArguments,
        SyntheticModelArguments,
        SyntheticTaskArguments,
        study_training_arguments,
        train_synthetic,
    )

    torch.set_num_threads(threads)
    study = STUDIES[study_name]
    overrides = VARIANTS[variant]
    model_args = SyntheticModelArguments(**study.model, mimetic_init=overrides is not None)
    task_args = SyntheticTaskArguments(**study.task)
    output_dir = RESULTS / "runs" / cell_key(study_name, variant, learning_rate, seed).replace("/", "_")
    training_args = study_training_arguments(
        str(output_dir), study.max_steps, learning_rate, seed, batch_size=study.batch_size, eval_steps=study.eval_steps,
        use_cpu=study.use_cpu,
    )
    result = train_synthetic(model_args, task_args, MimeticArguments(**(overrides or {})), training_args)
    return {"key": cell_key(study_name, variant, learning_rate, seed), "study": study_name, "variant": variant, "learning_rate": learning_rate, "seed": seed, **result}


def load(study: str) -> list[dict[str, Any]]:
    path = RESULTS / f"{study}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run(study_name: str, workers: int, only: list[str] | None = None) -> None:
    """Train the study's missing cells; ``only`` (``"variant:lr"`` items) restricts them, e.g. to finish the seeds
    of each variant's best learning rate when the whole grid does not fit the time."""
    study = STUDIES[study_name]
    RESULTS.mkdir(parents=True, exist_ok=True)
    grid = {f"{v}:{lr:g}" for v in study.variants for lr in study.learning_rates + study.extra_learning_rates.get(v, [])}
    if only and set(only) - grid:
        raise SystemExit(f"--only {sorted(set(only) - grid)} not in study {study_name}; its cells: {sorted(grid)}")
    done = {record["key"] for record in load(study_name)}
    cells = [
        (variant, lr, seed)
        for seed in study.seeds
        for variant in study.variants
        for lr in study.learning_rates + study.extra_learning_rates.get(variant, [])
        if cell_key(study_name, variant, lr, seed) not in done and (not only or f"{variant}:{lr:g}" in only)
    ]
    print(f"{study_name}: {len(done)} runs done, {len(cells)} to go, {workers} worker(s)", flush=True)
    threads = max(1, (os.cpu_count() or 2) // workers)
    with ProcessPoolExecutor(max_workers=workers) as pool, open(RESULTS / f"{study_name}.jsonl", "a") as out:
        futures = {pool.submit(run_cell, study_name, v, lr, s, threads): (v, lr, s) for v, lr, s in cells}
        for future in as_completed(futures):
            record = future.result()
            out.write(json.dumps(record) + "\n")
            out.flush()
            summary = ", ".join(f"{n}: {m['tf_token_accuracy']:.3f}" for n, m in record["eval"].items())
            print(f"{record['key']}  ({record['train']['train_seconds']:.0f} s)  {summary}", flush=True)


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(records: list[dict[str, Any]], metric: str = "tf_token_accuracy") -> dict[tuple[str, float], dict[str, Any]]:
    """Per (variant, lr): mean/std/min/max over seeds of ``metric`` at each eval length."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["variant"], record["learning_rate"]), []).append(record)
    table = {}
    for key, runs in groups.items():
        lengths = sorted(int(n) for n in runs[0]["eval"])
        table[key] = {
            "seeds": len(runs),
            **{n: [run["eval"][str(n)][metric] for run in runs] for n in lengths},
            "lengths": lengths,
        }
    return table


def report(study_name: str, metric: str) -> str:
    records = load(study_name)
    if not records:
        raise SystemExit(f"no results for {study_name}; run it first")
    table = summarise(records, metric)
    lengths = next(iter(table.values()))["lengths"]
    selection_length = lengths[1] if len(lengths) > 1 else lengths[0]
    best: dict[str, float] = {}
    for (variant, lr), row in table.items():
        if variant not in best or statistics.fmean(row[selection_length]) > statistics.fmean(table[(variant, best[variant])][selection_length]):
            best[variant] = lr
    cols = " | ".join(f"L={n}" for n in lengths)
    lines = [f"### {study_name}: {metric}, best lr per variant (selected on L={selection_length}), mean ± std [min, max] over seeds", "", f"| variant | lr | seeds | {cols} |", "|---|---:|---:|" + "---:|" * len(lengths)]
    for variant, lr in best.items():
        row = table[(variant, lr)]
        cells = " | ".join(_cell(row[n]) for n in lengths)
        lines.append(f"| {variant} | {lr:g} | {row['seeds']} | {cells} |")
    lines += ["", f"Whole sweep ({metric}):", "", f"| variant | lr | seeds | {cols} |", "|---|---:|---:|" + "---:|" * len(lengths)]
    for (variant, lr), row in sorted(table.items()):
        lines.append(f"| {variant} | {lr:g} | {row['seeds']} | " + " | ".join(_cell(row[n]) for n in lengths) + " |")
    _figures(study_name, records, best, metric)
    return "\n".join(lines)


def _cell(values: list[float]) -> str:
    mean, std = _mean_std(values)
    return f"{mean:.3f} ± {std:.3f} [{min(values):.2f}, {max(values):.2f}]"


def _figures(study_name: str, records: list[dict[str, Any]], best: dict[str, float], metric: str) -> None:
    """Learning curves (teacher-forced token accuracy per eval length vs step, best lr) and the lr sweep."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: skipping figures (pip install matplotlib)")
        return
    FIGURES.mkdir(parents=True, exist_ok=True)
    lengths = sorted(int(n) for n in records[0]["eval"])
    fig, axes = plt.subplots(1, len(lengths), figsize=(4.2 * len(lengths), 3.4), sharey=True)
    for variant, lr in best.items():
        runs = [r for r in records if r["variant"] == variant and r["learning_rate"] == lr]
        for ax, n in zip(axes, lengths):
            key = f"eval_L{n}_token_accuracy"
            steps = [h["step"] for h in runs[0]["history"] if key in h]
            curves = [[h[key] for h in r["history"] if key in h] for r in runs]
            mean = [statistics.fmean(v) for v in zip(*curves)]
            low = [min(v) for v in zip(*curves)]
            high = [max(v) for v in zip(*curves)]
            (line,) = ax.plot(steps, mean, marker="o", label=f"{variant} (lr {lr:g})")
            ax.fill_between(steps, low, high, alpha=0.2, color=line.get_color())
            ax.set_title(f"length {n}")
            ax.set_xlabel("step")
    axes[0].set_ylabel("teacher-forced token accuracy")
    axes[-1].legend(fontsize=8)
    fig.suptitle(f"{study_name}: mean and min–max over seeds")
    fig.tight_layout()
    fig.savefig(FIGURES / f"{study_name}-curves.png", dpi=110)
    plt.close(fig)

    table = summarise(records, metric)
    if len({lr for _, lr in table}) < 2:
        return  # a single learning rate: no sweep to draw
    fig, axes = plt.subplots(1, len(lengths), figsize=(4.2 * len(lengths), 3.4), sharey=True)
    for variant in best:
        lrs = sorted(lr for v, lr in table if v == variant)
        for ax, n in zip(axes, lengths):
            means = [statistics.fmean(table[(variant, lr)][n]) for lr in lrs]
            errs = [_mean_std(table[(variant, lr)][n])[1] for lr in lrs]
            ax.errorbar(lrs, means, yerr=errs, marker="o", capsize=3, label=variant)
            ax.set_xscale("log")
            ax.set_title(f"length {n}")
            ax.set_xlabel("learning rate")
    axes[0].set_ylabel(f"final {metric}")
    axes[-1].legend(fontsize=8)
    fig.suptitle(f"{study_name}: learning-rate sweep (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(FIGURES / f"{study_name}-sweep.png", dpi=110)
    plt.close(fig)


def study_parser(
    description: str, studies: list[str]
) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser, argparse.ArgumentParser]:
    """The ``run`` / ``report`` command line of a study runner: ``(parser, run_parser, report_parser)``."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="train the missing cells of a study")
    run_parser.add_argument("--study", choices=sorted(studies), required=True)
    run_parser.add_argument("--workers", type=int, default=2, help="parallel runs (threads are split between them)")
    report_parser = sub.add_parser("report", help="table and figures from the results")
    report_parser.add_argument("--study", choices=sorted(studies), required=True)
    return parser, run_parser, report_parser


def main() -> None:
    parser, run_parser, report_parser = study_parser(__doc__, list(STUDIES))
    run_parser.add_argument("--only", nargs="+", metavar="VARIANT:LR", help="run only these cells, e.g. default:0.003")
    report_parser.add_argument("--metric", default="tf_token_accuracy", help="e.g. greedy_exact_match")
    args = parser.parse_args()
    if args.command == "run":
        run(args.study, args.workers, args.only)
    else:
        print(report(args.study, args.metric))


if __name__ == "__main__":
    main()
