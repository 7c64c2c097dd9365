"""Closed-form factors for mimetic self-attention (thesis §3.2.3, eqs. 3.12–3.18).

Pure tensor maths: no transformers import. Row-vector convention, as in the thesis: ``q = x @ W_Q`` with
``W_Q ∈ R^{d×k}``. The adapters transpose on write where a layer stores ``y = x Wᵀ`` (``nn.Linear``).

Targets, per layer:

* QK, per head ``h``:  ``W_Q^h W_K^hᵀ ≈ α1·Z_h + β1·I``  (best rank-``k`` approximation, a fresh ``Z_h`` per head)
* VO:                  ``W_V W_O   =  α2·Z  − β2·I``     (full rank, exact)

with ``Z ~ N(0, I/d)`` (thesis) or uniform noise of the same variance (public re-implementations).
Everything is computed in float32 (or float64 if asked); callers cast on write.
"""

from __future__ import annotations

import math

import torch

NOISE_DISTRIBUTIONS = ("normal", "uniform")
QK_SVD_METHODS = ("auto", "exact", "randomized")


def attention_noise(
    *shape: int,
    distribution: str = "normal",
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Noise ``Z`` with zero mean and variance ``1/d`` per entry, ``d = shape[-1]`` (thesis: ``Z ~ N(0, I/d)``).

    ``distribution="uniform"`` draws ``U(-√(3/d), √(3/d))``, which has the same variance.

    Example:
        >>> attention_noise(4, 192, 192).var().item()  # ≈ 1/192
    """
    if distribution not in NOISE_DISTRIBUTIONS:
        raise ValueError(f"noise distribution must be one of {NOISE_DISTRIBUTIONS}, got {distribution!r}")
    d = shape[-1]
    if distribution == "normal":
        return torch.randn(*shape, dtype=dtype, device=device).mul_(1.0 / math.sqrt(d))
    bound = math.sqrt(3.0 / d)
    return torch.empty(*shape, dtype=dtype, device=device).uniform_(-bound, bound)


def random_orthonormal(*shape: int, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """Haar-distributed matrices with orthonormal columns, shape ``(..., n, k)`` with ``k ≤ n``."""
    q, r = torch.linalg.qr(torch.randn(*shape, dtype=dtype, device=device))
    # Fix the sign ambiguity of QR so the columns are Haar distributed (Mezzadri 2007).
    signs = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))
    signs = torch.where(signs == 0, torch.ones_like(signs), signs)
    return q * signs.unsqueeze(-2)


def top_svd(matrix: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact top-``rank`` SVD of square matrices ``(..., d, d)`` through the eigendecomposition of ``MᵀM``.

    ``MᵀM = V Σ² Vᵀ`` gives the right singular vectors and values, and ``U = M V Σ⁻¹``. On CPU this is several
    times faster than LAPACK's full SVD and exact for the top singular values used here (σ ≳ β − α > 0 for the QK
    targets). Returns ``U (..., d, rank)``, ``S (..., rank)``, ``V (..., d, rank)``, singular values descending.
    """
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix.mT @ matrix)  # ascending
    s = eigenvalues[..., -rank:].flip(-1).clamp_min(torch.finfo(matrix.dtype).tiny).sqrt()
    v = eigenvectors[..., -rank:].flip(-1)
    return (matrix @ v) / s.unsqueeze(-2), s, v


def randomized_svd(
    matrix: torch.Tensor, rank: int, oversample: int = 10, power_iters: int = 2
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batched rank-``rank`` SVD of matrices with a *flat* spectrum by random range finding (Halko et al. 2011).

    Returns ``U (..., m, rank)``, ``S (..., rank)``, ``V (..., n, rank)`` with ``matrix ≈ U diag(S) Vᵀ``.
    ``power_iters`` subspace iterations sharpen the top singular subspace, which matters here: the spectrum of
    ``α·Z + β·I`` is flat, so without them the sketch would miss much of the top-``rank`` subspace. Flatness
    (σ₁/σ_{rank+oversample} below ~3 for these targets) also keeps the sketch well conditioned without
    re-orthonormalising between iterations, so one QR suffices; the small final SVD goes through ``eigh``.
    """
    sketch_size = min(rank + oversample, matrix.shape[-1], matrix.shape[-2])
    omega = torch.randn(*matrix.shape[:-2], matrix.shape[-1], sketch_size, dtype=matrix.dtype, device=matrix.device)
    y = matrix @ omega
    for _ in range(power_iters):
        y = matrix @ (matrix.mT @ y)
    q, _ = torch.linalg.qr(y)
    small = q.mT @ matrix  # (..., sketch, n): matrix ≈ q @ small
    eigenvalues, u_small = torch.linalg.eigh(small @ small.mT)  # small smallᵀ = U_s Σ² U_sᵀ, ascending
    s = eigenvalues[..., -rank:].flip(-1).clamp_min(torch.finfo(matrix.dtype).tiny).sqrt()
    u_small = u_small[..., -rank:].flip(-1)
    return q @ u_small, s, (small.mT @ u_small) / s.unsqueeze(-2)


def qk_factors(
    num_heads: int,
    hidden_size: int,
    head_dim: int,
    alpha: float,
    beta: float,
    *,
    noise: str = "normal",
    svd: str = "auto",
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-head query/key factors with ``W_Q^h W_K^hᵀ`` the best rank-``k`` approximation of ``α·Z_h + β·I``.

    Thesis eqs. 3.16–3.18: ``U Σ Vᵀ = svd(α Z_h + β I)``, ``W_Q^h = U[:, :k] Σ[:k]^½``, ``W_K^h = V[:, :k] Σ[:k]^½``.
    With ``α = 0`` every singular value ties and an SVD routine would return the same (identity) basis for every
    head; any orthonormal basis is a valid SVD of ``β·I``, so each head gets a random one instead.

    Args:
        svd: ``"exact"`` (top-``k`` SVD through an eigendecomposition), ``"randomized"`` (a rank-``k+10`` sketch
            with two power iterations: its diagonal is within ~2% of exact for d=192, k=64 and ~6% low for d=768,
            k=64) or ``"auto"``: exact when ``k ≥ d/4`` (small d, where exact is cheap), randomized otherwise
            (5× faster for ViT-B, 7× for GPT-2 XL widths; docs/RESULTS.md, "Cost of construction").

    Returns:
        ``(W_Q, W_K)``, each of shape ``(num_heads, hidden_size, head_dim)``.

    Example:
        >>> wq, wk = qk_factors(3, 192, 64, alpha=0.7, beta=0.7)
        >>> (wq[0] @ wk[0].T).diagonal().mean()  # ≈ 0.39 for these shapes (rank-64 truncation of 0.7·I + noise)
    """
    if svd not in QK_SVD_METHODS:
        raise ValueError(f"qk_svd must be one of {QK_SVD_METHODS}, got {svd!r}")
    if alpha == 0.0:
        basis = random_orthonormal(num_heads, hidden_size, head_dim, dtype=dtype, device=device)
        factor = math.sqrt(beta) * basis
        return factor, factor.clone()
    target = attention_noise(num_heads, hidden_size, hidden_size, distribution=noise, dtype=dtype, device=device)
    target.mul_(alpha).diagonal(dim1=-2, dim2=-1).add_(beta)  # α·Z_h + β·I, in place (these are large)
    if svd == "exact" or (svd == "auto" and 4 * head_dim >= hidden_size):
        u, s, v = top_svd(target, head_dim)
    else:
        u, s, v = randomized_svd(target, head_dim)
    root = s.sqrt().unsqueeze(-2)
    return u * root, v * root


def vo_factors(
    hidden_size: int,
    alpha: float,
    beta: float,
    *,
    sign: int = -1,
    noise: str = "normal",
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Value/output factors with ``W_V W_O = α·Z + sign·β·I`` exactly (thesis eqs. 3.13–3.15).

    ``U Σ Vᵀ = svd(α Z + sign·β I)``, ``W_V = U Σ^½``, ``W_O = Σ^½ Vᵀ``. ``sign=-1`` is the thesis's choice
    (pretrained ViTs have a negative ``W_V W_O`` diagonal); ``sign=+1`` is its ablation (Table 3.4).

    Returns:
        ``(W_V, W_O)``, each ``(hidden_size, hidden_size)``.

    Example:
        >>> wv, wo = vo_factors(192, alpha=0.4, beta=0.4)
        >>> (wv @ wo).diagonal().mean()  # ≈ -0.4
    """
    if sign not in (-1, 1):
        raise ValueError(f"vo_sign must be -1 or +1, got {sign!r}")
    target = attention_noise(hidden_size, hidden_size, distribution=noise, dtype=dtype, device=device)
    target.mul_(alpha).diagonal().add_(sign * beta)
    # M Mᵀ = U Σ² Uᵀ (eigh, in float64: the smallest σ can be ~1e-3 or less), W_V = U Σ^½ and
    # W_O = Σ^-½ Uᵀ M = Σ^½ Vᵀ. W_V W_O = U Uᵀ M = M however small σ is; ~1.5× faster than a full SVD on CPU.
    target64 = target.double()
    eigenvalues, u = torch.linalg.eigh(target64 @ target64.T)
    root = eigenvalues.clamp_min(torch.finfo(torch.float64).tiny).sqrt().sqrt()  # Σ^½
    return (u * root).to(dtype), ((u.T @ target64) / root.unsqueeze(-1)).to(dtype)


def grouped_qk_factors(
    num_heads: int,
    num_kv_heads: int,
    hidden_size: int,
    head_dim: int,
    alpha: float,
    beta: float,
    *,
    noise: str = "normal",
    svd: str = "auto",
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Query and key factors when ``r = H / G`` query heads share each key head (grouped-query attention; MQA is
    ``G = 1``).

    The thesis's per-head targets ``T_h = α·Z_h + β·I`` can no longer all be met: every head of group ``g`` shares
    ``W_K^g``. For a key basis ``K`` (``d × k``) the best query is the least-squares fit ``W_Q^h = T_h K (KᵀK)⁻¹``,
    so ``W_Q^h W_K^gᵀ = T_h P_K`` with ``P_K`` the projector onto ``span(K)``, and the total error
    ``Σ_{h∈g} ‖T_h − T_h P_K‖²_F = Σ‖T_h‖² − tr(P_K Σ_{h∈g} T_hᵀ T_h)`` is smallest when ``span(K)`` holds the top
    ``k`` eigenvectors ``V_g`` of ``M_g = Σ_{h∈g} T_hᵀ T_h`` (the top right singular vectors of the stacked
    ``[T_h]_{h∈g}``). With ``λ`` those eigenvalues and ``σ̄ = √(λ/r)`` (per head), ``W_K^g = V_g σ̄^½`` and
    ``W_Q^h = T_h V_g σ̄^{-½}``; for ``r = 1`` this is exactly the thesis's ``U Σ^½``, ``V Σ^½`` (eqs. 3.16–3.18),
    and ``G = H`` returns :func:`qk_factors` itself. With ``α = 0`` every ``M_g`` is ``rβ²·I``: each group gets a
    random orthonormal basis, and its heads the same query (the output factors break that symmetry, see
    :func:`grouped_vo_factors`).

    Returns:
        ``(W_Q, W_K)``: ``(num_heads, hidden_size, head_dim)`` and ``(num_kv_heads, hidden_size, head_dim)``.

    Example:
        >>> wq, wk = grouped_qk_factors(4, 2, 64, 16, alpha=0.7, beta=0.7)
        >>> wq.shape, wk.shape
        (torch.Size([4, 64, 16]), torch.Size([2, 64, 16]))
    """
    if num_kv_heads == num_heads:
        return qk_factors(num_heads, hidden_size, head_dim, alpha, beta, noise=noise, svd=svd, dtype=dtype, device=device)
    if num_heads % num_kv_heads:
        raise ValueError(f"num_heads {num_heads} must be a multiple of num_kv_heads {num_kv_heads}")
    if svd not in QK_SVD_METHODS:
        raise ValueError(f"qk_svd must be one of {QK_SVD_METHODS}, got {svd!r}")
    group = num_heads // num_kv_heads
    if alpha == 0.0:
        basis = math.sqrt(beta) * random_orthonormal(num_kv_heads, hidden_size, head_dim, dtype=dtype, device=device)
        return basis.repeat_interleave(group, dim=0), basis
    targets = attention_noise(num_heads, hidden_size, hidden_size, distribution=noise, dtype=dtype, device=device)
    targets.mul_(alpha).diagonal(dim1=-2, dim2=-1).add_(beta)  # T_h = α·Z_h + β·I
    stacked = targets.view(num_kv_heads, group * hidden_size, hidden_size)  # [T_h]_{h∈g}, heads of a group adjacent
    if svd == "exact" or (svd == "auto" and 4 * head_dim >= hidden_size):
        _, s, v = top_svd(stacked, head_dim)
    else:
        _, s, v = randomized_svd(stacked, head_dim)
    per_head = (s / math.sqrt(group)).sqrt().unsqueeze(-2)  # σ̄^½, (G, 1, k)
    w_k = v * per_head
    w_q = targets @ (v / per_head).repeat_interleave(group, dim=0)
    return w_q, w_k


def grouped_vo_factors(
    hidden_size: int,
    num_heads: int,
    num_kv_heads: int,
    head_dim: int,
    alpha: float,
    beta: float,
    *,
    sign: int = -1,
    noise: str = "normal",
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Value and output factors for any head layout: ``G`` value heads of size ``k`` shared by ``r = H / G`` query
    heads each, ``H·k`` not necessarily ``d`` (Gemma).

    With every head attending alike, a layer maps ``x ↦ x W_V R W_O`` where ``R`` copies value head ``g`` to its
    ``r`` query heads, so the product to match is ``W_V W̃_O`` with ``W̃_O^g = Σ_{h∈g} W_O^h``, of rank at most
    ``m = min(d, G·k)``. Its best rank-``m`` approximation of ``α·Z + sign·β·I`` is the truncated SVD:
    ``W_V = U_m Σ_m^½ Pᵀ``, ``W̃_O = P Σ_m^½ V_mᵀ``, where ``P`` (``G·k × m``) is the identity when ``G·k = m`` and
    a random isometry when ``G·k > m`` (so that no value dimension starts dead). Each group's ``W̃_O^g`` is split
    over its heads as ``W̃_O^g / r`` plus zero-sum noise of the same RMS: the sum, and so the product, is exact, and
    heads that share keys and values do not start as clones (identical heads would get identical gradients). With
    ``G·k = d`` and ``G = H`` this is :func:`vo_factors` itself.

    Returns:
        ``(W_V, W_O)``: ``(hidden_size, num_kv_heads·head_dim)`` and ``(num_heads·head_dim, hidden_size)``.
    """
    width = num_kv_heads * head_dim
    if num_kv_heads == num_heads and width == hidden_size:
        return vo_factors(hidden_size, alpha, beta, sign=sign, noise=noise, dtype=dtype, device=device)
    if num_heads % num_kv_heads:
        raise ValueError(f"num_heads {num_heads} must be a multiple of num_kv_heads {num_kv_heads}")
    if sign not in (-1, 1):
        raise ValueError(f"vo_sign must be -1 or +1, got {sign!r}")
    target = attention_noise(hidden_size, hidden_size, distribution=noise, dtype=dtype, device=device)
    target.mul_(alpha).diagonal().add_(sign * beta)
    rank = min(hidden_size, width)
    # Top-m SVD through M Mᵀ = U Σ² Uᵀ (eigh, float64, as vo_factors): W_V W̃_O = U_m U_mᵀ M, the rank-m truncation.
    target64 = target.double()
    eigenvalues, u = torch.linalg.eigh(target64 @ target64.T)
    u, eigenvalues = u[:, -rank:].flip(-1), eigenvalues[-rank:].flip(-1)
    root = eigenvalues.clamp_min(torch.finfo(torch.float64).tiny).sqrt().sqrt()  # Σ_m^½
    embed = random_orthonormal(width, rank, dtype=torch.float64, device=device) if width > rank else None
    w_v, w_o_sum = u * root, (u.T @ target64) / root.unsqueeze(-1)  # (d, m), (m, d) = Σ_m^½ V_mᵀ
    if embed is not None:
        w_v, w_o_sum = w_v @ embed.T, embed @ w_o_sum
    group = num_heads // num_kv_heads
    w_o = (w_o_sum / group).view(num_kv_heads, 1, head_dim, hidden_size).expand(-1, group, -1, -1)
    if group > 1:
        spread = torch.randn(num_kv_heads, group, head_dim, hidden_size, dtype=torch.float64, device=device)
        spread = (spread - spread.mean(dim=1, keepdim=True)) * (w_o_sum / group).pow(2).mean().sqrt()
        w_o = w_o + spread
    return w_v.to(dtype), w_o.reshape(num_heads * head_dim, hidden_size).to(dtype)


def expected_qk_diagonal(hidden_size: int, head_dim: int, alpha: float, beta: float, samples: int = 8) -> float:
    """Monte-Carlo estimate (exact SVD) of the mean diagonal of ``W_Q^h W_K^hᵀ`` for these shapes.

    The rank-``k`` truncation lowers the diagonal below ``β`` (e.g. ≈0.39 for d=192, k=64, α=β=0.7); this gives
    the value to compare an initialised model against.
    """
    wq, wk = qk_factors(samples, hidden_size, head_dim, alpha, beta, svd="exact", dtype=torch.float64)
    return (wq @ wk.mT).diagonal(dim1=-2, dim2=-1).mean().item()


def diagonal_statistics(products: torch.Tensor) -> tuple[float, float]:
    """Mean diagonal and off-diagonal std (RMS of the off-diagonal entries) of square matrices ``(..., d, d)``,
    averaged over the leading dimensions: how close a product is to ``c·I``.

    Example:
        >>> diagonal_statistics(0.5 * torch.eye(4).expand(3, 4, 4))
        (0.5, 0.0)
    """
    diag = products.diagonal(dim1=-2, dim2=-1)
    d = products.shape[-1]
    off_squares = products.pow(2).sum((-2, -1)) - diag.pow(2).sum(-1)
    return diag.mean().item(), (off_squares.clamp_min(0) / (d * d - d)).sqrt().mean().item()
