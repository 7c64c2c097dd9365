"""ConvMixer as a transformers model, registered with the Auto classes by :func:`register_auto_classes`."""

from .configuration_convmixer import ConvMixerConfig
from .modeling_convmixer import ConvMixerForImageClassification, ConvMixerModel, ConvMixerPreTrainedModel


def register_auto_classes() -> None:
    """``AutoConfig``, ``AutoModel``, ``AutoModelForImageClassification`` and ``AutoImageProcessor`` (ViT's image
    processor: resize, rescale, normalise) learn ``model_type="convmixer"``. Idempotent."""
    from transformers import (
        AutoConfig,
        AutoImageProcessor,
        AutoModel,
        AutoModelForImageClassification,
        ViTImageProcessor,
    )

    AutoConfig.register("convmixer", ConvMixerConfig, exist_ok=True)
    AutoModel.register(ConvMixerConfig, ConvMixerModel, exist_ok=True)
    AutoModelForImageClassification.register(ConvMixerConfig, ConvMixerForImageClassification, exist_ok=True)
    AutoImageProcessor.register(ConvMixerConfig, image_processor_classes={"pil": ViTImageProcessor}, exist_ok=True)


__all__ = [
    "ConvMixerConfig", "ConvMixerForImageClassification", "ConvMixerModel", "ConvMixerPreTrainedModel",
    "register_auto_classes",
]  # fmt: skip
