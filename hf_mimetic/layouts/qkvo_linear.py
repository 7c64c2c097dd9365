"""Attention with four ``nn.Linear`` projections q, k, v, o (``y = x Wᵀ + b``): ViT, DeiT, the Llama family (Llama,
Mistral, Qwen2, Qwen3, Gemma, OLMo 2, and the attention layers of Jamba and Bamba), BERT and RoBERTa.

``q_proj.weight`` rows ``h·k:(h+1)·k`` are ``(W_Q^h)ᵀ``; ``k_proj`` and ``v_proj`` have ``G·k`` rows for ``G``
key/value heads (grouped-query attention); ``o_proj.weight`` is ``W_Oᵀ``. Any module with ``q_proj``, ``k_proj``,
``v_proj`` and ``o_proj`` linear children, a ``head_dim`` and a square residual map is recognised by that structure
alone, so a new Llama-like model needs only its :class:`~hf_mimetic.registry.Family` line.
"""

from __future__ import annotations

from functools import partial
from operator import attrgetter

from torch import nn

from ..registry import Family, attention_lm, encoder_lm, register, vision_transformer
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

    def factors_of(self, module: nn.Module) -> Factors:
        return Factors(*(linear_map(p, p.in_features) for p in self._projections(module)))


QKVO_LINEAR = register(QKVOLinear(("ViTAttention", "DeiTAttention", "LlamaAttention"), structural=True))
BERT_QKVO = register(
    QKVOLinear(("BertAttention", "RobertaAttention"), ("self.query", "self.key", "self.value", "output.dense"),
               head_dim="self.attention_head_size")
)  # fmt: skip

VISION = dict(hidden_size=96, num_hidden_layers=3, num_attention_heads=3, intermediate_size=192, image_size=16, patch_size=4, num_labels=5)
# A decoder with grouped-query attention: 4 query heads share 2 key/value heads.
DECODER = dict(hidden_size=64, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128,
               vocab_size=64, max_position_embeddings=128, bos_token_id=1, eos_token_id=2, pad_token_id=0)  # fmt: skip
ENCODER = dict(hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=128, vocab_size=64,
               max_position_embeddings=66, pad_token_id=1)  # fmt: skip
decoder_lm = partial(attention_lm, kv_heads=True, mlp="gated")

for model_type, preset, auto, tiny, extra in [
    # The thesis's CIFAR-10 ViT-Tiny (§3.2.4) is the showcase: width 192, depth 12, 3 heads, patch 2, 32×32 input.
    ("vit", "vision", "AutoModelForImageClassification", VISION,
     dict(image_config=vision_transformer,
          showcase=dict(hidden_size=192, num_hidden_layers=12, num_attention_heads=3, intermediate_size=768, image_size=32, patch_size=2))),
    # DeiT maps to two head classes: transformers' auto class needs `architectures` to choose.
    ("deit", "vision", "AutoModelForImageClassification", {**VISION, "architectures": ["DeiTForImageClassification"]},
     dict(image_config=lambda sizes: {**vision_transformer(sizes), "architectures": ["DeiTForImageClassification"]})),
    ("llama", "decoder", "AutoModelForCausalLM", DECODER, dict(lm_config=decoder_lm)),
    ("mistral", "decoder", "AutoModelForCausalLM", DECODER, dict(lm_config=decoder_lm)),
    ("qwen2", "decoder", "AutoModelForCausalLM", DECODER, dict(lm_config=decoder_lm)),  # q/k/v biases
    ("qwen3", "decoder", "AutoModelForCausalLM", {**DECODER, "head_dim": 16}, dict(lm_config=decoder_lm)),  # QK-norm
    # Gemma: 4 heads of 32 on width 64 (q_proj 64 → 128, not square) sharing one key/value head (multi-query).
    ("gemma", "decoder", "AutoModelForCausalLM", {**DECODER, "num_key_value_heads": 1, "head_dim": 32}, {}),
    ("olmo2", "decoder", "AutoModelForCausalLM", DECODER, dict(lm_config=decoder_lm)),  # QK-norm over all heads
    ("bert", "encoder", "AutoModelForMaskedLM", {**ENCODER, "pad_token_id": 0}, dict(lm_config=encoder_lm)),
    # RoBERTa numbers positions from padding_idx + 1 (padding_idx 1: two rows before the first position).
    ("roberta", "encoder", "AutoModelForMaskedLM", ENCODER, dict(lm_config=partial(encoder_lm, position_offset=2))),
]:  # fmt: skip
    register(Family(model_type, preset=preset, auto_class=auto, tiny=tiny, **extra))
