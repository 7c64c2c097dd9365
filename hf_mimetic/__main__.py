"""``python -m hf_mimetic``: a short copy experiment, default vs mimetic init, and the structure the init creates.

    python -m hf_mimetic                 # copy task, Mamba 2, default vs mimetic (about 5 min on 2 CPU cores)
    python -m hf_mimetic structure       # per-layer structure of each family's init, default → mimetic

The copy experiment is one seed of the regime where the length-generalisation study (docs/RESULTS.md) found a
robust difference over 3 seeds, each init at its own best learning rate from the same sweep.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor

import torch
from transformers import AutoModel, GPT2Config, Mamba2Config, MambaConfig, ViTConfig

from . import MimeticConfig
from .functional.attention import expected_qk_diagonal
from .structure import format_comparison, structure

SMALL_CONFIGS = {
    # The thesis's CIFAR-10 ViT-Tiny (§3.2.4): width 192, depth 12, 3 heads, patch 2, 32×32 input.
    "vit": lambda: ViTConfig(hidden_size=192, num_hidden_layers=12, num_attention_heads=3, intermediate_size=768, image_size=32, patch_size=2),
    "gpt2": lambda: GPT2Config(n_embd=256, n_layer=4, n_head=4, vocab_size=256, n_positions=256, bos_token_id=255, eos_token_id=255),
    "mamba": lambda: MambaConfig(hidden_size=128, num_hidden_layers=4, state_size=32, vocab_size=32),
    "mamba2": lambda: Mamba2Config(hidden_size=128, num_hidden_layers=4, state_size=32, num_heads=4, head_dim=64, n_groups=1, vocab_size=32),
}

# The study's regime (experiments/length_generalization.py, study "copy-mamba2"): thesis-like Mamba 2, copy, L = 50,
# 200 steps, each init at its best learning rate of the sweep {3e-4, 1e-3, 3e-3, 1e-2}.
COPY_MODEL = {"model_type": "mamba2", "hidden_size": 256, "num_layers": 2, "state_size": 128, "head_dim": 64}
COPY_TASK = {"task": "copy", "vocab_size": 16, "train_max_len": 50, "eval_examples": 64}
COPY_STEPS = 200
COPY_LR = {"default": 3e-3, "mimetic": 1e-2}


def describe(family: str, seed: int = 0) -> str:
    """Markdown section for one family: its config, the expected values and the default → mimetic table."""
    config = SMALL_CONFIGS[family]()
    torch.manual_seed(seed)
    default = AutoModel.from_config(config)
    torch.manual_seed(seed)
    mimetic = AutoModel.from_config(config, mimetic_init=True)
    cfg = MimeticConfig.resolve(family, mimetic.config.mimetic_config)
    header = f"## {family}: {type(mimetic).__name__}, preset {cfg.preset!r}"
    if family in ("vit", "gpt2"):
        d, heads = config.hidden_size, config.num_attention_heads
        expected = expected_qk_diagonal(d, d // heads, cfg.qk_alpha, cfg.qk_beta)
        notes = (
            f"d={d}, heads={heads}. Targets: W_Q^h W_K^hᵀ ≈ {cfg.qk_alpha}·Z + {cfg.qk_beta}·I (rank {d // heads}: "
            f"expected diagonal {expected:.3f}); W_V W_O = {cfg.vo_alpha}·Z {'-' if cfg.vo_sign < 0 else '+'} {cfg.vo_beta}·I."
        )
    else:
        notes = (
            f"d={config.hidden_size}, state={config.state_size}. A_log shifted by -{cfg.ssm_a_shift} (Ā ≈ 1), Δ bias = "
            f"softplus⁻¹(1) (Δ = 1), W_C ← ½(W_C′ + W_B), identity conv: {cfg.ssm_identity_conv}. Δ and Ā at zero input."
        )
    return f"{header}\n{notes}\n\n{format_comparison(structure(default), structure(mimetic))}\n"


def _train_copy(mimetic_init: bool, learning_rate: float, seed: int, steps: int, threads: int) -> dict:
    from .synthetic import (
        MimeticArguments,
        SyntheticModelArguments,
        SyntheticTaskArguments,
        study_training_arguments,
        train_synthetic,
    )

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as output_dir:
        args = study_training_arguments(output_dir, steps, learning_rate, seed)
        model_args = SyntheticModelArguments(**COPY_MODEL, mimetic_init=mimetic_init)
        return train_synthetic(model_args, SyntheticTaskArguments(**COPY_TASK), MimeticArguments(), args)


def copy_experiment(seed: int = 0, steps: int = COPY_STEPS) -> str:
    """Train the default and the mimetic Mamba 2 side by side (one process each) and tabulate accuracy per length."""
    threads = max(1, (os.cpu_count() or 2) // 2)
    with ProcessPoolExecutor(max_workers=2) as pool:
        runs = {name: pool.submit(_train_copy, name == "mimetic", COPY_LR[name], seed, steps, threads) for name in COPY_LR}
        results = {name: future.result()["eval"] for name, future in runs.items()}
    lengths = sorted(results["default"])
    lines = [
        f"Copy, Mamba 2 (d=256, 2 layers, state 128, head dim 64), trained on lengths 1..{COPY_TASK['train_max_len']} for "
        f"{steps} steps, seed {seed}. Token accuracy, teacher-forced / greedy decoding:",
        "",
        "| init | " + " | ".join(f"L={n}" for n in lengths) + " |",
        "|---|" + "---:|" * len(lengths),
    ]
    for name, per_length in results.items():
        cells = [f"{per_length[n]['tf_token_accuracy']:.3f} / {per_length[n]['greedy_token_accuracy']:.3f}" for n in lengths]
        lines.append(f"| {name} (lr {COPY_LR[name]:g}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hf_mimetic", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=["copy", "structure"], default="copy")
    parser.add_argument("--family", choices=sorted(SMALL_CONFIGS), action="append", help="structure: repeatable; default all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=COPY_STEPS, help="copy: training steps")
    args = parser.parse_args(argv)
    if args.command == "structure":
        for family in args.family or SMALL_CONFIGS:
            print(describe(family, args.seed))
    else:
        print(copy_experiment(args.seed, args.steps))


if __name__ == "__main__":
    main()
