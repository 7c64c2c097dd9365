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


def assert_resume_loses_nothing(main, argv: list[str], tmp_path, steps: int = 4, by_name_last: bool = False) -> None:
    """Run a training script's ``main`` for ``steps`` steps in one go, and again stopped at the middle checkpoint and
    resumed from it (``--resume_from_checkpoint <path>``, or ``last`` if ``by_name_last``): the last checkpoints must
    agree on the step, the weights, the optimizer state and every logged metric (timings aside)."""
    import json
    import shutil

    import torch
    from safetensors.torch import load_file

    middle, last = f"checkpoint-{steps // 2}", f"checkpoint-{steps}"
    schedule = ["--max_steps", str(steps), "--save_strategy", "steps", "--save_steps", str(steps // 2),
                "--eval_strategy", "steps", "--eval_steps", str(steps // 2), "--logging_steps", "1"]  # fmt: skip
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    main([*argv, *schedule, "--output_dir", str(whole)])
    shutil.copytree(whole / middle, resumed / middle)  # as if the first run had been stopped there
    checkpoint = "last" if by_name_last else str(resumed / middle)
    main([*argv, *schedule, "--output_dir", str(resumed), "--resume_from_checkpoint", checkpoint])

    def logged(run):
        state = json.loads((run / last / "trainer_state.json").read_text())
        untimed = [{k: v for k, v in entry.items() if not any(t in k for t in ("runtime", "per_second", "total_flos"))}
                   for entry in state["log_history"]]  # fmt: skip
        return state["global_step"], untimed

    assert logged(resumed) == logged(whole)
    assert logged(whole)[0] == steps
    weights_whole = load_file(whole / last / "model.safetensors")
    weights_resumed = load_file(resumed / last / "model.safetensors")
    assert weights_whole.keys() == weights_resumed.keys()
    for name, tensor in weights_whole.items():
        assert torch.equal(tensor, weights_resumed[name]), name
    optimizer_whole = torch.load(whole / last / "optimizer.pt", weights_only=True)["state"]
    optimizer_resumed = torch.load(resumed / last / "optimizer.pt", weights_only=True)["state"]
    assert optimizer_whole.keys() == optimizer_resumed.keys() and optimizer_whole
    for index, state in optimizer_whole.items():
        for key, value in state.items():
            assert torch.equal(value, optimizer_resumed[index][key]), (index, key)
