"""GPT-2's attention: ``c_attn`` (``Conv1D``, ``y = x W + b``, weight ``(d, 3d)`` = ``[W_Q | W_K | W_V]``) and
``c_proj`` (``(d, d)`` = ``W_O``). ``Conv1D`` stores ``W`` itself, so the factors are written untransposed."""

from __future__ import annotations

import torch
from torch import nn

from .attention import AttentionLayout, Factors, Geometry
from .base import linear_map, write, zero_


class GPT2Conv1D(AttentionLayout):
    """``GPT2Attention`` (self-attention only: cross-attention, ``add_cross_attention=True``, keeps its native init)."""

    description = "GPT-2 Conv1D c_attn = [q, k, v], c_proj"

    def recognises(self, module: nn.Module) -> bool:
        return super().recognises(module) and not module.is_cross_attention

    def projections(self, module: nn.Module) -> list[torch.Tensor]:
        return [module.c_attn.weight, module.c_proj.weight]

    def geometry(self, module: nn.Module) -> Geometry:
        return Geometry(module.embed_dim, module.num_heads, module.num_heads, module.head_dim)

    def write_factors(self, module: nn.Module, factors: Factors) -> None:
        d = module.embed_dim
        new_c_attn = module.c_attn.weight.detach().float().clone()
        for block, factor in enumerate((factors.w_q, factors.w_k, factors.w_v)):
            if factor is not None:
                new_c_attn[:, block * d : (block + 1) * d] = factor
        if factors.w_q is not None or factors.w_v is not None:
            write(module.c_attn.weight, new_c_attn)
            zero_(module.c_attn.bias)
        if factors.w_o is not None:
            write(module.c_proj.weight, factors.w_o)  # replaces GPT-2's 1/√(2L) rescale of c_proj: W_V W_O is exact
            zero_(module.c_proj.bias)

    def written(self, module: nn.Module, cfg) -> list[nn.Module]:
        return ([module.c_attn] if cfg.qk and cfg.vo else []) + ([module.c_proj] if cfg.vo else [])  # c_attn: q, k, v

    def factors_of(self, module: nn.Module) -> Factors:
        d = module.embed_dim
        qkv = linear_map(module.c_attn, d)
        return Factors(qkv[:, :d], qkv[:, d : 2 * d], qkv[:, 2 * d :], linear_map(module.c_proj, d))
