"""Attention with four ``nn.Linear`` projections q, k, v, o (``y = x Wᵀ + b``): ViT in transformers ≥ 5.23.

``q_proj.weight`` rows ``h·k:(h+1)·k`` are ``(W_Q^h)ᵀ``; ``o_proj.weight`` is ``W_Oᵀ``.
"""

from __future__ import annotations

from torch import nn

from ..registry import Family, register
from .attention import AttentionLayout, Factors, Geometry
from .base import linear_map, write, zero_


class QKVOLinear(AttentionLayout):
    """Separate ``q_proj``, ``k_proj``, ``v_proj``, ``o_proj`` linear layers (names configurable)."""

    module_classes = ("ViTAttention",)
    description = "separate q/k/v/o nn.Linear projections"

    def __init__(self, names: tuple[str, str, str, str] = ("q_proj", "k_proj", "v_proj", "o_proj")) -> None:
        self.names = names

    def _projections(self, module: nn.Module) -> list[nn.Linear]:
        return [module.get_submodule(name) for name in self.names]

    def projections(self, module: nn.Module) -> list:
        return [p.weight for p in self._projections(module)]

    def geometry(self, module: nn.Module) -> Geometry:
        q, k = self._projections(module)[:2]
        head_dim = module.head_dim
        return Geometry(q.in_features, q.out_features // head_dim, k.out_features // head_dim, head_dim)

    def write_factors(self, module: nn.Module, factors: Factors) -> None:
        for projection, factor in zip(self._projections(module), (factors.w_q, factors.w_k, factors.w_v, factors.w_o)):
            if factor is not None:
                write(projection.weight, factor.T)  # nn.Linear stores Wᵀ
                zero_(projection.bias)  # biases are not part of the products (our reading; native init zeroes them too)

    def factors_of(self, module: nn.Module) -> Factors:
        q, k, v, o = self._projections(module)
        return Factors(*(linear_map(p, p.in_features) for p in (q, k, v, o)))


QKVO_LINEAR = register(QKVOLinear())

register(
    Family(
        "vit", preset="vision", auto_class="AutoModelForImageClassification",
        tiny=dict(hidden_size=96, num_hidden_layers=3, num_attention_heads=3, intermediate_size=192, image_size=16, patch_size=4, num_labels=5),
        # The thesis's CIFAR-10 ViT-Tiny (§3.2.4): width 192, depth 12, 3 heads, patch 2, 32×32 input.
        showcase=dict(hidden_size=192, num_hidden_layers=12, num_attention_heads=3, intermediate_size=768, image_size=32, patch_size=2),
    )
)  # fmt: skip
