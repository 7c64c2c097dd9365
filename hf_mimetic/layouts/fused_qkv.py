"""Attention whose q, k and v come out of one fused ``nn.Linear``, in one of two row orders:

* ``blocks``: ``[q (H·k) | k (G·k) | v (G·k)]`` — Phi-3's ``qkv_proj``, ModernBERT's ``Wqkv`` (viewed ``(3, H, k)``);
* ``per_head``: ``[q_h | k_h | v_h]`` for each head in turn — GPT-NeoX's ``query_key_value`` (viewed
  ``(H, 3k)`` and chunked).

The output projection is a separate ``nn.Linear`` (``o_proj``, ``Wo``, ``dense``).
"""

from __future__ import annotations

from operator import attrgetter

import torch
from torch import nn

from .attention import AttentionLayout, Factors, Geometry
from .base import linear_map, write, zero_


class FusedQKV(AttentionLayout):
    """One ``qkv`` linear layer and an output layer ``out``; ``order`` is ``"blocks"`` or ``"per_head"``."""

    description = "fused qkv nn.Linear"

    def __init__(self, module_classes: tuple[str, ...], qkv: str, out: str, order: str, head_dim: str,
                 kv_heads: str | None = None) -> None:  # fmt: skip
        self.module_classes, self.qkv, self.out, self.order = module_classes, qkv, out, order
        self.head_dim = attrgetter(head_dim)
        self.kv_heads = attrgetter(kv_heads) if kv_heads else None
        self.description = f"fused {qkv} ({order}), {out}"

    def projections(self, module: nn.Module) -> list[torch.Tensor]:
        return [module.get_submodule(self.qkv).weight, module.get_submodule(self.out).weight]

    def geometry(self, module: nn.Module) -> Geometry:
        qkv, head_dim = module.get_submodule(self.qkv), self.head_dim(module)
        kv_heads = self.kv_heads(module) if self.kv_heads else None
        heads = qkv.out_features // head_dim - 2 * kv_heads if kv_heads else qkv.out_features // (3 * head_dim)
        return Geometry(qkv.in_features, heads, kv_heads or heads, head_dim)

    def _rows(self, g: Geometry) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Indices of the fused weight's rows holding W_Q, W_K and W_V (each in head order)."""
        q, kv = g.num_heads * g.head_dim, g.num_kv_heads * g.head_dim
        if self.order == "blocks":
            return torch.arange(q), torch.arange(q, q + kv), torch.arange(q + kv, q + 2 * kv)
        per_head = torch.arange(3 * q).view(g.num_heads, 3, g.head_dim)  # [q_h | k_h | v_h] for each head
        return per_head[:, 0].reshape(-1), per_head[:, 1].reshape(-1), per_head[:, 2].reshape(-1)

    def write_factors(self, module: nn.Module, factors: Factors) -> None:
        qkv, out = module.get_submodule(self.qkv), module.get_submodule(self.out)
        g = self.geometry(module)
        new = qkv.weight.detach().float().clone()
        for rows, factor in zip(self._rows(g), (factors.w_q, factors.w_k, factors.w_v)):
            if factor is not None:
                new[rows] = factor.T  # nn.Linear stores Wᵀ
        write(qkv.weight, new)
        zero_(qkv.bias)
        if factors.w_o is not None:
            write(out.weight, factors.w_o.T)
            zero_(out.bias)

    def written(self, module: nn.Module, cfg) -> list[nn.Module]:
        qkv, out = module.get_submodule(self.qkv), module.get_submodule(self.out)
        return ([qkv] if cfg.qk and cfg.vo else []) + ([out] if cfg.vo else [])  # qk alone: v keeps its native init

    def factors_of(self, module: nn.Module) -> Factors:
        qkv, out = module.get_submodule(self.qkv), module.get_submodule(self.out)
        fused = linear_map(qkv, qkv.in_features)  # (d, rows): columns are the fused layer's outputs
        q, k, v = (fused[:, rows] for rows in self._rows(self.geometry(module)))
        return Factors(q, k, v, linear_map(out, out.in_features))
