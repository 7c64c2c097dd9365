"""Mamba 2's mixer (``Mamba2Mixer``) and its copies in the hybrids Bamba (``BambaMixer``) and Zamba 2
(``Zamba2MambaMixer``), transformers ≥ 5.23.

``in_proj`` rows z [0:I], x [I:2I], W_B [2I:2I+GN], W_C [2I+GN:2I+2GN], Δ [2I+2GN:2I+2GN+H]; ``conv1d`` channels
x [0:I], B [I:I+GN], C [I+GN:I+2GN]; ``A_log``, ``dt_bias``, ``D`` per head. Δ = softplus(in_proj(x)[Δ rows] +
dt_bias), so Δ ≈ 1 zeroes those rows of ``in_proj``.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import writable, write
from .ssm import MixerLayout, ProjectionRows, ScanInputs


class Mamba2MixerLayout(MixerLayout):
    description = "Mamba 2: in_proj = [z, x, W_B, W_C, Δ], A_log per head"

    def projection_rows(self, mixer: nn.Module) -> ProjectionRows:
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

    def delta_bias(self, mixer: nn.Module) -> nn.Parameter:
        return mixer.dt_bias

    def check(self, mixer: nn.Module, model: nn.Module) -> None:
        if mixer.num_heads % mixer.n_groups:
            raise ValueError(f"Mamba 2 needs num_heads ({mixer.num_heads}) divisible by n_groups ({mixer.n_groups})")

    def zero_delta_projection(self, mixer: nn.Module, rows: ProjectionRows) -> None:
        for param in (rows.weight, rows.bias):
            if param is not None and writable(param):
                new = param.detach().clone()
                new[rows.delta] = 0.0
                write(param, new)

    @staticmethod
    def a_times_delta(a: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return a * delta  # both per head

    def scan_projection(self, mixer: nn.Module) -> nn.Module:
        return mixer.in_proj

    def scan_inputs(self, mixer: nn.Module, projection_input: torch.Tensor, projected: torch.Tensor) -> ScanInputs:
        """From ``in_proj``'s output: the same split, causal conv and Δ as ``Mamba2Mixer.forward``."""
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
