"""Fast pure-PyTorch selective scan for Mamba 1 (CPU, or any device without ``mamba-ssm``).

Why
---
Without the CUDA kernels of ``mamba-ssm``, transformers' ``MambaMixer`` runs the reference
``mamba_selective_scan`` of ``transformers/models/mamba/modeling_mamba.py``: a Python loop over time that
indexes the full ``(batch, E, T, N)`` tensors ``discrete_A[:, :, t]`` and ``deltaB_u[:, :, t]`` under
autograd. The backward of every such index allocates and zero-fills a full-size gradient, so one training
step costs O(T²·batch·E·N) memory traffic (tens of seconds for a 4-layer d=64 model at T≈100).

What
----
:func:`selective_scan_core` computes the same recurrence (Mamba paper, Gu & Dao 2023, eq. 2a/2b with the
zero-order-hold discretisation of §2/eq. 4)::

    h_t = Ā_t ⊙ h_{t-1} + B̄_t x_t,   Ā_t = exp(Δ_t A),  B̄_t x_t = (Δ_t x_t) ⊗ B_t
    y_t = C_t · h_t                    (the D·x_t skip and the SiLU(z) gate are applied by the caller)

as a ``torch.autograd.Function`` with a hand-written backward that runs the reverse-time recurrence::

    g_t = C_t ⊗ dy_t + Ā_{t+1} ⊙ g_{t+1}            (g_t = dL/dh_t)
    dA  = Σ_t g_t ⊙ Ā_t ⊙ h_{t-1} · Δ_t,  dΔ_t, dx_t, dB_t, dC_t likewise (see ``_SelectiveScanFn.backward``).

Time is processed in blocks of ``K`` steps (``K·batch·E·N`` ≈ 2M elements, cache sized). Inside a block
everything except the recurrence itself is one vectorised op over the block (``exp(Δ A)``, the outer
products, the ``C``/``B`` contractions); the recurrence is one in-place ``addcmul_`` per step on a
``(batch, E, N)`` slab. The forward keeps only the state at each block start; the backward recomputes a
block's states from it. No per-timestep indexing of full-size tensors happens under autograd, and memory is
O(batch·E·N·(T/K + K)) instead of O(batch·E·N·T).

Numerics: every factor is ``Ā = exp(Δ·A) ∈ (0, 1]`` (A < 0, Δ > 0), used exactly as in the reference; there
is no ``exp(+x)``, no division and no cumulative-sum difference, so the scan is as safe as the reference for
``Ā ≈ 1`` (mimetic init, ``A_log − 8`` ⇒ ``A ≈ −3e-4·n``) and for large ``Δ·A`` (``Ā`` underflows to 0, as in
the reference). Compute dtype is ``float32`` or wider (``bfloat16``/``float16`` inputs are upcast, ``float64``
stays ``float64``).

Wiring into transformers
------------------------
transformers 5.23 has no ``MambaMixer.slow_forward``: ``MambaMixer.forward`` calls the module-level
``mamba_selective_scan`` (full sequences) and ``mamba_selective_state_update`` (one-token decoding steps with
a cache). The former resolves, at import time, to ``mamba_ssm``'s ``selective_scan_fn`` when that package
is installed and to the slow loop otherwise. :func:`enable_fast_mamba_scan` replaces that module-level name
with a dispatcher that uses :func:`mamba_selective_scan_fast` exactly where the slow loop would have run
and calls the original otherwise (``use_mambapy=True`` with mambapy installed, the associative scan under
``torch.compile``, hub kernels on CUDA/XPU). It does nothing when ``mamba-ssm`` is installed. Single-token
decoding keeps transformers' own one-step update, which is already O(1) per token; prefill with a cache
gets the final state from the fast scan. No model class is subclassed or modified.

Environment
-----------
``HF_MIMETIC_FAST_MAMBA_SCAN=0`` (also ``false``/``no``/``off``) turns the fast scan off: ``enable`` then does
not patch, and an already installed patch falls back to the original at call time.

Example::

    >>> import torch
    >>> from hf_mimetic.ops.selective_scan import enable_fast_mamba_scan, selective_scan_core
    >>> enable_fast_mamba_scan()  # True on CPU-only installs (no mamba-ssm)
    True
    >>> u, dt = torch.randn(2, 8, 100), torch.rand(2, 8, 100)
    >>> A, B, C = -torch.rand(8, 4), torch.randn(2, 4, 100), torch.randn(2, 4, 100)
    >>> y, last_state = selective_scan_core(u, dt, A, B, C)
    >>> y.shape, last_state.shape
    (torch.Size([2, 8, 100]), torch.Size([2, 8, 4]))
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "ENV_VAR",
    "default_block_size",
    "disable_fast_mamba_scan",
    "enable_fast_mamba_scan",
    "fast_mamba_scan",
    "is_fast_mamba_scan_enabled",
    "mamba_kernels_available",
    "mamba_selective_scan_fast",
    "selective_scan_core",
]

logger = logging.getLogger(__name__)

#: Set to ``0``/``false``/``no``/``off`` to disable the fast scan (checked at enable time and at every call).
ENV_VAR = "HF_MIMETIC_FAST_MAMBA_SCAN"

# Elements per (K, batch, E, N) block buffer: 2**21 float32 = 8 MiB, a few of them stay in L2/L3.
# Measured on the benchmark shape (batch·E·N = 131k): K = 8…32 are within 5 % of each other.
_BLOCK_ELEMENTS = 2**21

# Marker attribute set on the function installed into transformers, so enable/disable are idempotent even if
# this module is re-imported.
_MARKER = "_hf_mimetic_fast_scan_original"


# ----------------------------------------------------------------------------------------------------------
# Core scan
# ----------------------------------------------------------------------------------------------------------


def _time_major(x: torch.Tensor) -> torch.Tensor:
    """``(batch, X, T) -> (T, batch, X)`` contiguous, so one time step is one contiguous slab."""
    return x.permute(2, 0, 1).contiguous()


def default_block_size(batch: int, d_inner: int, d_state: int, seqlen: int) -> int:
    """Time steps per block: as many as fit in ``_BLOCK_ELEMENTS`` elements, at least 1, at most ``seqlen``.

    Example:
        >>> default_block_size(16, 256, 32, 1024)
        16
    """
    per_step = max(1, batch * d_inner * d_state)
    return max(1, min(seqlen, _BLOCK_ELEMENTS // per_step))


def _block_decay_and_input(
    a: torch.Tensor, hh: torch.Tensor, dT: torch.Tensor, duT: torch.Tensor, BT: torch.Tensor, A: torch.Tensor
) -> None:
    """Fill ``a = Ā = exp(Δ A)`` and ``hh = B̄ x = (Δ x) ⊗ B`` for one block, in place ``(k, batch, E, N)``."""
    torch.mul(dT[:, :, :, None], A, out=a)
    a.exp_()
    torch.mul(duT[:, :, :, None], BT[:, :, None, :], out=hh)


def _block_states(a: torch.Tensor, hh: torch.Tensor, h_prev: torch.Tensor) -> None:
    """Run ``h_t = Ā_t ⊙ h_{t-1} + B̄_t x_t`` over one block, overwriting ``hh`` (holding ``B̄ x``) with ``h``."""
    for j in range(hh.shape[0]):
        hh[j].addcmul_(a[j], h_prev)
        h_prev = hh[j]


class _SelectiveScanFn(torch.autograd.Function):
    """``(y, h_last) = scan(u, Δ, A, B, C, h0)`` with a blocked forward and a reverse-time backward.

    Shapes: ``u, Δ: (b, E, T)``, ``A: (E, N)``, ``B, C: (b, N, T)``, ``h0: (b, E, N)``; all one dtype.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        u: torch.Tensor,
        delta: torch.Tensor,
        A: torch.Tensor,
        B: torch.Tensor,
        C: torch.Tensor,
        h0: torch.Tensor,
        block: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b, E, T = u.shape
        N = A.shape[-1]
        dT, duT, BT, CT = _time_major(delta), _time_major(delta * u), _time_major(B), _time_major(C)
        yT = u.new_empty(T, b, E)
        a_buf = u.new_empty(block, b, E, N)
        h_buf = u.new_empty(block, b, E, N)
        n_blocks = -(-T // block)
        save = any(ctx.needs_input_grad)
        # State at the start of each block: all the backward needs to recompute a block's states.
        starts = u.new_empty(n_blocks, b, E, N) if save else None
        h = h0
        for bi in range(n_blocks):
            sl = slice(bi * block, min(T, (bi + 1) * block))
            k = sl.stop - sl.start
            a, hh = a_buf[:k], h_buf[:k]
            _block_decay_and_input(a, hh, dT[sl], duT[sl], BT[sl], A)
            if starts is not None:
                starts[bi].copy_(h)
            _block_states(a, hh, h)
            # y_t = C_t · h_t: a batched (E, N) @ (N, 1) over the block's (k·b) steps.
            torch.matmul(hh, CT[sl, :, :, None], out=yT[sl, :, :, None])
            h = hh[k - 1].clone()  # the buffer is overwritten by the next block
        if starts is not None:
            ctx.save_for_backward(u, delta, A, B, C, starts)
        ctx.block = block
        return yT.permute(1, 2, 0).contiguous(), h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, gy: torch.Tensor, g_last: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        u, delta, A, B, C, starts = ctx.saved_tensors
        block = ctx.block
        b, E, T = u.shape
        N = A.shape[-1]
        dT, duT, BT, CT, gyT = (_time_major(t) for t in (delta, delta * u, B, C, gy))
        g_duT = u.new_empty(T, b, E)  # dL/d(Δx)
        g_logaT = u.new_empty(T, b, E)  # dL/dΔ through Ā = exp(Δ A)
        gBT, gCT = B.new_empty(T, b, N), C.new_empty(T, b, N)
        gA = torch.zeros_like(A)
        a_buf, h_buf, g_buf = (u.new_empty(block, b, E, N) for _ in range(3))
        # carry = Ā_{t+1} ⊙ g_{t+1} flowing into the last step of the current block; g_last for the last block.
        carry = g_last
        for bi in reversed(range(starts.shape[0])):
            sl = slice(bi * block, min(T, (bi + 1) * block))
            k = sl.stop - sl.start
            a, hh, g = a_buf[:k], h_buf[:k], g_buf[:k]
            # 1. Recompute Ā and h for this block from its saved start state.
            _block_decay_and_input(a, hh, dT[sl], duT[sl], BT[sl], A)
            _block_states(a, hh, starts[bi])
            # 2. Reverse recurrence g_t = C_t ⊗ dy_t + Ā_{t+1} ⊙ g_{t+1}.
            torch.mul(gyT[sl, :, :, None], CT[sl, :, None, :], out=g)
            g[k - 1].add_(carry)
            for j in range(k - 2, -1, -1):
                g[j].addcmul_(a[j + 1], g[j + 1])
            # 3. Contractions: dC_t = Σ_e dy_t h_t, dB_t = Σ_e (Δx)_t g_t, d(Δx)_t = Σ_n g_t B_t.
            torch.matmul(gyT[sl, :, None, :], hh, out=gCT[sl, :, None, :])
            torch.matmul(duT[sl, :, None, :], g, out=gBT[sl, :, None, :])
            torch.matmul(g, BT[sl, :, :, None], out=g_duT[sl, :, :, None])
            # 4. dL/d(ΔA)_t = g_t ⊙ Ā_t ⊙ h_{t-1}; h_{t-1} of the block's first step is its start state.
            g.mul_(a)
            carry = g[0].clone()
            if k > 1:
                g[1:].mul_(hh[:-1])
            g[0].mul_(starts[bi])
            torch.mul(g, dT[sl, :, :, None], out=hh)  # hh is free now: reuse it for (ΔA)-grad · Δ
            gA += hh.sum((0, 1))
            g.mul_(A)
            torch.sum(g, -1, out=g_logaT[sl])
        g_du = g_duT.permute(1, 2, 0)
        g_u = g_du * delta if ctx.needs_input_grad[0] else None
        g_delta = torch.addcmul(g_logaT.permute(1, 2, 0), g_du, u) if ctx.needs_input_grad[1] else None
        g_B = gBT.permute(1, 2, 0).contiguous() if ctx.needs_input_grad[3] else None
        g_C = gCT.permute(1, 2, 0).contiguous() if ctx.needs_input_grad[4] else None
        g_h0 = carry if ctx.needs_input_grad[5] else None  # = Ā_0 ⊙ g_0 = dL/dh_{-1}
        return g_u, g_delta, gA if ctx.needs_input_grad[2] else None, g_B, g_C, g_h0, None


def selective_scan_core(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    block_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Selective scan ``h_t = exp(Δ_t A) ⊙ h_{t-1} + (Δ_t x_t) ⊗ B_t``, ``y_t = C_t · h_t``; differentiable.

    Args:
        u: inputs ``x``, ``(batch, E, T)``.
        delta: discretisation steps ``Δ`` (after bias and softplus), ``(batch, E, T)``.
        A: continuous state matrix (negative), ``(E, N)``.
        B, C: input-dependent projections, ``(batch, N, T)``.
        initial_state: ``h_{-1}``, ``(batch, E, N)``; zeros if ``None``.
        block_size: time steps per block; default :func:`default_block_size`.

    Returns:
        ``(y, last_state)``: ``y`` ``(batch, E, T)`` and ``h_{T-1}`` ``(batch, E, N)``, both in the compute dtype
        (the promotion of the inputs' dtypes, at least ``float32``).

    Example:
        >>> y, h = selective_scan_core(torch.ones(1, 2, 3), torch.ones(1, 2, 3), -torch.ones(2, 1),
        ...                            torch.ones(1, 1, 3), torch.ones(1, 1, 3))
        >>> round(y[0, 0, -1].item(), 4)  # 1 + e^-1 (1 + e^-1)
        1.5032
    """
    dtype = torch.float32
    for t in (u, delta, A, B, C) + ((initial_state,) if initial_state is not None else ()):
        dtype = torch.promote_types(dtype, t.dtype)
    batch, d_inner, seqlen = u.shape
    d_state = A.shape[-1]
    if initial_state is None:
        initial_state = u.new_zeros(batch, d_inner, d_state, dtype=dtype)
    if seqlen == 0:
        return u.new_zeros(batch, d_inner, 0, dtype=dtype), initial_state.to(dtype)
    block = block_size or default_block_size(batch, d_inner, d_state, seqlen)
    block = max(1, min(int(block), seqlen))
    args = (t.to(dtype) for t in (u, delta, A, B, C, initial_state))
    return _SelectiveScanFn.apply(*args, block)


# ----------------------------------------------------------------------------------------------------------
# transformers-compatible drop-in
# ----------------------------------------------------------------------------------------------------------


def mamba_selective_scan_fast(
    hidden_states: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    block_size: int | None = None,
    **kwargs: Any,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Same signature and result as transformers' torch ``mamba_selective_scan``, without its O(T²) backward.

    The dtype handling mirrors the reference line by line: ``Δ`` gets ``delta_bias`` cast to ``Δ``'s dtype and
    softplus in that dtype, ``x`` and ``B`` are read through ``.float()``, the state lives in
    ``promote(A, Δ, float32)`` and ``y`` is returned in the input dtype before the ``D`` skip and the
    ``SiLU(z)`` gate. (For bf16 inputs the reference rounds the state to bf16 before ``C·h``; here ``C·h`` is
    summed in float32 and rounded once, i.e. equal up to bf16 rounding.)

    Example:
        >>> x, dt = torch.randn(1, 4, 6), torch.randn(1, 4, 6)
        >>> out, state = mamba_selective_scan_fast(x, dt, -torch.rand(4, 2), torch.randn(1, 2, 6),
        ...                                        torch.randn(1, 2, 6), D=torch.ones(4), z=torch.randn(1, 4, 6),
        ...                                        delta_softplus=True, return_last_state=True)
        >>> out.shape, state.shape
        (torch.Size([1, 4, 6]), torch.Size([1, 4, 2]))
    """
    input_dtype = hidden_states.dtype
    if delta_bias is not None:
        dt = dt + delta_bias.to(dt.dtype)[..., None]
    if delta_softplus:
        dt = F.softplus(dt)
    # The reference reads x and B through .float() (even for float64 models); the core promotes to state_dtype.
    y, last_state = selective_scan_core(hidden_states.float(), dt, A, B.float(), C, block_size=block_size)
    scan_output = y.to(input_dtype)
    if D is not None:
        scan_output = scan_output + hidden_states * D[None, :, None]
    if z is not None:
        scan_output = scan_output * F.silu(z)
    if return_last_state:
        return scan_output, last_state
    return scan_output


# ----------------------------------------------------------------------------------------------------------
# Patch management
# ----------------------------------------------------------------------------------------------------------


def _env_enabled() -> bool:
    """``False`` iff ``HF_MIMETIC_FAST_MAMBA_SCAN`` is set to 0/false/no/off."""
    return os.environ.get(ENV_VAR, "1").strip().lower() not in {"0", "false", "no", "off"}


def _modeling_mamba() -> ModuleType:
    """transformers' Mamba 1 modeling module, imported lazily (the core scan needs only torch)."""
    from transformers.models.mamba import modeling_mamba

    return modeling_mamba


def _original_scan() -> Callable:
    """transformers' own ``mamba_selective_scan`` (unwrapping our patch if installed)."""
    current = _modeling_mamba().mamba_selective_scan
    return getattr(current, _MARKER, current)


def mamba_kernels_available() -> bool:
    """Whether transformers' ``mamba_selective_scan`` resolved to ``mamba-ssm``'s kernel instead of torch.

    transformers decides this at import time (``use_kernel_func_from_hub_with_fallback``) and keeps the
    answer in the wrapper's closure variable ``is_new_implementation``; if that layout ever changes we fall
    back to "is ``mamba_ssm`` importable".

    Example:
        >>> mamba_kernels_available()  # CPU-only install
        False
    """
    fn = _original_scan()
    code, closure = getattr(fn, "__code__", None), getattr(fn, "__closure__", None)
    if code is not None and closure and "is_new_implementation" in code.co_freevars:
        return bool(closure[code.co_freevars.index("is_new_implementation")].cell_contents)
    return importlib.util.find_spec("mamba_ssm") is not None


def _reference_would_loop(hidden_states: torch.Tensor, use_mambapy: bool, use_associative_scan: bool) -> bool:
    """True iff the torch reference would take its sequential-loop branch (the one we replace)."""
    from transformers.utils.import_utils import (
        is_mambapy_available,
        is_torch_greater_or_equal,
        is_torchdynamo_compiling,
        is_torchdynamo_exporting,
    )

    if use_mambapy and is_mambapy_available():
        return False
    if (
        use_associative_scan
        and is_torch_greater_or_equal("2.9.0")
        and is_torchdynamo_compiling()
        and not is_torchdynamo_exporting()
    ):
        return False
    # With the `kernels` package, hub kernels may have been swapped in for CUDA/XPU: leave those alone.
    return not (hidden_states.device.type in ("cuda", "xpu") and importlib.util.find_spec("kernels") is not None)


def _make_dispatcher(original: Callable) -> Callable:
    """The function installed as ``modeling_mamba.mamba_selective_scan``: fast scan where the loop would run."""

    def mamba_selective_scan(
        hidden_states: torch.Tensor,
        dt: torch.Tensor,
        A: torch.Tensor,
        B: torch.Tensor,
        C: torch.Tensor,
        D: torch.Tensor | None = None,
        z: torch.Tensor | None = None,
        delta_bias: torch.Tensor | None = None,
        delta_softplus: bool = False,
        return_last_state: bool = False,
        use_mambapy: bool = False,
        use_associative_scan: bool = False,
        **kwargs: Any,
    ):
        if _env_enabled() and _reference_would_loop(hidden_states, use_mambapy, use_associative_scan):
            return mamba_selective_scan_fast(
                hidden_states, dt, A, B, C, D=D, z=z, delta_bias=delta_bias, delta_softplus=delta_softplus,
                return_last_state=return_last_state,
            )  # fmt: skip
        return original(
            hidden_states, dt, A, B, C, D=D, z=z, delta_bias=delta_bias, delta_softplus=delta_softplus,
            return_last_state=return_last_state, use_mambapy=use_mambapy,
            use_associative_scan=use_associative_scan, **kwargs,
        )  # fmt: skip

    setattr(mamba_selective_scan, _MARKER, original)
    mamba_selective_scan.__doc__ = "hf_mimetic fast selective scan dispatcher (see hf_mimetic.ops.selective_scan)."
    return mamba_selective_scan


def is_fast_mamba_scan_enabled() -> bool:
    """Whether transformers' Mamba 1 currently uses the fast scan (patch installed and not disabled by env).

    Example:
        >>> _ = enable_fast_mamba_scan(); is_fast_mamba_scan_enabled()
        True
    """
    return hasattr(_modeling_mamba().mamba_selective_scan, _MARKER) and _env_enabled()


def enable_fast_mamba_scan() -> bool:
    """Make transformers' ``MambaMixer`` use the fast scan where it would run the slow torch loop. Idempotent.

    Returns ``True`` if the fast scan is installed, ``False`` if not (``mamba-ssm`` kernels available, or
    ``HF_MIMETIC_FAST_MAMBA_SCAN=0``).

    Example:
        >>> enable_fast_mamba_scan()
        True
    """
    if not _env_enabled():
        logger.info("%s disables the fast Mamba scan", ENV_VAR)
        return False
    if mamba_kernels_available():
        return False
    modeling_mamba = _modeling_mamba()
    if not hasattr(modeling_mamba.mamba_selective_scan, _MARKER):
        modeling_mamba.mamba_selective_scan = _make_dispatcher(modeling_mamba.mamba_selective_scan)
        logger.info("hf_mimetic: Mamba 1 uses the fast CPU selective scan (mamba-ssm not installed)")
    return True


def disable_fast_mamba_scan() -> bool:
    """Restore transformers' own ``mamba_selective_scan``. Returns whether a patch was removed.

    Example:
        >>> _ = disable_fast_mamba_scan(); is_fast_mamba_scan_enabled()
        False
    """
    modeling_mamba = _modeling_mamba()
    current = modeling_mamba.mamba_selective_scan
    if not hasattr(current, _MARKER):
        return False
    modeling_mamba.mamba_selective_scan = getattr(current, _MARKER)
    return True


@contextlib.contextmanager
def fast_mamba_scan(enabled: bool = True) -> Iterator[bool]:
    """Context manager: enable (or, with ``enabled=False``, disable) the fast scan, restore on exit.

    Yields whether the fast scan is active inside the block.

    Example:
        >>> with fast_mamba_scan(False):
        ...     is_fast_mamba_scan_enabled()
        False
    """
    modeling_mamba = _modeling_mamba()
    saved = modeling_mamba.mamba_selective_scan
    if enabled:
        active = enable_fast_mamba_scan()
    else:
        disable_fast_mamba_scan()
        active = False
    try:
        yield active
    finally:
        modeling_mamba.mamba_selective_scan = saved
