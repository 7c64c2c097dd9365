"""Adapters for state space models: Mamba 1 (``MambaMixer``) and Mamba 2 (``Mamba2Mixer``), transformers ≥ 5.23.

Layouts (rows of ``nn.Linear.weight`` are output features):

* Mamba: ``in_proj`` rows [0:E]=x, [E:2E]=z; ``conv1d`` (E, 1, K); ``x_proj`` rows [0:R]=Δ, [R:R+N]=W_B,
  [R+N:R+2N]=W_C; ``dt_proj`` (E, R) + bias; ``A_log`` (E, N).
* Mamba 2: ``in_proj`` rows z [0:I], x [I:2I], W_B [2I:2I+GN], W_C [2I+GN:2I+2GN], Δ [2I+2GN:2I+2GN+H];
  ``conv1d`` channels x [0:I], B [I:I+GN], C [I+GN:I+2GN]; ``A_log``, ``dt_bias``, ``D`` per head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn
from transformers.models.mamba.modeling_mamba import MambaMixer, MambaPreTrainedModel
from transformers.models.mamba2.modeling_mamba2 import Mamba2Mixer, Mamba2PreTrainedModel

from ..config import MimeticConfig
from ..functional.ssm import bc_draw_std, correlated_readout, delta_one_bias, identity_conv_kernel, shifted_a_log
from .base import Adapter, write, writable, zero_


@dataclass
class ProjectionRows:
    """Where Δ, W_B and W_C live among the rows of a mixer's projection, and that projection."""

    weight: nn.Parameter
    bias: nn.Parameter | None
    delta: slice
    b: slice
    c: slice
    groups: int  # W_B / W_C come in this many (N, D) blocks (Mamba 2's n_groups; 1 for Mamba)


@dataclass
class SSMLayerStats:
    """Input-free summaries of one mixer (Δ at zero input, so Δ = softplus(Δ bias))."""

    mean_a_bar: float  # mean of Ā = exp(A·Δ)
    mean_delta: float  # mean of Δ
    bc_diagonal: float  # mean diagonal of W_Cᵀ W_B, averaged over groups


class _SSMAdapter(Adapter):
    mixer_class: type

    def init_module(self, model: nn.Module, module: nn.Module, cfg: MimeticConfig) -> None:
        if isinstance(module, self.mixer_class) and cfg.selects(module.layer_idx):
            self._init_mixer(module, cfg)

    def target_modules(self, model: nn.Module) -> Iterator[nn.Module]:
        for layer in model.base_model.layers:
            yield layer.mixer

    def projection_rows(self, mixer: nn.Module) -> ProjectionRows:
        raise NotImplementedError

    def delta_bias(self, mixer: nn.Module) -> nn.Parameter:
        raise NotImplementedError

    def _init_mixer(self, mixer: nn.Module, cfg: MimeticConfig) -> None:
        rows = self.projection_rows(mixer)
        if cfg.ssm_a and writable(mixer.A_log):
            # A = −exp(A_log) → A·e^(−c): Ā = exp(A·Δ) ≈ 1, the state keeps its history (eq. 3.38).
            write(mixer.A_log, shifted_a_log(mixer.A_log.detach().float(), cfg.ssm_a_shift))
        if cfg.ssm_delta:
            self._init_delta(mixer, rows)
        if cfg.ssm_bc and writable(rows.weight):
            self._init_bc(rows, mixer.ssm_state_size, cfg)
        if cfg.ssm_identity_conv and writable(mixer.conv1d.weight):
            conv = mixer.conv1d
            write(conv.weight, identity_conv_kernel(conv.weight.shape[0], conv.weight.shape[-1]))
            zero_(conv.bias)

    def _init_delta(self, mixer: nn.Module, rows: ProjectionRows) -> None:
        bias = self.delta_bias(mixer)
        write(bias, delta_one_bias(bias.shape))

    def _init_bc(self, rows: ProjectionRows, state_size: int, cfg: MimeticConfig) -> None:
        new = rows.weight.detach().float().clone()
        w_b, w_c = new[rows.b], new[rows.c]
        if cfg.ssm_bc_diagonal is not None:
            std = bc_draw_std(state_size, cfg.ssm_bc_diagonal)
            w_b, w_c = torch.randn_like(w_b) * std, torch.randn_like(w_c) * std
        new[rows.b] = w_b
        new[rows.c] = correlated_readout(w_b, w_c)
        write(rows.weight, new)

    def layer_stats(self, model: nn.Module) -> list[SSMLayerStats]:
        """Per layer: mean Ā and Δ at zero input, and the mean diagonal of W_Cᵀ W_B."""
        stats = []
        for mixer in self.target_modules(model):
            rows = self.projection_rows(mixer)
            delta = nn.functional.softplus(self.delta_bias(mixer).detach().float())
            a = -torch.exp(mixer.A_log.detach().float())
            a_bar = torch.exp(self._broadcast_a_delta(a, delta))
            weight = rows.weight.detach().float()
            w_b = weight[rows.b].view(rows.groups, mixer.ssm_state_size, -1)
            w_c = weight[rows.c].view(rows.groups, mixer.ssm_state_size, -1)
            bc_diag = (w_c * w_b).sum(dim=1).mean()  # diag(W_Cᵀ W_B)_i = Σ_n W_C[n, i] W_B[n, i]
            stats.append(SSMLayerStats(a_bar.mean().item(), delta.mean().item(), bc_diag.item()))
        return stats

    @staticmethod
    def _broadcast_a_delta(a: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class MambaAdapter(_SSMAdapter):
    """Mamba 1: Δ = softplus(dt_proj(x_proj(x)[:R])), so Δ ≈ 1 zeroes ``dt_proj.weight`` and sets its bias."""

    family = "mamba"
    base_class = MambaPreTrainedModel
    mixer_class = MambaMixer

    def projection_rows(self, mixer: MambaMixer) -> ProjectionRows:
        r, n = mixer.time_step_rank, mixer.ssm_state_size
        return ProjectionRows(mixer.x_proj.weight, None, slice(0, r), slice(r, r + n), slice(r + n, r + 2 * n), 1)

    def delta_bias(self, mixer: MambaMixer) -> nn.Parameter:
        return mixer.dt_proj.bias

    def _init_delta(self, mixer: MambaMixer, rows: ProjectionRows) -> None:
        zero_(mixer.dt_proj.weight)
        super()._init_delta(mixer, rows)

    @staticmethod
    def _broadcast_a_delta(a: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return a * delta[:, None]  # A (E, N), Δ (E,)


class Mamba2Adapter(_SSMAdapter):
    """Mamba 2: Δ = softplus(in_proj(x)[Δ rows] + dt_bias) per head, so Δ ≈ 1 zeroes those rows of ``in_proj``."""

    family = "mamba2"
    base_class = Mamba2PreTrainedModel
    mixer_class = Mamba2Mixer

    def projection_rows(self, mixer: Mamba2Mixer) -> ProjectionRows:
        i, gn = mixer.intermediate_size, mixer.n_groups * mixer.ssm_state_size
        start = 2 * i
        return ProjectionRows(
            mixer.in_proj.weight,
            mixer.in_proj.bias,
            delta=slice(start + 2 * gn, start + 2 * gn + mixer.num_heads),
            b=slice(start, start + gn),
            c=slice(start + gn, start + 2 * gn),
            groups=mixer.n_groups,
        )

    def delta_bias(self, mixer: Mamba2Mixer) -> nn.Parameter:
        return mixer.dt_bias

    def check_config(self, config) -> None:
        if config.num_heads % config.n_groups:
            raise ValueError(f"Mamba 2 needs num_heads ({config.num_heads}) divisible by n_groups ({config.n_groups})")

    def _init_delta(self, mixer: Mamba2Mixer, rows: ProjectionRows) -> None:
        for param in (rows.weight, rows.bias):
            if param is not None and writable(param):
                new = param.detach().clone()
                new[rows.delta] = 0.0
                write(param, new)
        super()._init_delta(mixer, rows)

    @staticmethod
    def _broadcast_a_delta(a: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return a * delta  # both per head

