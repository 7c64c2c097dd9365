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
from collections.abc import Callable

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


def orthonormalize(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x = q t`` with ``q`` (..., n, p) orthonormal and ``t`` (..., p, p) upper triangular with a positive diagonal
    (the QR decomposition with its sign fixed), by Cholesky QR applied twice.

    Only products with ``x`` and ``p × p`` factorisations: on a shared CPU these keep their speed where LAPACK's
    Householder QR, many small synchronised steps, can run 10× slower (benchmarks/README.md). Needs ``x`` of full
    column rank and not too ill conditioned (κ ≲ 10³ in float32), as the sketches here are.

    Example:
        >>> q, t = orthonormalize(torch.randn(100, 8))
        >>> torch.dist(q.mT @ q, torch.eye(8)) < 1e-5
    """
    q, t = x, None
    for _ in range(2):
        r = torch.linalg.cholesky(q.mT @ q, upper=True)
        q = torch.linalg.solve_triangular(r, q, upper=True, left=False)
        t = r if t is None else r @ t
    return q, t


class RevealedGaussian:
    """A Gaussian matrix ``Z`` (..., n, m) with iid ``N(0, std²)`` entries that is never stored: only its products
    with the matrices it is applied to are drawn, each exactly as the full matrix would give them.

    After products ``Z X`` and ``Zᵀ Y`` (in any order, each input chosen from earlier outputs), ``Z`` is known only on
    the column space ``R`` of the ``X``'s (``A = Z R``) and, apart from that, on the row space ``L`` of the ``Y``'s
    (``C = Lᵀ Z (I − R Rᵀ)``); in those bases ``Z = A Rᵀ + L C + (I − L Lᵀ) W (I − R Rᵀ)``, where ``W`` is a fresh
    Gaussian matrix independent of everything drawn so far (the blocks of an iid Gaussian matrix in orthonormal
    bases are independent). A new product draws only ``W``'s blocks on the new directions: ``(n + m)·p`` numbers for
    ``p`` new columns, instead of ``n·m`` for ``Z``. With ``r`` and ``l`` directions known the memory is
    ``O((n + m)(r + l))``.

    Example:
        >>> z = RevealedGaussian(1, 500, 500, std=500 ** -0.5, capacity=20)
        >>> y = z.matmul(torch.randn(1, 500, 10))         # Z Ω
        >>> x = z.rmatmul(y)                              # Zᵀ (Z Ω), consistent with the same Z
    """

    def __init__(self, *shape: int, std: float, capacity: int, dtype: torch.dtype = torch.float32, device=None) -> None:
        *self.batch, self.n, self.m = shape
        self.std, self.dtype, self.device = std, dtype, device
        buffer = lambda rows: torch.empty(*self.batch, rows, capacity, dtype=dtype, device=device)
        # R (…, m, r) orthonormal and A = Z R (…, n, r); L (…, n, l) orthonormal and Cᵀ = (I − R Rᵀ) Zᵀ L (…, m, l),
        # in buffers of ``capacity`` columns (known directions), filled from the left.
        self._r, self._a, self._l, self._c = buffer(self.m), buffer(self.n), buffer(self.n), buffer(self.m)
        self.known_cols = self.known_rows = 0

    @property
    def r(self) -> torch.Tensor:
        return self._r[..., : self.known_cols]

    @property
    def a(self) -> torch.Tensor:
        return self._a[..., : self.known_cols]

    @property
    def l(self) -> torch.Tensor:
        return self._l[..., : self.known_rows]

    @property
    def c(self) -> torch.Tensor:
        return self._c[..., : self.known_rows]

    def _draw(self, rows: int, cols: int) -> torch.Tensor:
        return torch.randn(*self.batch, rows, cols, dtype=self.dtype, device=self.device).mul_(self.std)

    @staticmethod
    def _new_directions(x: torch.Tensor, basis: torch.Tensor) -> torch.Tensor | None:
        """Orthonormal ``q`` spanning ``(I − B Bᵀ) x`` (projected twice: classical Gram–Schmidt needs it); ``None``
        when ``x`` lies in ``span(B)`` already. Otherwise ``(I − B Bᵀ) x`` must have full column rank, as the
        sketches' inputs do."""
        residual = x
        for _ in range(2):
            residual = residual - basis @ (basis.mT @ residual)
        scale = torch.linalg.vector_norm(x, dim=-2)
        if (torch.linalg.vector_norm(residual, dim=-2) <= 1e-4 * scale).all():
            return None
        return orthonormalize(residual)[0]

    def matmul(self, x: torch.Tensor) -> torch.Tensor:
        """``Z @ x`` for ``x`` (…, m, p)."""
        q = self._new_directions(x, self.r)
        if q is None:
            return self.a @ (self.r.mT @ x)
        fresh = self._draw(self.n, q.shape[-1])  # W q
        l, c = self.l, self.c
        fresh -= l @ (l.mT @ fresh)  # (I − L Lᵀ) W q
        fresh += l @ (c.mT @ q)  # Z q = A Rᵀ q + L C q + (I − L Lᵀ) W q, with Rᵀ q = 0
        c -= q @ (q.mT @ c)  # (C (I − q qᵀ))ᵀ: Lᵀ Z restricted off the known columns
        start, self.known_cols = self.known_cols, self.known_cols + q.shape[-1]
        self._r[..., start : self.known_cols], self._a[..., start : self.known_cols] = q, fresh
        return self.a @ (self.r.mT @ x)  # x lies in span(R) now

    def rmatmul(self, y: torch.Tensor) -> torch.Tensor:
        """``Zᵀ @ y`` for ``y`` (…, n, p)."""
        q = self._new_directions(y, self.l)
        if q is None:
            return self.r @ (self.a.mT @ y) + self.c @ (self.l.mT @ y)
        fresh = self._draw(self.m, q.shape[-1])  # Wᵀ q
        r = self.r
        fresh -= r @ (r.mT @ fresh)  # (I − R Rᵀ) Wᵀ q: qᵀ Z (I − R Rᵀ), transposed
        start, self.known_rows = self.known_rows, self.known_rows + q.shape[-1]
        self._l[..., start : self.known_rows], self._c[..., start : self.known_rows] = q, fresh
        # y lies in span(L) now, and Lᵀ Z = Lᵀ A Rᵀ + C, so Zᵀ y = Zᵀ L Lᵀ y = R Aᵀ y + Cᵀ Lᵀ y.
        return r @ (self.a.mT @ y) + self.c @ (self.l.mT @ y)


def revealed_fits(rows: int, cols: int, rank: int, oversample: int = 10) -> bool:
    """Whether :func:`revealed_randomized_svd` is the cheaper route: ``min(rows, cols) ≥ 20·(rank + oversample)``.

    Its cost is ``O(d·(k + p)²)`` small products per target against the dense sketch's ``O(d²·(k + p))`` large
    ones; on one CPU thread the dense sketch is faster up to d/(k + p) ≈ 14 (ViT-B, ViT-L) and the lazy draw from
    ≈ 28 (d = 2048, k = 64) (``OMP_NUM_THREADS=1 python benchmarks/bench_lazy_noise.py``). The margin also keeps
    every revealed block, ``4·(k + p)`` directions at most, well inside the dimensions (full rank).
    """
    return 20 * (rank + oversample) <= min(rows, cols)


def revealed_randomized_svd(
    num: int,
    rows: int,
    cols: int,
    alpha: float,
    beta: float,
    rank: int,
    *,
    oversample: int = 10,
    power_iters: int = 2,
    dtype: torch.dtype = torch.float32,
    device=None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """:func:`randomized_svd` of ``num`` targets ``T = α·Z + β·S`` (``Z`` (rows × cols) Gaussian ``N(0, 1/cols)``,
    ``S`` the ``rows / cols`` identities stacked), with ``Z`` drawn only where the sketch touches it
    (:class:`RevealedGaussian`): the same arithmetic on the same distribution, so the factors have exactly the
    distribution of the dense route's, for ``O(rows·rank)`` numbers per target instead of ``rows·cols``.

    Returns ``U, S, V`` as :func:`randomized_svd`, and the map ``x ↦ T x`` on the same targets (grouped QK needs
    ``T V``).
    """
    stack = rows // cols
    sketch_size = min(rank + oversample, rows, cols)
    capacity = (power_iters + 2) * sketch_size  # right: Ω, each power iteration, and T V; left: as many
    z = RevealedGaussian(num, rows, cols, std=1.0 / math.sqrt(cols), capacity=capacity, dtype=dtype, device=device)

    def apply(x: torch.Tensor) -> torch.Tensor:  # T x = α Z x + β S x
        return z.matmul(x).mul_(alpha).add_(x.repeat(1, stack, 1), alpha=beta)

    def apply_t(y: torch.Tensor) -> torch.Tensor:  # Tᵀ y = α Zᵀ y + β Sᵀ y
        return z.rmatmul(y).mul_(alpha).add_(y.view(num, stack, cols, -1).sum(1), alpha=beta)

    omega = torch.randn(num, cols, sketch_size, dtype=dtype, device=device)
    y = apply(omega)
    for _ in range(power_iters):
        y = apply(apply_t(y))
    q, _ = orthonormalize(y)
    small = apply_t(q).mT  # (…, sketch, cols): T ≈ q @ small
    eigenvalues, u_small = torch.linalg.eigh(small @ small.mT)
    s = eigenvalues[..., -rank:].flip(-1).clamp_min(torch.finfo(dtype).tiny).sqrt()
    u_small = u_small[..., -rank:].flip(-1)
    v = (small.mT @ u_small) / s.unsqueeze(-2)
    return q @ u_small, s, v, apply


#: Heads whose d×d targets are formed at once by the dense routes (and sketched at once by the lazy one): the peak
#: memory of a layer's QK construction is a few d×d matrices, not one per head (issue 33). The exact route draws
#: only the targets, in the same order either way, so its factors are those of one batch bit for bit; the dense
#: randomized route interleaves each chunk's sketch with its targets (same draws in all, in another order).
HEADS_PER_CHUNK = 4


def _chunks(total: int, size: int) -> list[int]:
    return [min(size, total - start) for start in range(0, total, size)]


def _revealed(svd: str, noise: str, rows: int, cols: int, rank: int) -> bool:
    """The randomized route with Gaussian noise, where drawing the noise lazily is the cheaper way."""
    randomized = svd == "randomized" or (svd == "auto" and 4 * rank < cols)
    return randomized and noise == "normal" and revealed_fits(rows, cols, rank)


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
            (5× faster for ViT-B, 7× for GPT-2 XL widths; docs/RESULTS.md, "Cost of construction"). With Gaussian
            noise and d ≥ 20·(k + 10) the randomized route never forms ``Z_h``: it draws ``Z_h`` only on the
            directions the sketch touches (:func:`revealed_randomized_svd`), which gives the factors the same
            distribution for ``O(d·k)`` numbers per head instead of ``d²`` (benchmarks/README.md).

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
    w_q, w_k = [], []
    for heads in _chunks(num_heads, HEADS_PER_CHUNK):
        if _revealed(svd, noise, hidden_size, hidden_size, head_dim):
            u, s, v, _ = revealed_randomized_svd(
                heads, hidden_size, hidden_size, alpha, beta, head_dim, dtype=dtype, device=device
            )
        else:
            target = attention_noise(heads, hidden_size, hidden_size, distribution=noise, dtype=dtype, device=device)
            target.mul_(alpha).diagonal(dim1=-2, dim2=-1).add_(beta)  # α·Z_h + β·I, in place (these are large)
            if svd == "exact" or (svd == "auto" and 4 * head_dim >= hidden_size):
                u, s, v = top_svd(target, head_dim)
            else:
                u, s, v = randomized_svd(target, head_dim)
        root = s.sqrt().unsqueeze(-2)
        w_q.append(u * root)
        w_k.append(v * root)
    return torch.cat(w_q), torch.cat(w_k)


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
    w_v, w_o = balanced_factors(target.to(_working(dtype)), hidden_size)
    return w_v.to(dtype), w_o.to(dtype)


def _working(dtype: torch.dtype) -> torch.dtype:
    """float64 where asked for, float32 otherwise (half precision is too coarse for the decompositions)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def balanced_factors(target: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``W_V = U_m Σ_m^½`` and ``W_O = Σ_m^½ V_mᵀ`` for the top ``m = rank`` singular triplets of a square ``M``:
    ``W_V W_O = U_m U_mᵀ M``, the best rank-``m`` approximation (``M`` itself for ``m = d``).

    ``M Mᵀ = U Σ² Uᵀ`` (one ``eigh``, ~1.5× faster than a full SVD on CPU), and ``U_mᵀ M = Σ_m V_mᵀ``, whose row
    norms are the singular values. Taking ``Σ`` from those norms rather than from the eigenvalues keeps the two
    factors balanced (equal row and column norms, √σ) for the smallest σ too, where float32 eigenvalues of
    ``M Mᵀ`` carry an absolute error of ~1e-7·σ₁² (σ ~ 1e-3 here); the product ``U_m U_mᵀ M`` holds at any σ
    because ``U`` is orthonormal to working precision. So float32 is enough: about 2× faster than float64 on CPU,
    and the precision GPUs are fast at (tests/test_attention_maths.py checks it against float64).
    """
    _, u = torch.linalg.eigh(target @ target.mT)  # ascending
    u = u[..., -rank:].flip(-1)
    projected = u.mT @ target  # Σ_m V_mᵀ
    root = torch.linalg.vector_norm(projected, dim=-1).clamp_min(torch.finfo(target.dtype).tiny).sqrt()  # Σ_m^½
    return u * root.unsqueeze(-2), projected / root.unsqueeze(-1)


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
    w_q, w_k = [], []
    for groups in _chunks(num_kv_heads, max(1, HEADS_PER_CHUNK // group)):
        q, k = _grouped_chunk(groups, group, hidden_size, head_dim, alpha, beta, noise, svd, dtype, device)
        w_q.append(q)
        w_k.append(k)
    return torch.cat(w_q), torch.cat(w_k)


def _grouped_chunk(groups, group, hidden_size, head_dim, alpha, beta, noise, svd, dtype, device):
    """:func:`grouped_qk_factors` for ``groups`` key heads and their ``groups·group`` query heads."""
    rows = group * hidden_size  # [T_h]_{h∈g} stacked, heads of a group adjacent
    if _revealed(svd, noise, rows, hidden_size, head_dim):
        _, s, v, apply = revealed_randomized_svd(
            groups, rows, hidden_size, alpha, beta, head_dim, dtype=dtype, device=device
        )
        per_head = (s / math.sqrt(group)).sqrt().unsqueeze(-2)  # σ̄^½, (G, 1, k)
        w_q = apply(v / per_head).view(groups * group, hidden_size, head_dim)  # T_h V_g σ̄^-½, the sketch's noise
        return w_q, v * per_head
    targets = attention_noise(groups * group, hidden_size, hidden_size, distribution=noise, dtype=dtype, device=device)
    targets.mul_(alpha).diagonal(dim1=-2, dim2=-1).add_(beta)  # T_h = α·Z_h + β·I
    stacked = targets.view(groups, rows, hidden_size)
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
    work = _working(dtype)
    w_v, w_o_sum = balanced_factors(target.to(work), rank)  # (d, m), (m, d) = Σ_m^½ V_mᵀ: the rank-m truncation
    # The draws below stay float64 (cast after): the random stream, and so every later draw of the model, is the
    # one of the float64 construction.
    if width > rank:
        embed = random_orthonormal(width, rank, dtype=torch.float64, device=device).to(work)
        w_v, w_o_sum = w_v @ embed.T, embed @ w_o_sum
    group = num_heads // num_kv_heads
    w_o = (w_o_sum / group).view(num_kv_heads, 1, head_dim, hidden_size).expand(-1, group, -1, -1)
    if group > 1:
        spread = torch.randn(num_kv_heads, group, head_dim, hidden_size, dtype=torch.float64, device=device).to(work)
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
