"""The first layer of an MLP block, given a nonzero mean ("Mimetic Initialization of MLPs", Trockman & Kolter 2026)."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..config.mlp import MLPConfig
from ..registry import register
from .base import Layout, writable, write


class FirstMLPLayer(Layout):
    """Adds ``mlp_mean`` to the native draw of the first layer of an MLP block (named per module class)."""

    kind = "mlp"
    description = "first MLP layer + mean"

    def __init__(self, first_layer: dict[str, str]) -> None:
        self.first_layer = first_layer
        self.module_classes = tuple(first_layer)

    def weight(self, module: nn.Module) -> nn.Parameter:
        return module.get_submodule(self.first_layer[type(module).__name__]).weight

    def touched(self, module: nn.Module) -> list[nn.Parameter]:
        return [self.weight(module)]

    def initialize(self, module: nn.Module, cfg: MLPConfig, model: nn.Module, depth: float = 0.0) -> None:
        weight = self.weight(module)
        if cfg.mlp_mean != 0.0 and writable(weight):
            write(weight, weight.detach().float() + cfg.mlp_mean)

    def read(self, module: nn.Module) -> dict[str, Any]:
        return {"mean": self.weight(module).detach().float().mean().item()}


# Plain two-layer MLPs only: in a gated MLP (Llama's gate_proj and up_proj) "the first layer" is not one matrix.
FIRST_MLP_LAYER = register(FirstMLPLayer({
    "ViTMLP": "fc1", "DeiTMLP": "fc1", "GPT2MLP": "c_fc", "BertIntermediate": "dense", "RobertaIntermediate": "dense",
    "GPTNeoXMLP": "dense_h_to_4h",
    # ConvMixer's channel mixing is one pointwise convolution; ConvNeXt's MLP is pwconv1 → GELU → pwconv2.
    "ConvMixerLayer": "pwconv", "ConvNextLayer": "pwconv1", "ConvNextV2Layer": "pwconv1",
}))  # fmt: skip
