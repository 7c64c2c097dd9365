"""What the state-space layouts share (thesis §3.3.2): Ā ≈ 1, Δ ≈ 1, W_C ← ½(W_C′ + W_B), the identity convolution.

A mixer layout says where Δ, W_B and W_C live among the rows of its projection (:meth:`MixerLayout.projection_rows`),
which bias is Δ's (:meth:`MixerLayout.delta_bias`), and how Δ broadcasts against A.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..config.ssm import SSMConfig
from ..maths.ssm import (
    bc_draw_std,
    correlated_readout,
    delta_one_bias,
    identity_conv_kernel,
    shifted_a_log,
    ssm_attention_matrix,
)
from .base import Layout, writable, write, zero_


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
class ScanInputs:
    """What one mixer's selective scan read: ``y = M x`` with ``M`` from ``delta, a, b, c`` (thesis eq. 3.34).

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


class MixerLayout(Layout):
    config = SSMConfig
    columns = {"mean_a_bar": "mean Ā", "mean_delta": "mean Δ", "bc_diagonal": "diag(W_Cᵀ W_B)"}

    def projection_rows(self, mixer: nn.Module) -> ProjectionRows:
        raise NotImplementedError

    def delta_bias(self, mixer: nn.Module) -> nn.Parameter:
        raise NotImplementedError

    def zero_delta_projection(self, mixer: nn.Module, rows: ProjectionRows) -> None:
        raise NotImplementedError

    @staticmethod
    def a_times_delta(a: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def scan_projection(self, mixer: nn.Module) -> nn.Module:
        """The projection the mixer calls as a module before its scan (a forward hook on it sees the scan's inputs)."""
        raise NotImplementedError

    def scan_inputs(self, mixer: nn.Module, projection_input: torch.Tensor, projected: torch.Tensor) -> ScanInputs:
        """The scan's inputs from what :meth:`scan_projection` received and returned, recomputing the few steps
        between them exactly as the mixer does."""
        raise NotImplementedError

    def initialize(self, mixer: nn.Module, cfg: SSMConfig, model: nn.Module, depth: float = 0.0) -> None:
        rows = self.projection_rows(mixer)
        if cfg.ssm_a and writable(mixer.A_log):
            # A = −exp(A_log) → A·e^(−c): Ā = exp(A·Δ) ≈ 1, the state keeps its history (eq. 3.38).
            write(mixer.A_log, shifted_a_log(mixer.A_log.detach().float(), cfg.ssm_a_shift))
        if cfg.ssm_delta:
            self.zero_delta_projection(mixer, rows)
            bias = self.delta_bias(mixer)
            write(bias, delta_one_bias(bias.shape))
        if cfg.ssm_bc and writable(rows.weight):
            new = rows.weight.detach().float().clone()
            w_b, w_c = new[rows.b], new[rows.c]
            if cfg.ssm_bc_diagonal is not None:
                std = bc_draw_std(mixer.ssm_state_size, cfg.ssm_bc_diagonal)
                w_b, w_c = torch.randn_like(w_b) * std, torch.randn_like(w_c) * std
            new[rows.b] = w_b
            new[rows.c] = correlated_readout(w_b, w_c)
            write(rows.weight, new)
        if cfg.ssm_identity_conv and writable(mixer.conv1d.weight):
            conv = mixer.conv1d
            write(conv.weight, identity_conv_kernel(conv.weight.shape[0], conv.weight.shape[-1]))
            zero_(conv.bias)

    def read(self, mixer: nn.Module) -> dict[str, Any]:
        """Input-free summaries: mean Ā and Δ at zero input (Δ = softplus(Δ bias)), mean diagonal of W_Cᵀ W_B."""
        rows = self.projection_rows(mixer)
        delta = nn.functional.softplus(self.delta_bias(mixer).detach().float())
        a = -torch.exp(mixer.A_log.detach().float())
        a_bar = torch.exp(self.a_times_delta(a, delta))
        weight = rows.weight.detach().float()
        w_b = weight[rows.b].view(rows.groups, mixer.ssm_state_size, -1)
        w_c = weight[rows.c].view(rows.groups, mixer.ssm_state_size, -1)
        bc_diagonal = (w_c * w_b).sum(dim=1).mean()  # diag(W_Cᵀ W_B)_i = Σ_n W_C[n, i] W_B[n, i]
        return {"a_bar": a_bar, "delta": delta, "bc_diagonal": bc_diagonal.item()}

    def statistics(self, mixer: nn.Module) -> dict[str, float]:
        values = self.read(mixer)
        return {"mean_a_bar": values["a_bar"].mean().item(), "mean_delta": values["delta"].mean().item(), "bc_diagonal": values["bc_diagonal"]}
