"""Configuration of mimetic initialization: one config class per kind of layer, presets, and the recipe."""

from .attention import AttentionConfig
from .base import KindConfig
from .conv import ConvConfig
from .mlp import MLPConfig
from .positions import PositionConfig
from .presets import PRESETS
from .recipe import KINDS, OPTION_KIND, RECORD, MimeticConfig
from .ssm import SSMConfig

__all__ = [
    "KINDS", "OPTION_KIND", "PRESETS", "RECORD", "AttentionConfig", "ConvConfig", "KindConfig", "MLPConfig", "MimeticConfig",
    "PositionConfig", "SSMConfig",
]  # fmt: skip
