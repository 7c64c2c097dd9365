"""ConvMixer (Trockman & Kolter, "Patches Are All You Need?"; thesis §2.1) as a transformers model.

Exactly the thesis's architecture::

    patches:  Conv2d(C, h, kernel=p, stride=p) → act → BatchNorm
    depth × [ x + BatchNorm(act(DepthwiseConv2d(h, k, padding="same")(x))) → Conv2d(h, h, 1) → act → BatchNorm ]
    global average pooling → Linear(h, classes)

The default initialisation is PyTorch's (``reset_parameters``: Kaiming-uniform convolutions and linear layers),
the "uniform" baseline of the thesis's §3.1.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndNoAttention, ImageClassifierOutputWithNoAttention

from .configuration_convmixer import ConvMixerConfig


class ConvMixerEmbeddings(nn.Module):
    """Patch embedding: a convolution with kernel and stride ``patch_size``, the activation, BatchNorm."""

    def __init__(self, config: ConvMixerConfig) -> None:
        super().__init__()
        self.projection = nn.Conv2d(config.num_channels, config.hidden_size, config.patch_size, stride=config.patch_size)
        self.act = ACT2FN[config.hidden_act]
        self.norm = nn.BatchNorm2d(config.hidden_size, eps=config.batch_norm_eps)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if pixel_values.shape[1] != self.projection.in_channels:
            raise ValueError(f"expected images with {self.projection.in_channels} channels, got shape {tuple(pixel_values.shape)}")
        return self.norm(self.act(self.projection(pixel_values)))


class ConvMixerLayer(nn.Module):
    """One block: residual depthwise convolution (``dwconv``), then the pointwise convolution (``pwconv``)."""

    def __init__(self, config: ConvMixerConfig) -> None:
        super().__init__()
        h = config.hidden_size
        self.dwconv = nn.Conv2d(h, h, config.kernel_size, groups=h, padding="same")
        self.act = ACT2FN[config.hidden_act]
        self.norm = nn.BatchNorm2d(h, eps=config.batch_norm_eps)
        self.pwconv = nn.Conv2d(h, h, 1)
        self.norm2 = nn.BatchNorm2d(h, eps=config.batch_norm_eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states + self.norm(self.act(self.dwconv(hidden_states)))
        return self.norm2(self.act(self.pwconv(hidden_states)))


class ConvMixerPreTrainedModel(PreTrainedModel):
    config_class = ConvMixerConfig
    config: ConvMixerConfig
    base_model_prefix = "convmixer"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    _no_split_modules = ["ConvMixerLayer"]

    def _init_weights(self, module: nn.Module) -> None:
        """PyTorch's own initialisation (transformers guards it, so loaded weights are kept)."""
        if isinstance(module, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)):
            module.reset_parameters()


class ConvMixerModel(ConvMixerPreTrainedModel):
    def __init__(self, config: ConvMixerConfig) -> None:
        super().__init__(config)
        self.embeddings = ConvMixerEmbeddings(config)
        self.layers = nn.ModuleList([ConvMixerLayer(config) for _ in range(config.depth)])
        self.pooler = nn.AdaptiveAvgPool2d(1)
        self.post_init()

    def forward(
        self, pixel_values: torch.Tensor, output_hidden_states: bool | None = None, return_dict: bool | None = None, **kwargs
    ) -> BaseModelOutputWithPoolingAndNoAttention:
        hidden_states = self.embeddings(pixel_values)
        all_hidden_states = [hidden_states] if output_hidden_states else None
        for layer in self.layers:
            hidden_states = layer(hidden_states)
            if all_hidden_states is not None:
                all_hidden_states.append(hidden_states)
        pooled = self.pooler(hidden_states).flatten(1)
        return BaseModelOutputWithPoolingAndNoAttention(
            last_hidden_state=hidden_states, pooler_output=pooled,
            hidden_states=tuple(all_hidden_states) if all_hidden_states is not None else None,
        )  # fmt: skip


class ConvMixerForImageClassification(ConvMixerPreTrainedModel):
    accepts_loss_kwargs = False

    def __init__(self, config: ConvMixerConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.convmixer = ConvMixerModel(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels) if config.num_labels > 0 else nn.Identity()
        self.post_init()

    def forward(
        self, pixel_values: torch.Tensor, labels: torch.LongTensor | None = None, output_hidden_states: bool | None = None,
        return_dict: bool | None = None, **kwargs,
    ) -> ImageClassifierOutputWithNoAttention:  # fmt: skip
        outputs = self.convmixer(pixel_values, output_hidden_states=output_hidden_states)
        logits = self.classifier(outputs.pooler_output)
        loss = None
        if labels is not None:
            loss = self.loss_function(labels=labels, pooled_logits=logits, config=self.config)
        return ImageClassifierOutputWithNoAttention(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


__all__ = ["ConvMixerForImageClassification", "ConvMixerModel", "ConvMixerPreTrainedModel"]
