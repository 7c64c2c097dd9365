"""Small configs of each supported family, shared by the tests (all build in well under a second on CPU)."""

from __future__ import annotations

import pytest
from transformers import GPT2Config, Mamba2Config, MambaConfig, ViTConfig

import hf_mimetic  # noqa: F401  (installs the hook)


def vit_config(**kwargs) -> ViTConfig:
    base = dict(hidden_size=96, num_hidden_layers=3, num_attention_heads=3, intermediate_size=192, image_size=16, patch_size=4, num_labels=5)
    return ViTConfig(**{**base, **kwargs})


def gpt2_config(**kwargs) -> GPT2Config:
    base = dict(n_embd=64, n_layer=3, n_head=4, vocab_size=64, n_positions=48, bos_token_id=0, eos_token_id=0)
    return GPT2Config(**{**base, **kwargs})


def mamba_config(**kwargs) -> MambaConfig:
    base = dict(hidden_size=32, num_hidden_layers=3, state_size=8, vocab_size=32, conv_kernel=4)
    return MambaConfig(**{**base, **kwargs})


def mamba2_config(**kwargs) -> Mamba2Config:
    base = dict(hidden_size=32, num_hidden_layers=3, state_size=8, num_heads=4, head_dim=16, n_groups=2, vocab_size=32, conv_kernel=4)
    return Mamba2Config(**{**base, **kwargs})


CONFIGS = {"vit": vit_config, "gpt2": gpt2_config, "mamba": mamba_config, "mamba2": mamba2_config}


@pytest.fixture(params=sorted(CONFIGS))
def family(request) -> str:
    return request.param


def build(family: str, seed: int = 0, config=None, **kwargs):
    """The family's head model (what users train) from ``config`` or the small default, built from ``seed``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForImageClassification

    torch.manual_seed(seed)
    auto = AutoModelForImageClassification if family == "vit" else AutoModelForCausalLM
    return auto.from_config(config if config is not None else CONFIGS[family](), **kwargs)
