"""Options of mimetic initialization: one config class per kind of layer, and the presets. The recipe that puts them
together for a model is :class:`hf_mimetic.recipe.MimeticConfig`."""

from .attention import AttentionConfig
from .base import KindConfig
from .conv import ConvConfig
from .mlp import MLPConfig
from .positions import PositionConfig
from .presets import PRESETS
from .ssm import SSMConfig

__all__ = [
    "PRESETS", "AttentionConfig", "ConvConfig", "KindConfig", "MLPConfig", "PositionConfig", "SSMConfig",
]  # fmt: skip
