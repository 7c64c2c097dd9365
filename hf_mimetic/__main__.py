"""``python -m hf_mimetic``: the structure mimetic init creates, default vs mimetic, for each supported family.

Each model is built twice from the same seed, once stock and once with ``mimetic_init=True``, and the per-layer
statistics of :mod:`hf_mimetic.structure` are printed side by side.
"""

from __future__ import annotations

import argparse

import torch
from transformers import AutoModel, GPT2Config, Mamba2Config, MambaConfig, ViTConfig

from . import MimeticConfig
from .functional.attention import expected_qk_diagonal
from .structure import format_comparison, structure

SMALL_CONFIGS = {
    # The thesis's CIFAR-10 ViT-Tiny (§3.2.4): width 192, depth 12, 3 heads, patch 2, 32×32 input.
    "vit": lambda: ViTConfig(hidden_size=192, num_hidden_layers=12, num_attention_heads=3, intermediate_size=768, image_size=32, patch_size=2),
    "gpt2": lambda: GPT2Config(n_embd=256, n_layer=4, n_head=4, vocab_size=256, n_positions=256),
    "mamba": lambda: MambaConfig(hidden_size=128, num_hidden_layers=4, state_size=32, vocab_size=32),
    "mamba2": lambda: Mamba2Config(hidden_size=128, num_hidden_layers=4, state_size=32, num_heads=4, head_dim=64, n_groups=1, vocab_size=32),
}


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hf_mimetic", description=__doc__)
    parser.add_argument("--family", choices=sorted(SMALL_CONFIGS), action="append", help="repeatable; default: all")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for family in args.family or SMALL_CONFIGS:
        print(describe(family, args.seed))


if __name__ == "__main__":
    main()
