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


def ssm_attention_matrix(delta: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor,
                         max_block_elements: int = 1 << 22) -> torch.Tensor:
    """The matrix ``M`` of a selective SSM on one input, so that its scan is ``y = M x`` (thesis eq. 3.34).

    ``M_ij = C_iᵀ (Π_{k=j+1..i} Ā_k) B̄_j`` for ``i ≥ j`` and 0 above the diagonal, with ``Ā_k = exp(Δ_k A)`` and
    ``B̄_j = Δ_j B_j`` (zero-order hold for A, Euler for B, as in Mamba). ``y`` is the scan alone: no ``D·x`` skip,
    no gate, zero initial state.

    Args:
        delta: ``(batch, T, H)`` step sizes ``Δ > 0``: one per channel (Mamba 1, ``H = E``) or per head (Mamba 2).
        a: continuous-time ``A < 0``: ``(H, N)`` (Mamba 1) or ``(H,)``, one scalar per head (Mamba 2).
        b, c: ``(batch, T, H, N)``, or ``(batch, T, 1, N)`` when every channel shares them (Mamba 1).
        max_block_elements: bound on the ``(batch, T, T, heads, N)`` intermediate of a per-state ``A``; channels
            are processed in blocks that fit.

    Returns:
        ``(batch, H, T, T)``, float32: channel ``p`` of head ``h`` reads ``y[:, i, h, p] = Σ_j M[:, h, i, j] x[:, j, h, p]``.

    Example:
        >>> delta, a = torch.ones(1, 3, 1), torch.tensor([0.0])  # Ā = 1, B̄ = B: causal linear attention
        >>> b = c = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
        >>> ssm_attention_matrix(delta, a, b, c)[0, 0]
        tensor([[1., 0., 0.],
                [2., 4., 0.],
                [3., 6., 9.]])
    """
    batch, length, heads = delta.shape
    delta = delta.double()
    b, c = b.double().expand(-1, -1, heads, -1), c.double().expand(-1, -1, heads, -1)  # views, no copies
    cumulative = delta.cumsum(dim=1)
    # gap[:, i, j, h] = Σ_{k=j+1..i} Δ_k, set to 0 above the diagonal so that exp never overflows there.
    causal = torch.ones(length, length, dtype=torch.bool, device=delta.device).tril()
    gap = (cumulative[:, :, None] - cumulative[:, None, :]).masked_fill(~causal[None, :, :, None], 0.0)
    if a.dim() == 1:  # one decay per head: it factors out of the sum over the state
        matrix = torch.einsum("bihn,bjhn->bijh", c, b) * torch.exp(gap * a.double())
    else:
        block = max(1, max_block_elements // (batch * length * length * a.shape[1]))
        matrix = torch.cat([
            torch.einsum("bihn,bijhn,bjhn->bijh", c[:, :, h:h + block],
                         torch.exp(gap[..., h:h + block, None] * a[h:h + block].double()), b[:, :, h:h + block])
            for h in range(0, heads, block)
        ], dim=-1)  # fmt: skip
    matrix = matrix * delta[:, None, :, :] * causal[None, :, :, None]  # B̄_j = Δ_j B_j
    return matrix.permute(0, 3, 1, 2).float()
