"""The deep Mamba 2 cells at init (issue 16): why might the preset on all of 8 layers stop the learning rates that
the preset on layers 0–1 only trains with? Measured on one copy batch, no training:

- the residual stream's RMS after each layer (does the preset make activations grow with depth?);
- the gradient norm per layer (how much larger a gradient do the upper mimetic layers pass back?);
- how far the first Adam step moves the logits on a held-out batch (Adam's first step is
  ``lr · sign(grad)``; at 1e-3, about the size of the first warmed-up steps of the map's rates).

    python experiments/deep_mamba_at_init.py            # about a minute on 2 cores

The map's cell ``map-mamba2-copy-d8-n32-w128-s200`` (its model, task and variants; width 128, state 32) at 2 and 8
layers.
"""

from __future__ import annotations

import torch
from where_it_helps import STUDIES

from hf_mimetic.tasks import TaskCollator, TaskConfig, make_train_example
from hf_mimetic.train.synthetic import SyntheticModelArguments, SyntheticTaskArguments, build_model

CELL = STUDIES["map-mamba2-copy-d8-n32-w128-s200"]
INPUTS = ("input_ids", "labels", "attention_mask")


def copy_batch(task: TaskConfig, first_index: int, size: int = 32) -> dict[str, torch.Tensor]:
    batch = TaskCollator(pad_token_id=task.pad_token_id)(
        [make_train_example(task, first_index + i) for i in range(size)]
    )
    return {key: batch[key] for key in INPUTS}


def main() -> None:
    task_arguments = SyntheticTaskArguments(**CELL.run.task)
    task = task_arguments.task_config()
    train, held_out = copy_batch(task, 0), copy_batch(task, 10_000)
    print(
        "| layers | init | residual RMS after each layer | gradient norm: total, per layer | logit change, first "
        "Adam step at 1e-3 |\n|---|---|---|---|---|"
    )
    for depth in (2, 8):
        for name, recipe in CELL.variants.items():
            torch.manual_seed(0)
            args = SyntheticModelArguments(**{**CELL.run.model, "num_layers": depth}, mimetic_init=recipe is not None)
            model = build_model(args, task, task_arguments.train_max_len, recipe or {})
            rms = residual_rms_per_layer(model, train)
            model(**train).loss.backward()
            per_layer = [gradient_norm(block) for block in model.backbone.layers]
            total = gradient_norm(model)
            change = first_step_logit_change(model, held_out, learning_rate=1e-3)
            print(
                f"| {depth} | {name} | {' '.join(f'{v:.2f}' for v in rms)} | {total:.2f}: "
                f"{' '.join(f'{v:.2f}' for v in per_layer)} | {change:.3f} |"
            )


def gradient_norm(module: torch.nn.Module) -> float:
    return sum(p.grad.pow(2).sum().item() for p in module.parameters() if p.grad is not None) ** 0.5


@torch.no_grad()
def residual_rms_per_layer(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> list[float]:
    """RMS of the residual stream after each block, read with forward hooks on ``model.backbone.layers``."""
    rms: list[float] = []

    def record(_module: torch.nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        rms.append(output.pow(2).mean().sqrt().item())

    hooks = [block.register_forward_hook(record) for block in model.backbone.layers]
    model(**batch)
    for hook in hooks:
        hook.remove()
    return rms


@torch.no_grad()
def first_step_logit_change(model: torch.nn.Module, batch: dict[str, torch.Tensor], learning_rate: float) -> float:
    """RMS change of the logits on ``batch`` after Adam's first step (``lr · sign(grad)``; clipping does not change
    it), from the gradients already in ``model``; the weights are restored afterwards."""
    before = model(**batch).logits
    steps = [(p, learning_rate * torch.sign(p.grad)) for p in model.parameters() if p.grad is not None]
    for parameter, step in steps:
        parameter -= step
    after = model(**batch).logits
    for parameter, step in steps:
        parameter += step
    return (after - before).pow(2).mean().sqrt().item()


if __name__ == "__main__":
    main()
