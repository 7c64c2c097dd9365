"""The catalogue: every kind of layer and layout mimetic init knows, in order, and every model family it is tested on.

Plain data, read top to bottom (in the style of PEFT's target-module mappings), and a few look-ups at the end.
Importing it registers nothing and builds nothing.

* :data:`LAYOUTS` — for each kind of layer (``attention``, ``positions``, ``mlp``, ``ssm``, ``conv``), the layouts
  that recognise it, in the order they are tried. A module gets at most one layout of each kind: the first that
  recognises it. So ConvMixer's block gets both its depthwise filters (``conv``) and its channel-mixing layer
  (``mlp``).
* :data:`KINDS` — each kind's options (its config class), from the layouts.
* :data:`TIMM_MODELS` — the timm model classes recognised (:mod:`hf_mimetic.integrations.timm`).
* :data:`FAMILIES` — transformers ``model_type`` → :class:`Family`: the preset its recipe starts from, the auto class
  of the model users train, and a small example config (what ``hf-mimetic structure``, ``coverage`` and
  ``inspect --model_type`` build).

Models of other types get mimetic init where a layout recognises their layers; if they are not in :data:`FAMILIES`,
the recipe must name its preset (``mimetic_config={"preset": ...}``, or a :class:`~hf_mimetic.MimeticInitMixin`'s
``mimetic_preset``). A user's own model declares its layouts on its class (:class:`~hf_mimetic.MimeticInitMixin`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from torch import nn

from .config.base import KindConfig
from .layouts import (
    DepthwiseConv,
    FirstMLPLayer,
    FusedQKV,
    GPT2Conv1D,
    Layout,
    Mamba2MixerLayout,
    MambaMixerLayout,
    PatchGridTable,
    QKVOLinear,
    TimmPatchGridTable,
    TokenTable,
)

# ------------------------------------------------------------------------------------------------------------ layouts
LAYOUTS: dict[str, tuple[Layout, ...]] = {
    "attention": (
        GPT2Conv1D(("GPT2Attention",)),
        QKVOLinear(("BertAttention", "RobertaAttention"), ("self.query", "self.key", "self.value", "output.dense"),
                   head_dim="self.attention_head_size"),
        FusedQKV(("Phi3Attention",), "qkv_proj", "o_proj", "blocks", "head_dim", kv_heads="num_key_value_heads"),
        FusedQKV(("ModernBertAttention",), "Wqkv", "Wo", "blocks", "head_dim"),
        FusedQKV(("GPTNeoXAttention",), "query_key_value", "dense", "per_head", "head_size"),
        # Last: it also recognises, by structure, any module with q_proj/k_proj/v_proj/o_proj linear children and a
        # head_dim (the Llama family and the attention of Jamba and Bamba need no entry of their own).
        QKVOLinear(("ViTAttention", "DeiTAttention", "LlamaAttention"), structural=True),
    ),
    "positions": (
        PatchGridTable({"ViTEmbeddings": 1, "DeiTEmbeddings": 2}),  # rows of the CLS (and distillation) tokens
        TokenTable({"GPT2Model": "wpe.weight", "BertEmbeddings": "position_embeddings.weight",
                    "RobertaEmbeddings": "position_embeddings.weight"}),
    ),
    # Plain two-layer MLPs only: in a gated MLP (Llama's gate_proj and up_proj) "the first layer" is not one matrix.
    "mlp": (
        FirstMLPLayer({
            "ViTMLP": "fc1", "DeiTMLP": "fc1", "GPT2MLP": "c_fc", "BertIntermediate": "dense",
            "RobertaIntermediate": "dense", "GPTNeoXMLP": "dense_h_to_4h",
            # ConvMixer's channel mixing is one pointwise convolution; ConvNeXt's MLP is pwconv1 → GELU → pwconv2.
            "ConvMixerLayer": "pwconv", "ConvNextLayer": "pwconv1", "ConvNextV2Layer": "pwconv1",
        }),
    ),
    "ssm": (
        MambaMixerLayout(("MambaMixer", "FalconMambaMixer", "JambaMambaMixer")),
        Mamba2MixerLayout(("Mamba2Mixer", "BambaMixer", "Zamba2MambaMixer")),
    ),
    "conv": (DepthwiseConv(("ConvMixerLayer", "ConvNextLayer", "ConvNextV2Layer")),),
}  # fmt: skip


#: Every kind of layer, by name: its options (a config class, whose ``description`` the model card uses). A new kind
#: of layer is its maths, its layout with its config class, and its line in LAYOUTS.
KINDS: dict[str, type[KindConfig]] = {kind: layouts[0].config for kind, layouts in LAYOUTS.items()}


# ----------------------------------------------------------------------------------------------------------- families
class Family(NamedTuple):
    """A model type mimetic init is tested on: its ``preset`` (:data:`hf_mimetic.config.PRESETS`), the transformers
    ``auto_class`` of the model users train, and an ``example`` config (kwargs) that builds in about a second."""

    preset: str
    auto_class: str
    example: dict[str, Any]

    def config(self, model_type: str, **overrides: Any):
        """The example config of ``model_type`` with ``overrides``."""
        from transformers import AutoConfig

        return AutoConfig.for_model(model_type, **{**self.example, **overrides})

    def auto(self) -> type:
        """The auto class, e.g. ``transformers.AutoModelForCausalLM``."""
        import transformers

        return getattr(transformers, self.auto_class)


CAUSAL, MASKED, IMAGE = "AutoModelForCausalLM", "AutoModelForMaskedLM", "AutoModelForImageClassification"
# A decoder with grouped-query attention: 4 query heads share 2 key/value heads.
DECODER = dict(hidden_size=64, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128,
               vocab_size=64, max_position_embeddings=128, bos_token_id=1, eos_token_id=2, pad_token_id=0)
ENCODER = dict(hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=128, vocab_size=64,
               max_position_embeddings=66, pad_token_id=1)
# The thesis's CIFAR-10 ViT-Tiny (§3.2.4): width 192, depth 12, 3 heads, patch 2, 32×32 input.
VIT_TINY = dict(hidden_size=192, num_hidden_layers=12, num_attention_heads=3, intermediate_size=768, image_size=32,
                patch_size=2, num_labels=10)
SMALL_VIT = dict(hidden_size=96, num_hidden_layers=3, num_attention_heads=3, intermediate_size=192, image_size=16,
                 patch_size=4, num_labels=5)

FAMILIES: dict[str, Family] = {
    # Attention (thesis §3.2), with learned position tables where the model has one.
    "vit": Family("vision", IMAGE, VIT_TINY),
    # DeiT maps to two head classes: transformers' auto class needs `architectures` to choose.
    "deit": Family("vision", IMAGE, {**SMALL_VIT, "architectures": ["DeiTForImageClassification"]}),
    "gpt2": Family("language", CAUSAL, dict(n_embd=256, n_layer=4, n_head=4, vocab_size=256, n_positions=256,
                                            bos_token_id=255, eos_token_id=255)),
    "llama": Family("decoder", CAUSAL, DECODER),
    "mistral": Family("decoder", CAUSAL, DECODER),
    "qwen2": Family("decoder", CAUSAL, DECODER),  # q/k/v biases
    "qwen3": Family("decoder", CAUSAL, {**DECODER, "head_dim": 16}),  # QK-norm
    # Gemma: 4 heads of 32 on width 64 (q_proj 64 → 128, not square) sharing one key/value head (multi-query).
    "gemma": Family("decoder", CAUSAL, {**DECODER, "num_key_value_heads": 1, "head_dim": 32}),
    "olmo2": Family("decoder", CAUSAL, DECODER),  # QK-norm over all heads
    "phi3": Family("decoder", CAUSAL, DECODER),  # fused qkv_proj
    "gpt_neox": Family("decoder", CAUSAL, dict(hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                                               intermediate_size=128, vocab_size=64, max_position_embeddings=128,
                                               bos_token_id=0, eos_token_id=2)),  # partial rotary (rotary_pct 0.25)
    "bert": Family("encoder", MASKED, {**ENCODER, "pad_token_id": 0}),
    # RoBERTa numbers positions from padding_idx + 1 (padding_idx 1: two rows before the first position).
    "roberta": Family("encoder", MASKED, ENCODER),
    "modernbert": Family("encoder", MASKED, dict(hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                                                 intermediate_size=128, vocab_size=64, pad_token_id=0, bos_token_id=1,
                                                 eos_token_id=2, cls_token_id=1, sep_token_id=2)),
    # State-space layers (thesis §3.3).
    "mamba": Family("ssm", CAUSAL, dict(hidden_size=128, num_hidden_layers=4, state_size=32, vocab_size=32)),
    "falcon_mamba": Family("ssm", CAUSAL, dict(hidden_size=32, num_hidden_layers=3, state_size=8, vocab_size=32,
                                               conv_kernel=4)),
    "mamba2": Family("ssm", CAUSAL, dict(hidden_size=128, num_hidden_layers=4, state_size=32, num_heads=4, head_dim=64,
                                         n_groups=1, vocab_size=32)),
    # Hybrids: Jamba (Mamba layers, grouped-query attention every other layer, mixture-of-experts MLPs), Bamba (Mamba 2
    # layers and an attention layer), Zamba 2 (Mamba 2 layers and a transformer block shared by every "hybrid" layer;
    # that block attends over [hidden, embeddings], a map from 2d to d that the square W_V W_O target does not cover,
    # so it keeps its native init).
    "jamba": Family("hybrid", CAUSAL, dict(
        hidden_size=64, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128,
        vocab_size=64, attn_layer_period=2, attn_layer_offset=1, expert_layer_period=2, expert_layer_offset=1,
        num_experts=2, mamba_d_state=8, mamba_dt_rank=8)),
    "bamba": Family("hybrid", CAUSAL, dict(
        hidden_size=64, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128,
        vocab_size=64, attn_layer_indices=[1], mamba_n_heads=8, mamba_d_head=16, mamba_d_state=8, mamba_n_groups=1)),
    "zamba2": Family("hybrid", CAUSAL, dict(
        hidden_size=64, num_hidden_layers=4, layers_block_type=["mamba", "hybrid", "mamba", "hybrid"],
        num_attention_heads=4, num_key_value_heads=4, intermediate_size=128, vocab_size=64, mamba_d_state=8,
        n_mamba_heads=8, mamba_ngroups=1, attention_head_dim=32)),
    # Depthwise convolutions (thesis §3.1); ConvMixer is registered with the Auto classes by `import hf_mimetic`.
    "convmixer": Family("conv", IMAGE, dict(hidden_size=256, depth=8, kernel_size=9, patch_size=2, image_size=32,
                                            num_labels=10)),
    "convnext": Family("conv", IMAGE, dict(hidden_sizes=[16, 32], depths=[2, 1], num_stages=2, patch_size=2,
                                           image_size=16, num_labels=5)),
    "convnextv2": Family("conv", IMAGE, dict(hidden_sizes=[16, 32], depths=[2, 1], num_stages=2, patch_size=2,
                                             image_size=16, num_labels=5)),
}  # fmt: skip


# --------------------------------------------------------------------------------------------------------------- timm
class TimmFamily(NamedTuple):
    """A timm model class: its preset, the layouts of its modules, the containers whose children are its layers (a
    regular expression over module names: timm keeps blocks in ``nn.Sequential``, not ``nn.ModuleList``), and the
    name of one timm model of the class (``hf-mimetic coverage``)."""

    preset: str
    layouts: tuple[Layout, ...]
    layers: str
    example: str = ""


TIMM_VIT = TimmFamily("vision", (
    # timm.layers.Attention: one qkv nn.Linear whose output is reshaped (B, N, 3, heads, head_dim): [Q | K | V] blocks.
    FusedQKV(("Attention",), "qkv", "proj", "blocks", "head_dim"),
    TimmPatchGridTable(("VisionTransformer", "VisionTransformerDistilled")),
    FirstMLPLayer({"Mlp": "fc1"}),
), r"blocks")
TIMM_CONV_MIXER = TimmFamily("conv", (
    # Residual(Sequential(depthwise Conv2d, act, BatchNorm)) → 1×1 Conv2d → act → BatchNorm.
    DepthwiseConv(("Residual",), attribute="fn.0"),
), r"blocks")
TIMM_CONVNEXT = TimmFamily("conv", (DepthwiseConv(("ConvNeXtBlock",), attribute="conv_dw"), FirstMLPLayer({"Mlp": "fc1"})),
                           r"stages\.\d+\.blocks")

#: timm model class name → what mimetic init knows of it (``hf_mimetic.integrations.timm``).
TIMM_MODELS: dict[str, TimmFamily] = {
    "VisionTransformer": TIMM_VIT._replace(example="vit_tiny_patch16_224"),  # ViT and DeiT
    "VisionTransformerDistilled": TIMM_VIT._replace(example="deit_tiny_distilled_patch16_224"),  # distillation token
    "ConvMixer": TIMM_CONV_MIXER._replace(example="convmixer_768_32"),
    "ConvNeXt": TIMM_CONVNEXT._replace(example="convnext_atto"),
}


# ----------------------------------------------------------------------------------------------------------- look-ups
def layouts_for(module: nn.Module, declared: tuple[Layout, ...] = ()) -> list[Layout]:
    """The layouts that recognise ``module``: at most one per kind, the first that recognises it among ``declared``
    (a model class's own, :class:`~hf_mimetic.MimeticInitMixin`) and then :data:`LAYOUTS`."""
    found: dict[str, Layout] = {}
    for layout in (*declared, *(layout for layouts in LAYOUTS.values() for layout in layouts)):
        if layout.kind not in found and layout.recognises(module):
            found[layout.kind] = layout
    return [found[kind] for kind in LAYOUTS if kind in found]


def family(model_type: str) -> Family:
    """The family of ``model_type`` (``ValueError`` naming the supported ones)."""
    if model_type not in FAMILIES:
        raise ValueError(f"model type {model_type!r} is not in hf_mimetic's catalogue; catalogued: {sorted(FAMILIES)}")
    return FAMILIES[model_type]


def model_types() -> list[str]:
    """Every catalogued model type, sorted."""
    return sorted(FAMILIES)


def recognised_modules() -> list[str]:
    """Every module class a catalogued layout recognises by name (for error messages)."""
    return sorted({name for layouts in LAYOUTS.values() for layout in layouts for name in layout.module_classes})
