"""The README's quick start, extracted from README.md and run as written, with narrower models.

Only the widths and vocabularies shrink (the listed substitutions, each of which must apply, so that a README edit
cannot silently skip them); every import, call, keyword and layer count is the README's. As printed, the quick start
builds GPT-2 small twice and a 48-layer GPT-2: minutes of CPU and about 3 GB, too much for CI.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"
NARROW_GPT2 = "n_embd=64, n_head=4, vocab_size=256, n_positions=64"
NARROW = {
    "GPT2Config(": f"GPT2Config({NARROW_GPT2}, ",
    "LlamaConfig(hidden_size=256,": "LlamaConfig(vocab_size=256, intermediate_size=512, hidden_size=256,",
}


def quick_start() -> str:
    text = README.read_text()
    section = text[text.index("## Quick start") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_quick_start_runs_and_does_what_its_comments_say():
    code = quick_start()
    for old, new in NARROW.items():
        assert old in code, f"the quick start no longer has {old!r}: update this test's substitutions"
        code = code.replace(old, new)
    namespace: dict = {}
    torch.manual_seed(0)
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102

    vit = namespace["vit"]
    assert type(vit).__name__ == "ViTForImageClassification"
    recipe = vit.config.mimetic_config
    assert (recipe["preset"], recipe["qk_alpha"], recipe["qk_beta"], recipe["vo_alpha"], recipe["vo_beta"]) == ("vision", 0.7, 0.7, 0.4, 0.4)
    assert recipe["initialized"]["attention"] == list(range(12))

    gpt2 = namespace["gpt2"].config.mimetic_config
    assert (gpt2["preset"], gpt2["qk_alpha"], gpt2["qk_beta"], gpt2["vo_alpha"]) == ("language", 0.0, 0.6, 0.2)

    model = namespace["model"]  # built from the flags on the config, then apply_mimetic_init(model, vo=False)
    assert type(model).__name__ == "GPT2LMHeadModel" and model.config.mimetic_init is True
    assert model.config.mimetic_config["vo"] is False and model.config.mimetic_config["layers"] is None

    llama = namespace["llama"]
    assert type(llama).__name__ == "LlamaForCausalLM"
    assert llama.config.num_key_value_heads == 2 and llama.config.mimetic_config["preset"] == "decoder"

    convmixer = namespace["convmixer"]
    assert type(convmixer).__name__ == "ConvMixerForImageClassification"
    assert convmixer.config.mimetic_config["initialized"] == {"conv": list(range(8))}

    big = namespace["big"]  # materialised: real, finite tensors with the init
    assert not any(p.is_meta for p in big.parameters())
    assert all(torch.isfinite(p).all() for p in big.parameters())
    assert big.config.n_layer == 48 and big.config.mimetic_config["initialized"]["attention"] == list(range(48))
    attention = big.transformer.h[47].attn
    d = attention.embed_dim
    vo = attention.c_attn.weight.detach()[:, 2 * d :] @ attention.c_proj.weight.detach()
    assert vo.diagonal().mean().item() < -0.15  # W_V W_O ≈ 0.2·Z − 0.2·I
