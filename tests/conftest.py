"""Shared by the tests: a small config of each catalogued model type (:mod:`families`; all build in well under a
second on CPU).

Tests that take the ``family`` fixture run once per catalogued model type, so a new catalogue entry is tested
without new test code.
"""

from __future__ import annotations

from functools import partial

import pytest

import hf_mimetic  # noqa: F401  (installs the hook)
from families import tiny_config
from hf_mimetic import catalog, loading


def config_of(model_type: str, **kwargs):
    """The test config of ``model_type`` (:func:`families.tiny_config`), with ``kwargs``."""
    return tiny_config(model_type, **kwargs)


vit_config, gpt2_config, mamba_config, mamba2_config = (partial(config_of, t) for t in ("vit", "gpt2", "mamba", "mamba2"))
CONFIGS = {model_type: partial(config_of, model_type) for model_type in catalog.model_types()}


@pytest.fixture(params=catalog.model_types())
def family(request) -> str:
    return request.param


def build(family: str, seed: int = 0, config=None, **kwargs):
    """The family's model as users train it (its auto class), from ``config`` or its test config, built from ``seed``."""
    return loading.build(family, seed=seed, config=config if config is not None else config_of(family), **kwargs)


def native_init_of(model_type: str, monkeypatch, **kwargs) -> tuple[set[str], set[str]]:
    """Build ``model_type`` (as :func:`build`) and return the names of its parameters that transformers' native init
    functions drew into, and of those the mimetic layouts wrote (through ``transformers.initialization.copy_``, the
    one writer of :func:`hf_mimetic.layouts.base.write`)."""
    import transformers.initialization as hf_init

    drawn, written = set(), set()
    for name, function in list(hf_init.TORCH_INIT_FUNCTIONS.items()):
        def recording(tensor, *args, _function=function, **kw):
            drawn.add(id(tensor))
            return _function(tensor, *args, **kw)
        monkeypatch.setitem(hf_init.TORCH_INIT_FUNCTIONS, name, recording)
    copy = hf_init.copy_

    def recording_copy(tensor, other):
        written.add(id(tensor))
        return copy(tensor, other)

    monkeypatch.setattr(hf_init, "copy_", recording_copy)
    model = build(model_type, **kwargs)
    monkeypatch.undo()
    named = dict(model.named_parameters())
    assert not any(hasattr(p, "_is_hf_initialized") for p in named.values()), "a skip flag was left behind"
    return {n for n, p in named.items() if id(p) in drawn}, {n for n, p in named.items() if id(p) in written}


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
