"""Model sizes in one vocabulary for every family, and the config each family builds from them: what the training
scripts (``--hidden_size``, ``--num_layers``, …), the studies and the Space use to make models of a chosen size.

* :class:`LMSizes` → :data:`LM_CONFIGS` (causal and masked language models: ``scripts/train_synthetic.py``,
  ``scripts/train_language_model.py``);
* :class:`ImageSizes` → :data:`IMAGE_CONFIGS` (image classifiers: ``scripts/train_image_classification.py``).

Example:
    >>> LM_CONFIGS["llama"](LMSizes(hidden_size=256, num_layers=4, vocab_size=64, max_positions=128, num_kv_heads=2))
    {'hidden_size': 256, 'num_hidden_layers': 4, 'num_attention_heads': 4, ..., 'num_key_value_heads': 2}
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

from ..catalog import family


@dataclass(frozen=True)
class LMSizes:
    """Sizes of a small causal LM, in one vocabulary for every family (``--hidden_size`` etc. of the scripts)."""

    hidden_size: int
    num_layers: int
    vocab_size: int
    max_positions: int
    head_dim: int = 64  # attention head size, or Mamba 2's SSM head size
    state_size: int = 32  # SSM state N
    expand: int = 2  # SSM inner width = expand × hidden_size
    chunk_size: int = 32  # Mamba 2's SSD chunk (speed only)
    num_kv_heads: int | None = None  # grouped-query attention: key/value heads (None: one per query head)


@dataclass(frozen=True)
class ImageSizes:
    """Sizes of a small image classifier, in one vocabulary for every family (``--hidden_size`` etc. of
    ``scripts/train_image_classification.py``)."""

    image_size: int
    patch_size: int
    hidden_size: int
    num_layers: int
    num_labels: int
    num_heads: int = 3  # attention models
    intermediate_size: int | None = None  # attention models; default 4 × hidden_size
    kernel_size: int = 9  # depthwise-convolution models
    num_channels: int = 3


def vision_transformer(sizes: ImageSizes) -> dict[str, Any]:
    """Config kwargs of a ViT or DeiT."""
    if sizes.hidden_size % sizes.num_heads:
        raise ValueError(f"num_attention_heads {sizes.num_heads} must divide hidden_size {sizes.hidden_size}")
    return dict(
        image_size=sizes.image_size, patch_size=sizes.patch_size, hidden_size=sizes.hidden_size,
        num_hidden_layers=sizes.num_layers, num_attention_heads=sizes.num_heads, num_channels=sizes.num_channels,
        intermediate_size=sizes.intermediate_size or 4 * sizes.hidden_size,
    )  # fmt: skip


def attention_lm(sizes: LMSizes, kv_heads: bool = False, mlp: str | None = None) -> dict[str, Any]:
    """Config kwargs of an attention decoder (transformers' standard names; ``attribute_map`` renames them).

    ``kv_heads``: the family takes ``num_key_value_heads`` (grouped-query attention). ``mlp``: ``"gated"`` (Llama's
    gate/up/down) gets the usual width 8d/3 rounded up to a multiple of 64, ``"plain"`` 4d, ``None`` the config's own
    rule (GPT-2's ``n_inner``); the configs' fixed defaults (Llama's 11008) belong to far wider models."""
    if sizes.hidden_size % sizes.head_dim:
        raise ValueError(f"head_dim {sizes.head_dim} must divide hidden_size {sizes.hidden_size}")
    heads, last = sizes.hidden_size // sizes.head_dim, sizes.vocab_size - 1
    config = dict(
        hidden_size=sizes.hidden_size, num_hidden_layers=sizes.num_layers, num_attention_heads=heads,
        max_position_embeddings=sizes.max_positions, vocab_size=sizes.vocab_size, bos_token_id=last, eos_token_id=last,
    )  # fmt: skip
    if mlp == "gated":
        config["intermediate_size"] = -(-8 * sizes.hidden_size // 3 // 64) * 64
    elif mlp == "plain":
        config["intermediate_size"] = 4 * sizes.hidden_size
    if sizes.num_kv_heads is not None:
        if not kv_heads:
            raise ValueError("this model type has no grouped-query attention: leave num_kv_heads unset")
        if heads % sizes.num_kv_heads:
            raise ValueError(f"num_kv_heads {sizes.num_kv_heads} must divide the {heads} attention heads")
        config["num_key_value_heads"] = sizes.num_kv_heads
    return config


def encoder_lm(sizes: LMSizes, position_offset: int = 0) -> dict[str, Any]:
    """Config kwargs of a BERT-style encoder; ``position_offset``: table rows before the first position (RoBERTa
    numbers positions from ``padding_idx + 1``)."""
    if sizes.hidden_size % sizes.head_dim:
        raise ValueError(f"head_dim {sizes.head_dim} must divide hidden_size {sizes.hidden_size}")
    return dict(
        hidden_size=sizes.hidden_size, num_hidden_layers=sizes.num_layers, num_attention_heads=sizes.hidden_size // sizes.head_dim,
        intermediate_size=4 * sizes.hidden_size, max_position_embeddings=sizes.max_positions + position_offset,
        vocab_size=sizes.vocab_size,
    )  # fmt: skip




def mamba_lm(sizes: LMSizes) -> dict[str, Any]:
    """Config kwargs of a Mamba (or FalconMamba) language model."""
    return dict(
        hidden_size=sizes.hidden_size, num_hidden_layers=sizes.num_layers, state_size=sizes.state_size,
        expand=sizes.expand, vocab_size=sizes.vocab_size, pad_token_id=sizes.vocab_size - 1,
    )  # fmt: skip


def mamba2_lm(sizes: LMSizes) -> dict[str, Any]:
    """Mamba 2 splits its inner width (expand × d) into SSM heads of ``head_dim``."""
    inner = sizes.expand * sizes.hidden_size
    if inner % sizes.head_dim:
        raise ValueError(f"head_dim {sizes.head_dim} must divide the Mamba 2 inner width expand × hidden_size = {inner}")
    return dict(
        hidden_size=sizes.hidden_size, num_hidden_layers=sizes.num_layers, state_size=sizes.state_size, expand=sizes.expand,
        head_dim=sizes.head_dim, num_heads=inner // sizes.head_dim, n_groups=1, vocab_size=sizes.vocab_size,
        pad_token_id=sizes.vocab_size - 1, chunk_size=sizes.chunk_size,
    )  # fmt: skip


def convmixer_image(sizes: ImageSizes) -> dict[str, Any]:
    """Config kwargs of a ConvMixer (the thesis's, chapter 2)."""
    return dict(hidden_size=sizes.hidden_size, depth=sizes.num_layers, kernel_size=sizes.kernel_size,
                patch_size=sizes.patch_size, image_size=sizes.image_size, num_channels=sizes.num_channels)  # fmt: skip


def convnext_image(sizes: ImageSizes) -> dict[str, Any]:
    """A two-stage ConvNeXt (the second stage downsamples 2× and doubles the width), its 7×7 depthwise filters."""
    first = sizes.num_layers - sizes.num_layers // 2
    return dict(
        num_stages=2, hidden_sizes=[sizes.hidden_size, 2 * sizes.hidden_size], depths=[first, sizes.num_layers - first],
        patch_size=sizes.patch_size, image_size=sizes.image_size, num_channels=sizes.num_channels,
    )  # fmt: skip


decoder_lm = partial(attention_lm, kv_heads=True, mlp="gated")

#: model_type → config kwargs from :class:`LMSizes` (the families the language scripts can train).
LM_CONFIGS: dict[str, Callable[[LMSizes], dict[str, Any]]] = {
    "gpt2": attention_lm,
    "llama": decoder_lm, "mistral": decoder_lm, "qwen2": decoder_lm, "qwen3": decoder_lm, "olmo2": decoder_lm,
    "phi3": decoder_lm,
    "gpt_neox": partial(attention_lm, mlp="plain"),
    "bert": encoder_lm,
    "roberta": partial(encoder_lm, position_offset=2),  # positions from padding_idx + 1
    "mamba": mamba_lm, "falcon_mamba": mamba_lm,
    "mamba2": mamba2_lm,
}  # fmt: skip

#: model_type → config kwargs from :class:`ImageSizes` (the families the image script can train).
IMAGE_CONFIGS: dict[str, Callable[[ImageSizes], dict[str, Any]]] = {
    "vit": vision_transformer,
    # DeiT maps to two head classes: transformers' auto class needs `architectures` to choose.
    "deit": lambda sizes: {**vision_transformer(sizes), "architectures": ["DeiTForImageClassification"]},
    "convmixer": convmixer_image,
    "convnext": convnext_image, "convnextv2": convnext_image,
}  # fmt: skip


def lm_types(*auto_classes: str) -> list[str]:
    """The model types the scripts can train as language models from :class:`LMSizes`, with one of
    ``auto_classes`` (``"AutoModelForCausalLM"``, ``"AutoModelForMaskedLM"``)."""
    return sorted(t for t in LM_CONFIGS if family(t).auto_class in auto_classes)


def image_types() -> list[str]:
    """The model types ``scripts/train_image_classification.py`` can build from :class:`ImageSizes`."""
    return sorted(IMAGE_CONFIGS)

