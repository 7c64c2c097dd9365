"""Mamba's "attention maps": the matrix ``M`` with ``y = M x`` of each layer's scan on a given input (thesis eq. 3.34).

:func:`capture_scan_inputs` runs the model once and records, for every mixer a layout recognises, what its selective
scan reads: ``x``, ``Δ``, ``A``, ``B`` and ``C`` (:class:`~hf_mimetic.layouts.ssm.ScanInputs`, whose ``matrix()``
computes ``M`` with the pure :func:`hf_mimetic.maths.ssm.ssm_attention_matrix`). :func:`attention_maps` averages ``M``
over channels (Mamba 1) or heads (Mamba 2), one ``T × T`` map per layer, as in the thesis's figures.

Example:
    >>> maps = attention_maps(model, torch.tensor([[3, 1, 4, 17, 3, 1, 4]]))  # doctest: +SKIP
    >>> maps.shape  # (layers, batch, T, T)
    torch.Size([2, 1, 7, 7])
"""

from __future__ import annotations

import torch
from torch import nn

from ..layouts.ssm import MixerLayout, ScanInputs
from ..plan import Target, find_targets


def ssm_mixers(model: nn.Module) -> list[Target]:
    """The SSM mixers of ``model`` in layer order, with their layouts (``ValueError`` if it has none)."""
    mixers = [t for t in find_targets(model)[0] if isinstance(t.layout, MixerLayout)]
    if not mixers:
        raise ValueError(f"{type(model).__name__} has no SSM mixer that hf_mimetic recognises")
    return mixers


@torch.no_grad()
def capture_scan_inputs(model: nn.Module, input_ids: torch.Tensor) -> list[ScanInputs]:
    """Run ``model`` on ``input_ids`` (no cache) and return each mixer's :class:`ScanInputs`, in layer order.

    A forward hook on the projection the mixer calls as a module (Mamba: ``x_proj``, whose input is the scan's
    ``x``; Mamba 2: ``in_proj``) records the tensors; the few steps between them and the scan are recomputed
    exactly as the mixer does them. The model's train/eval mode is restored afterwards.
    """
    captured: list[ScanInputs] = []
    hooks = []
    for target in ssm_mixers(model):
        layout, mixer = target.layout, target.module

        def record(projection, args, output, layout=layout, mixer=mixer):
            captured.append(layout.scan_inputs(mixer, args[0], output))

        hooks.append(layout.scan_projection(mixer).register_forward_hook(record))
    was_training = model.training
    model.eval()
    try:
        model(input_ids=input_ids, use_cache=False)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return captured


def attention_maps(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """Per layer, ``M`` averaged over channels (Mamba 1) or heads (Mamba 2): ``(layers, batch, T, T)``."""
    return torch.stack([inputs.matrix().mean(dim=1) for inputs in capture_scan_inputs(model, input_ids)])


__all__ = ["ScanInputs", "attention_maps", "capture_scan_inputs", "ssm_mixers"]
