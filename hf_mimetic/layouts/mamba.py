"""Mamba 1's mixer (``MambaMixer``) and its copies (``FalconMambaMixer``, Jamba's ``JambaMambaMixer``), transformers
≥ 5.23. The copies RMS-normalise Δ, B and C after ``x_proj``, which changes none of the init's rules.

``in_proj`` rows [0:E] = x, [E:2E] = z; ``conv1d`` (E, 1, K); ``x_proj`` rows [0:R] = Δ, [R:R+N] = W_B,
[R+N:R+2N] = W_C; ``dt_proj`` (E, R) + bias; ``A_log`` (E, N). Δ = softplus(dt_proj(x_proj(x)[:R])), so Δ ≈ 1 zeroes
``dt_proj.weight`` and sets its bias.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import zero_
from .ssm import MixerLayout, ProjectionRows, ScanInputs


class MambaMixerLayout(MixerLayout):
    description = "Mamba: x_proj = [Δ, W_B, W_C], dt_proj, A_log (E, N)"

    def projection_rows(self, mixer: nn.Module) -> ProjectionRows:
        r, n = mixer.time_step_rank, mixer.ssm_state_size
        return ProjectionRows(mixer.x_proj.weight, None, slice(0, r), slice(r, r + n), slice(r + n, r + 2 * n), 1)

    def delta_bias(self, mixer: nn.Module) -> nn.Parameter:
        return mixer.dt_proj.bias

    def zero_delta_projection(self, mixer: nn.Module, rows: ProjectionRows) -> None:
        zero_(mixer.dt_proj.weight)

    @staticmethod
    def a_times_delta(a: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return a * delta[:, None]  # A (E, N), Δ (E,)

    def scan_projection(self, mixer: nn.Module) -> nn.Module:
        return mixer.x_proj  # its input is the conv output x, the scan's input

    def scan_inputs(self, mixer: nn.Module, projection_input: torch.Tensor, projected: torch.Tensor) -> ScanInputs:
        """From ``x_proj``'s input (``x``, ``(batch, T, E)``) and output ``[Δ rank, B, C]``."""
        rank, state = mixer.time_step_rank, mixer.ssm_state_size
        time_step, b, c = projected.split([rank, state, state], dim=-1)
        if hasattr(mixer, "b_layernorm"):  # FalconMamba and Jamba normalise them before the scan
            time_step, b, c = mixer.dt_layernorm(time_step), mixer.b_layernorm(b), mixer.c_layernorm(c)
        delta = nn.functional.softplus(mixer.dt_proj(time_step).float())  # dt_proj's bias is Mamba's Δ bias
        a = -torch.exp(mixer.A_log.float())
        return ScanInputs(projection_input[..., None], delta, a, b[:, :, None], c[:, :, None])
