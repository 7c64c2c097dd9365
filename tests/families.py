"""The configs the tests build each catalogued family from: the catalogue's example config, or a smaller one where
the example is slow to build for a test (the thesis's ViT-Tiny, a 256-wide GPT-2, ...)."""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, PretrainedConfig

from hf_mimetic import catalog

#: Smaller than the catalogue's examples; every other family is tested on its example.
SMALLER: dict[str, dict[str, Any]] = {
    "vit": dict(hidden_size=96, num_hidden_layers=3, num_attention_heads=3, intermediate_size=192, image_size=16,
                patch_size=4, num_labels=5),
    "gpt2": dict(n_embd=64, n_layer=3, n_head=4, vocab_size=64, n_positions=48, bos_token_id=0, eos_token_id=0),
    "mamba": dict(hidden_size=32, num_hidden_layers=3, state_size=8, vocab_size=32, conv_kernel=4),
    "mamba2": dict(hidden_size=32, num_hidden_layers=3, state_size=8, num_heads=4, head_dim=16, n_groups=2,
                   vocab_size=32, conv_kernel=4),
    "convmixer": dict(hidden_size=32, depth=3, kernel_size=5, patch_size=2, image_size=16, num_labels=5),
}  # fmt: skip


def tiny_config(model_type: str, **overrides: Any) -> PretrainedConfig:
    """The test config of ``model_type``, with ``overrides``."""
    base = SMALLER.get(model_type, catalog.family(model_type).example)
    return AutoConfig.for_model(model_type, **{**base, **overrides})
