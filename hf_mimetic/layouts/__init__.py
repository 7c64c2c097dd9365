"""Layer layouts: one module per way a model stores the weights mimetic init is about. Each is a pure class: it
recognises modules, writes the init into them and reads the structure back. Which layouts exist, for which module
classes and in which order, is data in :data:`hf_mimetic.catalog.LAYOUTS`.
"""

from .attention import AttentionLayout, Factors, Geometry
from .base import Layout
from .depthwise_conv import DepthwiseConv
from .fused_qkv import FusedQKV
from .gpt2_conv1d import GPT2Conv1D
from .mamba import MambaMixerLayout
from .mamba2 import Mamba2MixerLayout
from .mlp import FirstMLPLayer
from .positions import PatchGridTable, PositionTable, TimmPatchGridTable, TokenTable
from .qkvo_linear import QKVOLinear
from .ssm import MixerLayout

__all__ = [
    "AttentionLayout", "DepthwiseConv", "Factors", "FirstMLPLayer", "FusedQKV", "GPT2Conv1D", "Geometry", "Layout",
    "Mamba2MixerLayout", "MambaMixerLayout", "MixerLayout", "PatchGridTable", "PositionTable", "QKVOLinear",
    "TimmPatchGridTable", "TokenTable",
]  # fmt: skip
