"""Mamba's "attention maps": the matrix ``M`` with ``y = M x`` of each layer's scan on a given input (thesis eq. 3.34).

:func:`capture_scan_inputs` runs the model once and records, for every mixer, what its selective scan reads:
``x``, ``Δ``, ``A``, ``B`` and ``C``. :meth:`ScanInputs.matrix` turns them into ``M`` with the pure
:func:`hf_mimetic.functional.ssm.ssm_attention_matrix`; :func:`attention_maps` averages ``M`` over channels (Mamba 1)
or heads (Mamba 2), one ``T × T`` map per layer, as in the thesis's figures.

Example:
    >>> maps = attention_maps(model, torch.tensor([[3, 1, 4, 17, 3, 1, 4]]))  # doctest: +SKIP
    >>> maps.shape  # (layers, batch, T, T)
    torch.Size([2, 1, 7, 7])
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from transformers.models.mamba.modeling_mamba import MambaMixer
from transformers.models.mamba2.modeling_mamba2 import Mamba2Mixer

from .functional.ssm import ssm_attention_matrix


@dataclass
class ScanInputs:
    """What one mixer's selective scan read: ``y = M x`` with ``M`` from ``delta, a, b, c``.

    Shapes: ``x`` ``(batch, T, H, P)`` (Mamba 1: ``H = E`` channels, ``P = 1``; Mamba 2: heads × head dim),
    ``delta`` ``(batch, T, H)``, ``a`` ``(H, N)`` or ``(H,)``, ``b`` and ``c`` ``(batch, T, H or 1, N)``.
    """

    x: torch.Tensor
    delta: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    c: torch.Tensor

    def matrix(self) -> torch.Tensor:
        """``M``, ``(batch, H, T, T)``."""
        return ssm_attention_matrix(self.delta, self.a, self.b, self.c)

    def scan_output(self) -> torch.Tensor:
        """``y = M x``, ``(batch, T, H, P)``: the scan without the ``D·x`` skip and the gate."""
        return torch.einsum("bhij,bjhp->bihp", self.matrix(), self.x.float())


def _mamba_inputs(mixer: MambaMixer, x: torch.Tensor, projected: torch.Tensor) -> ScanInputs:
    """Mamba 1 from ``x_proj``'s input (the conv output ``x``, ``(batch, T, E)``) and output ``[Δ rank, B, C]``."""
    rank, state = mixer.time_step_rank, mixer.ssm_state_size
    time_step, b, c = projected.split([rank, state, state], dim=-1)
    delta = nn.functional.softplus(mixer.dt_proj(time_step).float())  # dt_proj's bias is Mamba's Δ bias
    a = -torch.exp(mixer.A_log.float())
    return ScanInputs(x[..., None], delta, a, b[:, :, None], c[:, :, None])


def _mamba2_inputs(mixer: Mamba2Mixer, projected: torch.Tensor) -> ScanInputs:
    """Mamba 2 from ``in_proj``'s output: the same split, causal conv and Δ as ``Mamba2Mixer.forward``."""
    batch, length, _ = projected.shape
    groups, state = mixer.n_groups, mixer.ssm_state_size
    _, x_b_c, dt = projected.split([mixer.intermediate_size, mixer.conv_dim, mixer.num_heads], dim=-1)
    # conv1d pads kernel − 1 on both sides; the first T outputs are the causal convolution.
    x_b_c = mixer.act(mixer.conv1d(x_b_c.transpose(1, 2))[..., :length].transpose(1, 2))
    x, b, c = x_b_c.split([mixer.intermediate_size, groups * state, groups * state], dim=-1)
    delta = nn.functional.softplus(dt.float() + mixer.dt_bias.float()).clamp(*mixer.time_step_limit)
    heads_per_group = mixer.num_heads // groups
    b, c = (t.view(batch, length, groups, state).repeat_interleave(heads_per_group, dim=2) for t in (b, c))
    x = x.view(batch, length, mixer.num_heads, mixer.head_dim)
    return ScanInputs(x, delta, -torch.exp(mixer.A_log.float()), b, c)


def ssm_mixers(model: nn.Module) -> list[nn.Module]:
    """The Mamba or Mamba 2 mixers of ``model`` in layer order (``ValueError`` for other models)."""
    mixers = [m for m in model.modules() if isinstance(m, (MambaMixer, Mamba2Mixer))]
    if not mixers:
        raise ValueError(f"{type(model).__name__} has no Mamba or Mamba 2 mixer")
    return mixers


def _record(
    mixer: nn.Module, captured: list[ScanInputs], projection: nn.Module, args: tuple, output: torch.Tensor
) -> None:
    """Forward hook on ``projection`` (bound to its mixer with ``partial``)."""
    if isinstance(mixer, MambaMixer):
        captured.append(_mamba_inputs(mixer, args[0], output))
    else:
        captured.append(_mamba2_inputs(mixer, output))


@torch.no_grad()
def capture_scan_inputs(model: nn.Module, input_ids: torch.Tensor) -> list[ScanInputs]:
    """Run ``model`` on ``input_ids`` (no cache) and return each mixer's :class:`ScanInputs`, in layer order.

    Forward hooks on the projection the mixer calls as a module (Mamba: ``x_proj``, whose input is the scan's
    ``x``; Mamba 2: ``in_proj``) record the tensors; the few steps between them and the scan are recomputed
    exactly as the mixer does them. The model's train/eval mode is restored afterwards.
    """
    captured: list[ScanInputs] = []
    hooks = []
    for mixer in ssm_mixers(model):
        projection = mixer.x_proj if isinstance(mixer, MambaMixer) else mixer.in_proj
        hooks.append(projection.register_forward_hook(partial(_record, mixer, captured)))
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
