"""Depthwise convolutions (ConvMixer, ConvNeXt, ConvNeXt V2): filters drawn from the thesis's closed-form covariance
(§3.1.2), the Gaussian width growing with the layer's relative depth ``d = (i − 1)/(D − 1)`` over the ``D`` depthwise
layers of the model. Biases keep their native init ("all methods presented do not concern the biases").

The layout recognises the block that holds the depthwise convolution (by class), not any ``Conv2d`` with
``groups = channels``: MobileNet-style 3×3 depthwise layers are not what the construction was made for (the thesis
finds it "works poorly for 3×3 filters").
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..config.conv import ConvConfig
from ..maths.conv import construction_roots, sample_filters, sigma_schedule
from .base import Layout, freeze_if, writable, write


class DepthwiseConv(Layout):
    """The ``dwconv`` child (``nn.Conv2d`` with ``groups = channels``) of a block class."""

    config = ConvConfig
    description = "depthwise k×k filters from the covariance construction"
    columns = {"filter_centre_variance": "centre variance", "neighbour_correlation": "neighbour corr."}

    def __init__(self, module_classes: tuple[str, ...], attribute: str = "dwconv") -> None:
        self.module_classes = module_classes
        self.attribute = attribute

    def conv(self, module: nn.Module) -> nn.Conv2d:
        # A child by getattr; get_submodule (dotted paths, e.g. timm's "fn.0") costs twice as much.
        return module.get_submodule(self.attribute) if "." in self.attribute else getattr(module, self.attribute)

    def check(self, module: nn.Module, model: nn.Module) -> None:
        conv = self.conv(module)
        k_h, k_w = conv.kernel_size
        if k_h != k_w or k_h % 2 == 0:
            raise ValueError(
                f"{type(module).__name__}: the covariance construction needs square filters of odd size (centred on a "
                f"pixel); got {k_h}×{k_w}"
            )
        if conv.groups != conv.in_channels or conv.out_channels != conv.in_channels:
            raise ValueError(f"{type(module).__name__}.{self.attribute} is not depthwise (groups = channels)")

    def prepare(self, modules: list[nn.Module], depths: list[float], cfg: ConvConfig) -> None:
        """Every layer's covariance root in one batched eigendecomposition (cached): one per layer, run between two
        layers' weight draws, costs about twice as much (experiments/NOTEBOOK.md §1)."""
        sigmas: dict[int, list[float]] = {}  # by kernel size
        for module, depth in zip(modules, depths):
            conv = self.conv(module)
            if cfg.conv_covariance and writable(conv.weight):
                sigmas.setdefault(conv.kernel_size[0], []).append(sigma(cfg, depth))
        for kernel_size, values in sigmas.items():
            construction_roots(kernel_size, values)

    def touched(self, module: nn.Module) -> list[nn.Parameter]:
        return [self.conv(module).weight]

    def initialize(self, module: nn.Module, cfg: ConvConfig, model: nn.Module, depth: float = 0.0) -> None:
        weight = self.conv(module).weight
        if cfg.conv_covariance and writable(weight):
            [root] = construction_roots(weight.shape[-1], [sigma(cfg, depth)])
            write(weight, sample_filters(root, weight.shape[0], scale=cfg.conv_gain).unsqueeze(1))

    def replaced(self, module: nn.Module, cfg: ConvConfig) -> tuple[tuple[nn.Module, nn.Parameter], ...]:
        conv = self.conv(module)
        return ((conv, conv.weight),) if cfg.conv_covariance else ()

    def configure(self, module: nn.Module, cfg: ConvConfig) -> None:
        freeze_if(self.conv(module).weight, cfg.freeze_filters)

    def read(self, module: nn.Module) -> dict[str, Any]:
        """``filters`` ``(channels, k, k)``, and their empirical ``covariance`` ``(k, k, k, k)``."""
        filters = self.conv(module).weight.detach().float()[:, 0]
        flat = filters.reshape(filters.shape[0], -1).double()
        centred = flat - flat.mean(0)
        k = filters.shape[-1]
        return {"filters": filters, "covariance": (centred.mT @ centred / max(len(flat) - 1, 1)).reshape(k, k, k, k)}

    def statistics(self, module: nn.Module) -> dict[str, float]:
        """The variance of the centre pixel, and the mean correlation of horizontally adjacent pixels (≈ 0 for
        independent draws; positive for the covariance construction)."""
        values = self.read(module)
        filters, covariance = values["filters"], values["covariance"]
        c = filters.shape[-1] // 2
        left, right = filters[:, :, :-1].reshape(-1), filters[:, :, 1:].reshape(-1)
        correlation = torch.corrcoef(torch.stack([left, right]))[0, 1].item()
        return {"filter_centre_variance": covariance[c, c, c, c].item(), "neighbour_correlation": correlation}


def sigma(cfg: ConvConfig, depth: float) -> float:
    """The Gaussian width of the layer at relative depth ``depth`` (eq. 3.11)."""
    return sigma_schedule(depth, cfg.conv_sigma0, cfg.conv_sigma_velocity, cfg.conv_sigma_acceleration)
