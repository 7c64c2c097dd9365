"""ConvMixer's configuration (Trockman & Kolter, "Patches Are All You Need?"; thesis §2.1)."""

from __future__ import annotations

from transformers import PreTrainedConfig


class ConvMixerConfig(PreTrainedConfig):
    r"""A ConvMixer-``hidden_size``/``depth``: a patch embedding, then ``depth`` blocks of a residual depthwise
    ``kernel_size × kernel_size`` convolution and a pointwise convolution, each followed by the activation and
    BatchNorm; global average pooling.

    Args:
        hidden_size: channels ``h`` of every layer (the thesis's width).
        depth: number of blocks.
        kernel_size: side of the depthwise filters (the thesis uses 9 on CIFAR-10).
        patch_size: side (and stride) of the patch embedding.
        hidden_act: activation (``"gelu"`` in the thesis).
        num_channels: channels of the input images.
        image_size: side of the input images (for image processors; the model takes any size).
        batch_norm_eps: BatchNorm's epsilon.

    Example:
        >>> config = ConvMixerConfig(hidden_size=256, depth=8, kernel_size=9, patch_size=2, num_labels=10)
        >>> model = AutoModelForImageClassification.from_config(config)
    """

    model_type = "convmixer"
    attribute_map = {"num_hidden_layers": "depth"}

    hidden_size: int = 256
    depth: int = 8
    kernel_size: int = 9
    patch_size: int = 2
    hidden_act: str = "gelu"
    num_channels: int = 3
    image_size: int = 32
    batch_norm_eps: float = 1e-5

    def __post_init__(self, **kwargs):
        for name in ("hidden_size", "depth", "kernel_size", "patch_size", "num_channels", "image_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ConvMixerConfig.{name} must be an integer >= 1, got {value!r}")
        super().__post_init__(**kwargs)


__all__ = ["ConvMixerConfig"]
