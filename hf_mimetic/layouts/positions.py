"""Learned absolute position tables into which the init writes sinusoids (thesis §3.2.4, Table 3.4, Fig. 3.20).

The table's amplitude is ``position_scale`` times the std of the embeddings it is added to, at initialisation. The
thesis's γ (1, or ≈ 2 on CIFAR-10) was relative to embeddings of std ≈ 1; transformers starts GPT-2's token embeddings
at std ``initializer_range`` (0.02) and a ViT's patch embeddings at ``initializer_range · √(C·p²)``, so an absolute
amplitude of 1 drowns the tokens (docs/RESULTS.md, "GPT-2" and "ViT").
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..config.positions import PositionConfig
from ..maths.positions import sinusoidal_1d, sinusoidal_2d
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

    config = PositionConfig

    def table(self, module: nn.Module) -> nn.Parameter:
        raise NotImplementedError

    def sinusoids(self, module: nn.Module, table: nn.Parameter) -> torch.Tensor:
        raise NotImplementedError

    def embedding_std(self, module: nn.Module, model: nn.Module) -> float:
        raise NotImplementedError

    def touched(self, module: nn.Module) -> list[nn.Parameter]:
        return [self.table(module)]  # the scale comes from the config and the patch geometry, not from weights

    def initialize(self, module: nn.Module, cfg: PositionConfig, model: nn.Module, depth: float = 0.0) -> None:
        table = self.table(module)
        if cfg.position_embeddings and writable(table):
            write(table, cfg.position_scale * self.embedding_std(module, model) * self.sinusoids(module, table))

    def configure(self, module: nn.Module, cfg: PositionConfig) -> None:
        freeze_if(self.table(module), cfg.position_embeddings and cfg.freeze_position_embeddings)

    def read(self, module: nn.Module) -> dict[str, Any]:
        return {"table": self.table(module).detach().float()}


class PatchGridTable(PositionTable):
    """ViT and DeiT: ``embeddings.position_embeddings`` ``(1, leading + grid, d)``: a 2-D table over the patch grid;
    the rows of the leading tokens (CLS, and DeiT's distillation token) stay zero, as in MAE."""

    description = "2-D sinusoids over the patch grid"

    def __init__(self, leading_tokens: dict[str, int]) -> None:
        self.leading_tokens = leading_tokens
        self.module_classes = tuple(leading_tokens)

    def table(self, module: nn.Module) -> nn.Parameter:
        return module.position_embeddings

    def sinusoids(self, module: nn.Module, table: nn.Parameter) -> torch.Tensor:
        patches = module.patch_embeddings
        grid_h = patches.image_size[0] // patches.patch_size[0]
        grid_w = patches.image_size[1] // patches.patch_size[1]
        values = torch.zeros(table.shape, dtype=torch.float32)
        values[0, self.leading_tokens[type(module).__name__] :] = sinusoidal_2d(grid_h, grid_w, table.shape[-1])
        return values

    def embedding_std(self, module: nn.Module, model: nn.Module) -> float:
        patches = module.patch_embeddings
        fan_in = patches.num_channels * patches.patch_size[0] * patches.patch_size[1]
        return patch_embedding_std(fan_in, model.config.initializer_range)


class TokenTable(PositionTable):
    """A 1-D table of a text model, ``(positions, d)``; token embeddings start at std ``initializer_range``.

    ``tables`` maps a module class to the path of its table's weight; RoBERTa numbers positions from
    ``padding_idx + 1`` (the rows before stay zero, the padding row as transformers keeps it).
    """

    description = "1-D sinusoids"

    def __init__(self, tables: dict[str, str]) -> None:
        self.tables = tables
        self.module_classes = tuple(tables)

    def table(self, module: nn.Module) -> nn.Parameter:
        return module.get_parameter(self.tables[type(module).__name__])

    def sinusoids(self, module: nn.Module, table: nn.Parameter) -> torch.Tensor:
        first = module.padding_idx + 1 if type(module).__name__ == "RobertaEmbeddings" else 0
        values = torch.zeros(table.shape, dtype=torch.float32)
        values[first:] = sinusoidal_1d(table.shape[0] - first, table.shape[1])
        return values

    def embedding_std(self, module: nn.Module, model: nn.Module) -> float:
        return model.config.initializer_range


class TimmPatchGridTable(PositionTable):
    """timm's ViT and DeiT: the model's own ``pos_embed`` ``(1, prefix + grid, d)`` over ``patch_embed.grid_size``; the
    rows of the class (and distillation) tokens stay zero, unless the model keeps no rows for them
    (``no_embed_class``). The patch embeddings' std is measured from the patch projection's weights (timm draws them
    with PyTorch's default, not from a config)."""

    description = "2-D sinusoids over the patch grid (timm pos_embed)"

    def recognises(self, module: nn.Module) -> bool:
        return super().recognises(module) and getattr(module, "pos_embed", None) is not None

    def table(self, module: nn.Module) -> nn.Parameter:
        return module.pos_embed

    def sinusoids(self, module: nn.Module, table: nn.Parameter) -> torch.Tensor:
        grid_h, grid_w = module.patch_embed.grid_size
        leading = 0 if module.no_embed_class else module.num_prefix_tokens
        values = torch.zeros(table.shape, dtype=torch.float32)
        values[0, leading:] = sinusoidal_2d(grid_h, grid_w, table.shape[-1])
        return values

    def embedding_std(self, module: nn.Module, model: nn.Module) -> float:
        weight = module.patch_embed.proj.weight
        return patch_embedding_std(weight[0].numel(), weight.detach().float().std().item())
