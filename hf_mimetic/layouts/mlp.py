"""The first layer of an MLP block, given a nonzero mean ("Mimetic Initialization of MLPs", Trockman & Kolter 2026)."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..config.mlp import MLPConfig
from .base import Layout, writable, write


class FirstMLPLayer(Layout):
    """Adds ``mlp_mean`` to the native draw of the first layer of an MLP block (named per module class)."""

    config = MLPConfig
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
