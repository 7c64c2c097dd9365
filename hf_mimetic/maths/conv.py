"""Closed-form covariances for depthwise convolution filters (thesis §3.1.2, eqs. 3.1, 3.5–3.11), and sampling.

A ``k × k`` filter ``F`` is drawn from ``N(0, Σ′)`` with ``Σ′ ∈ R^{k²×k²}`` built from Gaussian bumps. We keep
covariances as 4-D tensors ``T[i, j, l, m]`` = covariance of filter pixels ``(i, j)`` and ``(l, m)``: the thesis's
block form is ``[Σ_{i,j}]_{l,m} = T[i, j, l, m]`` (block ``(i, j)`` is the ``k × k`` matrix over ``(l, m)``), its
"rearranged" form (eq. 3.1) is ``Σ′ = T.reshape(k², k²)`` (``Σ′_{k·i+j, k·l+m} = T[i, j, l, m]``), and the
block-transpose (eq. 3.7) swaps the two pixel pairs, ``T^B[i, j, l, m] = T[l, m, i, j]``. A covariance is symmetric
exactly when ``T = T^B``.

Pure tensor maths: no transformers import.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import torch


def gaussian_bump(kernel_size: int, sigma: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``Z_σ[i, j] = exp(−((i − c)² + (j − c)²) / (2σ))``, ``c = ⌊k/2⌋`` (eq. 3.5; σ plays the role of a variance).

    Example:
        >>> gaussian_bump(3, 1.0)[1, 1]
        tensor(1., dtype=torch.float64)
    """
    return _bumps(kernel_size, [sigma]).to(dtype)[0]


def _bumps(kernel_size: int, sigmas: Sequence[float]) -> torch.Tensor:
    """:func:`gaussian_bump` for each ``σ``, ``(len(sigmas), k, k)``, float64."""
    _check_kernel_size(kernel_size)
    if not all(sigma > 0 for sigma in sigmas):
        raise ValueError(f"sigma must be > 0, got {[s for s in sigmas if not s > 0][0]!r}")
    return torch.exp(_squared_distances(kernel_size) / (-2 * torch.tensor(sigmas, dtype=torch.float64)[:, None, None]))


@functools.lru_cache(maxsize=16)
def _squared_distances(kernel_size: int) -> torch.Tensor:
    """``(i − c)² + (j − c)²`` (float64; cached: every layer of a model asks for the same ``k``)."""
    offsets = torch.arange(kernel_size, dtype=torch.float64) - kernel_size // 2
    return offsets[:, None] ** 2 + offsets[None, :] ** 2


@functools.lru_cache(maxsize=16)
def _shift_index(kernel_size: int) -> torch.Tensor:
    """``index[i, l] = (l − i + c) mod k`` (cached, as above)."""
    k = kernel_size
    return (torch.arange(k)[None, :] - torch.arange(k)[:, None] + k // 2) % k


def shifted_bumps(bump: torch.Tensor) -> torch.Tensor:
    """``C`` (eq. 3.6): block ``(i, j)`` is ``Z_σ`` cyclically shifted by ``(i − c, j − c)``, so its peak sits at
    ``(i, j)``: the "dynamic" positive component that follows the block. ``C^B = C`` because ``Z_σ`` is symmetric about
    its centre, with or without the wrap-around. ``bump`` ``(..., k, k)`` gives ``(..., k, k, k, k)``."""
    # roll(Z, (i − c, j − c))[l, m] = Z[(l − i + c) mod k, (m − j + c) mod k], for every block (i, j) at once.
    index = _shift_index(bump.shape[-1])
    return bump[..., index[:, None, :, None], index[None, :, None, :]]


def block_transpose(covariance: torch.Tensor) -> torch.Tensor:
    """``T^B[i, j, l, m] = T[l, m, i, j]`` (eq. 3.7): ``(X ⊗ Y)^B = Y ⊗ X``."""
    return covariance.permute(2, 3, 0, 1)


def filter_covariance(kernel_size: int, sigma: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The thesis's covariance (eq. 3.10), ``T`` of shape ``(k, k, k, k)``, before the projection to PSD:

    ``Σ = ½ [M ∘ (C − S) + S ∘ C]`` with ``S = 1 ⊗ Z_σ`` (block ``(i, j)`` is ``Z_σ``: a static, centred component),
    ``M = Z_σ ⊗ 1`` (block ``(i, j)`` is the constant ``Z_σ[i, j]``: more variance near the centre) and ``C`` from
    :func:`shifted_bumps`. It is the symmetric part ``½(Σ̂ + Σ̂^B)`` of ``Σ̂ = M ∘ (C − ½S)`` (eqs. 3.8–3.9).

    Example:
        >>> t = filter_covariance(9, 0.5)
        >>> torch.allclose(t, block_transpose(t))
        True
    """
    return _covariances(kernel_size, [sigma]).to(dtype)[0]


def _covariances(kernel_size: int, sigmas: Sequence[float]) -> torch.Tensor:
    """:func:`filter_covariance` for each ``σ`` at once, ``(len(sigmas), k, k, k, k)``, float64."""
    bump = _bumps(kernel_size, sigmas)
    static = bump[:, None, None, :, :]  # S[i, j, l, m] = Z[l, m]
    mask = bump[:, :, :, None, None]  # M[i, j, l, m] = Z[i, j]
    dynamic = shifted_bumps(bump)
    return 0.5 * (mask * (dynamic - static) + static * dynamic)


def psd_root(matrix: torch.Tensor) -> torch.Tensor:
    """``R`` with ``R Rᵀ`` the nearest positive semi-definite matrix (in Frobenius norm) to the symmetric part of
    ``matrix``: its eigenvectors scaled by the square roots of its positive eigenvalues, one column per positive
    eigenvalue (the others are set to zero by the projection, so their columns would be zero)."""
    [root] = _roots(*torch.linalg.eigh(0.5 * (matrix + matrix.mT)[None]))
    return root


def _roots(eigenvalues: torch.Tensor, eigenvectors: torch.Tensor) -> list[torch.Tensor]:
    """For each matrix of a batch, from its eigenpairs sorted ascending: the eigenvectors of its positive eigenvalues
    (the last ones) scaled by their square roots."""
    scaled = eigenvectors * eigenvalues.clamp_min(0).sqrt()[:, None, :]
    return [columns[:, negative:] for columns, negative in zip(scaled, (eigenvalues <= 0).sum(-1).tolist())]


def nearest_psd(matrix: torch.Tensor) -> torch.Tensor:
    """The nearest positive semi-definite matrix (in Frobenius norm) to a symmetric one: its negative eigenvalues set
    to zero."""
    root = psd_root(matrix)
    return root @ root.mT


def sigma_schedule(depth: float, sigma0: float, velocity: float, acceleration: float) -> float:
    """``σ(d) = σ0 + vσ·d + ½·aσ·d²`` (eq. 3.11), ``d ∈ [0, 1]`` the layer's relative depth ``(i − 1)/(D − 1)``:
    filters become more diffuse with depth.

    Example:
        >>> sigma_schedule(1.0, 0.5, 0.5, 3.0)  # the last layer with the thesis's example values (Fig. 3.7)
        2.5
    """
    return sigma0 + velocity * depth + 0.5 * acceleration * depth**2


#: (k, σ) → :func:`psd_root` of the construction's covariance: a few KB each, cleared when it reaches the bound.
_ROOTS: dict[tuple[int, float], torch.Tensor] = {}
_MAX_ROOTS = 1024


def construction_roots(kernel_size: int, sigmas: Sequence[float]) -> list[torch.Tensor]:
    """:func:`psd_root` of the construction's covariance (eq. 3.10) rearranged ``(k², k²)`` (eq. 3.1), float64, for
    each ``σ``.

    The roots not yet cached are computed in one batch (Σ for every ``σ``, then its eigendecomposition): inside a
    model's construction, one eigendecomposition per layer runs cold (between two layers' weight draws) and costs
    about twice as much. They are cached because they depend on ``k`` and ``σ`` only: building a model again
    (another seed, a sweep) skips the eigendecompositions. Read the results, do not modify them.

    Example:
        >>> [root.shape for root in construction_roots(7, [0.5, 2.5])]  # rank 29 of 49: Σ is not PSD before projection
        [torch.Size([49, 29]), torch.Size([49, 29])]
    """
    k = kernel_size
    missing = sorted({sigma for sigma in sigmas if (k, sigma) not in _ROOTS})
    if missing:
        if len(_ROOTS) + len(missing) > _MAX_ROOTS:
            _ROOTS.clear()
        covariances = _covariances(k, missing).reshape(len(missing), k * k, k * k)
        # Σ is unchanged by mirroring the filter left-right or up-down (Z_σ and the wrap-around shifts are symmetric
        # about the centre), so it is block-diagonal in a basis of filters even or odd under each mirror: four small
        # eigendecompositions (16, 12, 12, 9 for 7×7) give Σ's, at less than half the cost of one of size k².
        values, vectors = zip(*(_block_eigh(covariances, basis) for basis in _parity_bases(k)))
        values, order = torch.cat(values, -1).sort(-1)  # ascending again, as eigh returns them
        vectors = torch.cat(vectors, -1).gather(-1, order[:, None, :].expand(-1, k * k, -1))
        _ROOTS.update(zip(((k, sigma) for sigma in missing), _roots(values, vectors)))
    return [_ROOTS[(k, sigma)] for sigma in sigmas]


def _block_eigh(covariances: torch.Tensor, basis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues and eigenvectors (in pixel coordinates) of ``basisᵀ Σ basis`` for each ``Σ`` of a batch."""
    values, vectors = torch.linalg.eigh(basis.mT @ covariances @ basis)  # eigh reads one triangle: rounding is moot
    return values, basis @ vectors


@functools.lru_cache(maxsize=16)
def _parity_bases(kernel_size: int) -> tuple[torch.Tensor, ...]:
    """Orthonormal bases ``(k², n)`` of the ``k × k`` filters that are even or odd under the left-right mirror and
    under the up-down mirror (four subspaces, together all of ``R^{k²}``), row-major like eq. 3.1."""
    k, c = kernel_size, kernel_size // 2
    unit = torch.eye(k, dtype=torch.float64)
    even = torch.stack([unit[c]] + [(unit[c - a] + unit[c + a]) / math.sqrt(2) for a in range(1, c + 1)], 1)
    odd = torch.stack([(unit[c + a] - unit[c - a]) / math.sqrt(2) for a in range(1, c + 1)], 1) if c else unit[:, :0]
    return tuple(torch.kron(rows, columns) for rows in (even, odd) for columns in (even, odd))


def clear_roots() -> None:
    """Forget the cached roots of :func:`construction_roots` (the benchmarks time first builds this way)."""
    _ROOTS.clear()


def sample_filters(root: torch.Tensor, count: int, mean: torch.Tensor | None = None, scale: float = 1.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
    """``count`` filters ``(count, k, k)``, float32, from ``N(mean, scale² R Rᵀ)``, ``R = root`` of shape ``(k², r)``
    (from :func:`psd_root` or :func:`construction_roots`); pixel ``(i, j)`` of a filter is coordinate ``k·i + j`` of the
    sample (eq. 3.1), i.e. row-major.

    Example:
        >>> sample_filters(psd_root(filter_covariance(7, 1.0).reshape(49, 49)), 192).shape
        torch.Size([192, 7, 7])
    """
    k = math.isqrt(root.shape[0])
    # One standard normal per column of R (rank of the projected covariance: 29 of 49 for the 7×7 construction), not
    # per pixel: the projection's zeroed directions would only cost draws. float32 is explicit: models may set bf16 as
    # the default dtype.
    noise = torch.randn(count, root.shape[1], dtype=torch.float32, generator=generator)
    filters = noise @ (scale * root.mT).float()  # rows ~ N(0, scale² R Rᵀ); scaling R costs less than the filters
    if mean is not None:
        filters = filters + mean.reshape(1, k * k).float()
    return filters.reshape(count, k, k)


def empirical_covariance(filters: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(k, k)`` and covariance ``(k, k, k, k)`` of trained filters ``(count, k, k)`` (eq. 3.3)."""
    count, k, _ = filters.shape
    flat = filters.reshape(count, k * k).double()
    mean = flat.mean(0)
    centred = flat - mean
    covariance = centred.mT @ centred / max(count - 1, 1)
    return mean.reshape(k, k), covariance.reshape(k, k, k, k)


def interpolate_by_depth(items: list[torch.Tensor], count: int) -> list[torch.Tensor]:
    """``count`` tensors at evenly spaced relative depths, linearly interpolated from ``items`` (also evenly spaced):
    how the thesis transfers covariances from a shallower model to a deeper one."""
    if count == 1 or len(items) == 1:
        return [items[0].clone() for _ in range(count)] if len(items) == 1 else [items[0].clone()]
    result = []
    for index in range(count):
        position = index / (count - 1) * (len(items) - 1)
        low = min(int(position), len(items) - 2)
        weight = position - low
        result.append((1 - weight) * items[low] + weight * items[low + 1])
    return result


def _check_kernel_size(kernel_size: int) -> None:
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(
            f"the covariance construction needs an odd kernel size (its Gaussian bumps are centred on a pixel); got "
            f"{kernel_size}"
        )
