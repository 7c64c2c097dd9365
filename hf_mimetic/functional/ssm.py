"""Parameter rules for mimetic state-space layers (thesis §3.3.2, eqs. 3.29–3.38).

A Mamba layer computes ``y = M x`` with ``M_ij = C_iᵀ (Π_{k=j+1..i} Ā_k) B̄_j`` (eq. 3.34). If ``Ā ≈ 1`` and
``Δ ≈ 1`` this becomes causal linear attention ``Xᵀ W_Cᵀ W_B X`` (eq. 3.38); with ``W_Cᵀ W_B ≈ I`` correlated tokens
attend to each other. Each rule below is one of the four components of the thesis's ablation (Fig. 3.26).
"""

from __future__ import annotations

import math

import torch

#: softplus⁻¹(1) = log(e − 1) ≈ 0.5413: the Δ bias that makes ``Δ = softplus(W_Δ x + b_Δ) = 1`` when ``W_Δ = 0``.
DELTA_ONE_BIAS = math.log(math.e - 1.0)


def shifted_a_log(a_log: torch.Tensor, shift: float) -> torch.Tensor:
    """``A_log − c``, so that ``A = −exp(A_log)`` shrinks by ``e^c`` and ``Ā = exp(A·Δ) ≈ 1``.

    The thesis writes ``A = −exp(−c·A_log)``, a change of parameterisation. transformers fixes
    ``A = −exp(A_log)``, so our init-only reading subtracts ``c`` once at initialisation (c ∈ {2, 4, 8} in the
    thesis, 8 in its ablation). Gradients then act on ``A_log`` exactly as in stock Mamba.

    Example:
        >>> shifted_a_log(torch.log(torch.arange(1.0, 17.0)), 8.0).exp()[0]  # e^-8 ≈ 3.4e-4
    """
    return a_log - shift


def delta_one_bias(shape: tuple[int, ...] | torch.Size, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """A Δ bias filled with softplus⁻¹(1), to pair with a zeroed Δ projection (thesis: ``W_Δ ≈ 0``, ``b_Δ ≈ 0.54``)."""
    return torch.full(tuple(shape), DELTA_ONE_BIAS, dtype=dtype, device=device)


def correlated_readout(w_b: torch.Tensor, w_c: torch.Tensor) -> torch.Tensor:
    """``W_C ← ½(W_C′ + W_B)``: queries (C) correlated with keys (B), so ``W_Cᵀ W_B ≈ c·I`` on its diagonal.

    The thesis avoids ``W_C = W_B`` exactly, following Trockman & Kolter (2023). Both are ``(N, D)`` row blocks of
    the layer's projection (``B_t = W_B x_t``); the rule is elementwise, so the layout of rows does not matter.
    """
    return 0.5 * (w_c + w_b)


def bc_draw_std(state_size: int, target_diagonal: float) -> float:
    """Std of a fresh ``W_B``, ``W_C′`` draw making ``E[diag(W_Cᵀ W_B)] = target_diagonal`` after the ½ mix.

    With ``W_C = ½(W_C′ + W_B)`` and i.i.d. entries of variance ``σ²``: ``E[(W_Cᵀ W_B)_ii] = ½·N·σ²``.
    (The thesis keeps the layer's native draw; this option is our addition for the scale ablation.)
    """
    if target_diagonal <= 0:
        raise ValueError(f"ssm_bc_diagonal must be > 0, got {target_diagonal!r}")
    return math.sqrt(2.0 * target_diagonal / state_size)


def identity_conv_kernel(channels: int, kernel_size: int, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """Depthwise causal conv1d weight ``(channels, 1, kernel_size)`` that passes the current token through.

    transformers pads ``kernel_size − 1`` on the left and keeps the first ``T`` outputs, so the last tap multiplies
    the current token.
    """
    kernel = torch.zeros(channels, 1, kernel_size, dtype=dtype, device=device)
    kernel[:, 0, -1] = 1.0
    return kernel
