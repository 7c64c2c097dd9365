"""What the self-attention layouts share: the per-layer factors (thesis eqs. 3.13–3.18, and their grouped-query
form) and reading the products back.

Every attention layout receives the same maths-layout factors (row-vector convention, ``q = x W_Q`` with
``W_Q ∈ R^{d×H·k}``, head ``h`` in columns ``h·k:(h+1)·k``; ``W_K``, ``W_V`` with ``G`` key/value heads) and differs
only in where it stores them (:meth:`AttentionLayout.write_factors`) and how it reads them back
(:meth:`AttentionLayout.factors_of`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..config.attention import AttentionConfig
from ..maths.attention import diagonal_statistics, grouped_qk_factors, grouped_vo_factors
from .base import Layout


@dataclass(frozen=True)
class Geometry:
    """Sizes of one attention layer: model width ``d``, query heads ``H``, key/value heads ``G`` (query head ``h``
    reads key/value head ``h // (H / G)``, as transformers' ``repeat_kv``) and the head size ``k``."""

    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int


@dataclass
class Factors:
    """Maths-layout factors of one attention layer; ``None`` for a product left at the native init."""

    w_q: torch.Tensor | None  # (d, H·k), head h in columns h·k:(h+1)·k
    w_k: torch.Tensor | None  # (d, G·k)
    w_v: torch.Tensor | None  # (d, G·k)
    w_o: torch.Tensor | None  # (H·k, d), head h in rows h·k:(h+1)·k


class AttentionLayout(Layout):
    """A self-attention layout. Subclasses implement :meth:`geometry`, :meth:`projections` (the parameters the init
    writes, to test for loaded weights), :meth:`write_factors` and :meth:`factors_of`."""

    config = AttentionConfig
    columns: ClassVar[dict[str, str]] = {
        "qk_diag": "QK diag", "qk_offdiag_std": "QK off-diag std", "vo_diag": "VO diag", "vo_offdiag_std": "VO off-diag std",
    }  # fmt: skip

    def geometry(self, module: nn.Module) -> Geometry:
        raise NotImplementedError

    def projections(self, module: nn.Module) -> list[torch.Tensor]:
        raise NotImplementedError

    def write_factors(self, module: nn.Module, factors: Factors) -> None:
        raise NotImplementedError

    def written(self, module: nn.Module, cfg: AttentionConfig) -> list[nn.Module]:
        """The projections whose whole weight :meth:`write_factors` overwrites under ``cfg`` (default: none, so a
        layout that does not say keeps every native draw)."""
        return []

    def replaced(self, module: nn.Module, cfg: AttentionConfig) -> tuple[tuple[nn.Module, nn.Parameter], ...]:
        """The weights of :meth:`written`: their native draws would be thrown away (a third of a Llama layer's draws
        besides its MLP). Each is listed under the attention module too, whose own native init may redraw a child's
        weight (GPT-2's scaled ``c_proj``)."""
        return tuple((owner, p.weight) for p in self.written(module, cfg) for owner in (p, module))

    def factors_of(self, module: nn.Module) -> Factors:
        """W_Q, W_K, W_V (d, H·k) and W_O (H·k, d) in the maths layout, read from the module's weights."""
        raise NotImplementedError

    def check(self, module: nn.Module, model: nn.Module) -> None:
        g = self.geometry(module)
        if g.num_kv_heads < 1 or g.num_heads % g.num_kv_heads:
            raise ValueError(f"{type(module).__name__}: {g.num_heads} query heads are not a multiple of {g.num_kv_heads} key/value heads")
        if g.head_dim > g.hidden_size:
            raise ValueError(f"{type(module).__name__}: head_dim {g.head_dim} exceeds hidden_size {g.hidden_size} (W_Q^h W_K^hᵀ has rank head_dim)")

    def initialize(self, module: nn.Module, cfg: AttentionConfig, model: nn.Module, depth: float = 0.0) -> None:
        from .base import writable

        if not any(writable(p) for p in self.projections(module)):
            return  # loaded by from_pretrained, or on the meta device: no maths
        g = self.geometry(module)
        device = self.projections(module)[0].device
        w_q = w_k = w_v = w_o = None
        if cfg.qk:
            q, k = grouped_qk_factors(
                g.num_heads, g.num_kv_heads, g.hidden_size, g.head_dim, cfg.qk_alpha, cfg.qk_beta, noise=cfg.noise,
                svd=cfg.qk_svd, device=device,
            )  # fmt: skip
            # (heads, d, k) → (d, heads·k) with head h in columns h·k:(h+1)·k.
            w_q = q.permute(1, 0, 2).reshape(g.hidden_size, g.num_heads * g.head_dim)
            w_k = k.permute(1, 0, 2).reshape(g.hidden_size, g.num_kv_heads * g.head_dim)
        if cfg.vo:
            w_v, w_o = grouped_vo_factors(
                g.hidden_size, g.num_heads, g.num_kv_heads, g.head_dim, cfg.vo_alpha, cfg.vo_beta, sign=cfg.vo_sign,
                noise=cfg.noise, device=device,
            )  # fmt: skip
        self.write_factors(module, Factors(w_q, w_k, w_v, w_o))

    def read(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """``qk``: W_Q^h W_K^{g(h)}ᵀ per query head, ``(H, d, d)``; ``vo``: the layer's value-output map
        ``Σ_h W_V^{g(h)} W_O^h``, ``(d, d)``; from the module's weights."""
        g = self.geometry(module)
        f = self.factors_of(module)
        group = g.num_heads // g.num_kv_heads
        q = f.w_q.view(g.hidden_size, g.num_heads, g.head_dim).permute(1, 0, 2)
        k = f.w_k.view(g.hidden_size, g.num_kv_heads, g.head_dim).permute(1, 0, 2).repeat_interleave(group, dim=0)
        v = f.w_v.view(g.hidden_size, g.num_kv_heads, g.head_dim).permute(1, 0, 2).repeat_interleave(group, dim=0)
        o = f.w_o.view(g.num_heads, g.head_dim, -1)
        return {"qk": q @ k.mT, "vo": (v @ o).sum(0)}

    def statistics(self, module: nn.Module) -> dict[str, float]:
        """Mean diagonal of W_Q^h W_K^hᵀ (over heads) and of W_V W_O, and the std of their off-diagonal entries."""
        products = self.read(module)
        qk_diag, qk_off = diagonal_statistics(products["qk"])
        vo_diag, vo_off = diagonal_statistics(products["vo"])
        return {"qk_diag": qk_diag, "qk_offdiag_std": qk_off, "vo_diag": vo_diag, "vo_offdiag_std": vo_off}
