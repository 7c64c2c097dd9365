"""Attention with four ``nn.Linear`` projections q, k, v, o (``y = x Wᵀ + b``): ViT, DeiT, the Llama family (Llama,
Mistral, Qwen2, Qwen3, Gemma, OLMo 2, and the attention layers of Jamba and Bamba), BERT and RoBERTa.

``q_proj.weight`` rows ``h·k:(h+1)·k`` are ``(W_Q^h)ᵀ``; ``k_proj`` and ``v_proj`` have ``G·k`` rows for ``G``
key/value heads (grouped-query attention); ``o_proj.weight`` is ``W_Oᵀ``. Any module with ``q_proj``, ``k_proj``,
``v_proj`` and ``o_proj`` linear children, a ``head_dim`` and a square residual map is recognised by that structure
alone, so a new Llama-like model needs only its line in :data:`hf_mimetic.catalog.FAMILIES`.
"""

from __future__ import annotations

from operator import attrgetter

from torch import nn

from .attention import AttentionLayout, Factors, Geometry
from .base import linear_map, write, zero_

LLAMA_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj")


class QKVOLinear(AttentionLayout):
    """Separate q, k, v and o ``nn.Linear`` layers, named ``names`` inside the attention module."""

    description = "separate q/k/v/o nn.Linear projections"

    def __init__(self, module_classes: tuple[str, ...], names: tuple[str, str, str, str] = LLAMA_NAMES,
                 head_dim: str = "head_dim", structural: bool = False) -> None:  # fmt: skip
        self.module_classes = module_classes
        self.names = names
        self.head_dim = attrgetter(head_dim)
        self.structural = structural

    def recognises(self, module: nn.Module) -> bool:
        named = super().recognises(module)
        # Leaves (Linear, Conv2d, norms: most modules of a model) are rejected first, cheaply: the plan asks every
        # module of a model, and hasattr on an nn.Module costs an exception when the answer is no.
        if not named and not (self.structural and module._modules and hasattr(module, "head_dim")):
            return False
        if getattr(module, "is_cross_attention", False):
            return False  # only self-attention: cross-attention keeps its native init
        if named:
            return True
        try:
            q, k, v, o = self._projections(module)
        except AttributeError:
            return False
        linear = all(isinstance(p, nn.Linear) for p in (q, k, v, o))
        return linear and o.out_features == q.in_features  # a square residual map: W_V W_O ≈ α2 Z − β2 I makes sense

    def _projections(self, module: nn.Module) -> list[nn.Linear]:
        return [module.get_submodule(name) for name in self.names]

    def projections(self, module: nn.Module) -> list:
        return [p.weight for p in self._projections(module)]

    def geometry(self, module: nn.Module) -> Geometry:
        q, k = self._projections(module)[:2]
        head_dim = self.head_dim(module)
        return Geometry(q.in_features, q.out_features // head_dim, k.out_features // head_dim, head_dim)

    def write_factors(self, module: nn.Module, factors: Factors) -> None:
        for projection, factor in zip(self._projections(module), (factors.w_q, factors.w_k, factors.w_v, factors.w_o)):
            if factor is not None:
                write(projection.weight, factor.T)  # nn.Linear stores Wᵀ
                zero_(projection.bias)  # biases are not part of the products (our reading; native init zeroes them too)

    def written(self, module: nn.Module, cfg) -> list[nn.Module]:
        q, k, v, o = self._projections(module)
        return ([q, k] if cfg.qk else []) + ([v, o] if cfg.vo else [])

    def factors_of(self, module: nn.Module) -> Factors:
        return Factors(*(linear_map(p, p.in_features) for p in self._projections(module)))
