"""Learned absolute position tables into which the init writes sinusoids (thesis §3.2.4, Table 3.4, Fig. 3.20).

The table's amplitude is ``position_scale`` times the std of the embeddings it is added to, at initialisation. The
thesis's γ (1, or ≈ 2 on CIFAR-10) was relative to embeddings of std ≈ 1; transformers starts GPT-2's token embeddings
at std ``initializer_range`` (0.02) and a ViT's patch embeddings at ``initializer_range · √(C·p²)``, so an absolute
amplitude of 1 drowns the tokens (docs/RESULTS.md §6 and §7).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..config.positions import PositionConfig
from ..maths.positions import sinusoidal_1d, sinusoidal_2d
from ..registry import register
from .base import Layout, freeze_if, writable, write

#: RMS of normalised pixel values assumed for the patch embeddings' scale: image processors map pixels to about
#: [−1, 1] (ViTImageProcessor's mean = std = 0.5; measured RMS 0.85 on scikit-learn's digits, 0.96 on MNIST).
PIXEL_RMS = 1.0


def patch_embedding_std(fan_in: int, init_std: float) -> float:
    """Std of a patch embedding at init for unit-RMS pixels: each output sums ``fan_in = C·p²`` terms of std
    ``init_std``."""
    return init_std * math.sqrt(fan_in) * PIXEL_RMS


class PositionTable(Layout):
    """A learned table; subclasses give the parameter, the sinusoids in its shape, and the embeddings' std."""

    kind = "positions"

    def table(self, module: nn.Module) -> nn.Parameter:
        raise NotImplementedError

    def sinusoids(self, module: nn.Module, table: nn.Parameter) -> torch.Tensor:
        raise NotImplementedError

    def embedding_std(self, module: nn.Module, model: nn.Module) -> float:
        raise NotImplementedError

    def initialize(self, module: nn.Module, cfg: PositionConfig, model: nn.Module) -> None:
        table = self.table(module)
        if cfg.position_embeddings and writable(table):
            write(table, cfg.position_scale * self.embedding_std(module, model) * self.sinusoids(module, table))

    def configure(self, module: nn.Module, cfg: PositionConfig) -> None:
        freeze_if(self.table(module), cfg.position_embeddings and cfg.freeze_position_embeddings)

    def read(self, module: nn.Module) -> dict[str, Any]:
        return {"table": self.table(module).detach().float()}


class ViTPositions(PositionTable):
    """ViT and DeiT: ``embeddings.position_embeddings`` ``(1, 1 + grid, d)``; a 2-D table over the patch grid, the
    CLS position (row 0) zero, as in MAE."""

    module_classes = ("ViTEmbeddings",)
    description = "2-D sinusoids over the patch grid"

    def table(self, module: nn.Module) -> nn.Parameter:
        return module.position_embeddings

    def sinusoids(self, module: nn.Module, table: nn.Parameter) -> torch.Tensor:
        patches = module.patch_embeddings
        grid_h = patches.image_size[0] // patches.patch_size[0]
        grid_w = patches.image_size[1] // patches.patch_size[1]
        values = torch.zeros(table.shape, dtype=torch.float32)
        values[0, 1:] = sinusoidal_2d(grid_h, grid_w, table.shape[-1])
        return values

    def embedding_std(self, module: nn.Module, model: nn.Module) -> float:
        patches = module.patch_embeddings
        fan_in = patches.num_channels * patches.patch_size[0] * patches.patch_size[1]
        return patch_embedding_std(fan_in, model.config.initializer_range)


class GPT2Positions(PositionTable):
    """GPT-2: ``wpe`` ``(n_positions, d)``, a 1-D table; token embeddings start at std ``initializer_range``."""

    module_classes = ("GPT2Model",)
    description = "1-D sinusoids"

    def table(self, module: nn.Module) -> nn.Parameter:
        return module.wpe.weight

    def sinusoids(self, module: nn.Module, table: nn.Parameter) -> torch.Tensor:
        return sinusoidal_1d(table.shape[0], table.shape[1])

    def embedding_std(self, module: nn.Module, model: nn.Module) -> float:
        return model.config.initializer_range


VIT_POSITIONS = register(ViTPositions())
GPT2_POSITIONS = register(GPT2Positions())
