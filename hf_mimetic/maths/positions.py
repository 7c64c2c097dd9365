"""Fixed sinusoidal position tables (Vaswani et al. 2017; 2-D variant as in MAE / MoCo v3).

The thesis (§3.2.4, Table 3.4) uses sinusoidal position embeddings: with random (learned) ones the mimetic init is
~3% worse on CIFAR-10. transformers' ViT and GPT-2 only have learned tables, so the init writes these values into them.
"""

from __future__ import annotations

import torch


def sinusoidal_1d(num_positions: int, dim: int, base: float = 10000.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The 1-D sin-cos table ``P[t, 2i] = sin(t / base^(2i/dim))``, ``P[t, 2i+1] = cos(…)``, shape ``(num_positions, dim)``.

    An odd ``dim`` keeps the first ``dim`` columns of the ``dim + 1`` table.

    Example:
        >>> sinusoidal_1d(1024, 768).shape
        torch.Size([1024, 768])
    """
    half = (dim + 1) // 2
    inv_freq = base ** (-torch.arange(half, dtype=torch.float64) * 2.0 / (2 * half))
    angles = torch.arange(num_positions, dtype=torch.float64)[:, None] * inv_freq[None, :]
    table = torch.stack((angles.sin(), angles.cos()), dim=-1).reshape(num_positions, 2 * half)
    return table[:, :dim].to(dtype)


def sinusoidal_2d(grid_height: int, grid_width: int, dim: int, base: float = 10000.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The 2-D sin-cos table for a ``grid_height × grid_width`` patch grid, row-major, shape ``(H·W, dim)``.

    The first half of the channels encodes the row, the second half the column, each with :func:`sinusoidal_1d`.

    Example:
        >>> sinusoidal_2d(16, 16, 192).shape  # ViT-Tiny on 32×32 images with 2×2 patches
        torch.Size([256, 192])
    """
    row_dim = (dim + 1) // 2
    rows = sinusoidal_1d(grid_height, row_dim, base, torch.float64)
    cols = sinusoidal_1d(grid_width, dim - row_dim, base, torch.float64)
    table = torch.cat(
        (
            rows[:, None, :].expand(grid_height, grid_width, row_dim),
            cols[None, :, :].expand(grid_height, grid_width, dim - row_dim),
        ),
        dim=-1,
    )
    return table.reshape(grid_height * grid_width, dim).to(dtype)
