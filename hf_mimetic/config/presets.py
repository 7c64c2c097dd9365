"""Named presets: starting values that a model family's recipe takes before the user's overrides.

A preset is a flat mapping from option to value; it may set options of several kinds (the attention values and the
position scale of a ViT, say). Every option a preset leaves out keeps its kind's default (the thesis's value).
"""

from __future__ import annotations

from typing import Any

#: Amplitude of the vision preset's sinusoidal position table, in units of the patch embeddings' std at init
#: (docs/RESULTS.md, "ViT": chosen on digits with 1×1 patches and MNIST with 2×2 RGB patches, the thesis's CIFAR shape;
#: 0.3 had the best worst seed on both).
VISION_POSITION_SCALE = 0.3

PRESETS: dict[str, dict[str, Any]] = {
    # Thesis §3.2.4 ("α1 = β1 = 0.7 and α2 = β2 = 0.4 for all experiments") with 2-D sinusoidal positions. The
    # thesis's γ = 1 was relative to its patch embeddings; transformers' ViT starts them at std 0.02·√(C·p²), 7–60×
    # smaller, so the table is scaled to them (amplitude 1 kept small-patch ViTs at chance, docs/RESULTS.md, "ViT").
    "vision": {
        "qk_alpha": 0.7, "qk_beta": 0.7, "vo_alpha": 0.4, "vo_beta": 0.4, "position_scale": VISION_POSITION_SCALE,
    },
    # Thesis §3.2.6 (chosen on char-level PTB). Its Transformer added sinusoids of amplitude 1 to token embeddings of
    # std ≈ 1; GPT-2's start at std initializer_range, and the table keeps that ratio (amplitude 1 relative to
    # std 0.02 stalled a char-level GPT-2 at the unigram loss, docs/RESULTS.md, "GPT-2").
    "language": {
        "qk_alpha": 0.0, "qk_beta": 0.5, "vo_alpha": 0.2, "vo_beta": 0.2, "position_scale": 1.0,
    },
    # Decoders with rotary positions (Llama, Mistral, Qwen, Gemma, Phi-3, GPT-NeoX, OLMo 2): the language values (thesis
    # §3.2.6), kept after measuring them on a small Llama (text and copy better, MQAR level: docs/RESULTS.md,
    # "Llama-style decoders"); rotary models have no position table.
    "decoder": {"qk_alpha": 0.0, "qk_beta": 0.5, "vo_alpha": 0.2, "vo_beta": 0.2},
    # Text encoders (BERT, RoBERTa, ModernBERT): the language values, learned positions at the token embeddings' scale
    # (masked language modelling with a small BERT: better than the default, docs/RESULTS.md, "BERT").
    "encoder": {
        "qk_alpha": 0.0, "qk_beta": 0.5, "vo_alpha": 0.2, "vo_beta": 0.2, "position_scale": 1.0,
    },
    # Thesis §3.3.2 (Fig. 3.26): c = 8, b_Δ = softplus⁻¹(1), A, Δ and W_Cᵀ W_B; no identity conv (docs/RESULTS.md,
    # "Mamba 2").
    "ssm": {
        "ssm_a": True, "ssm_a_shift": 8.0, "ssm_delta": True, "ssm_bc": True, "ssm_identity_conv": False,
    },
    # Thesis §3.1.2: the covariance construction with its example schedule σ0 = 0.5, vσ = 0.5, aσ = 3 (Fig. 3.7).
    "conv": {
        "conv_covariance": True, "conv_sigma0": 0.5, "conv_sigma_velocity": 0.5, "conv_sigma_acceleration": 3.0,
        "conv_gain": 1.0, "freeze_filters": False,
    },
}  # fmt: skip
# Hybrids (Jamba, Bamba, Zamba 2): each kind of layer with its own values.
PRESETS["hybrid"] = {**PRESETS["decoder"], **PRESETS["ssm"]}
