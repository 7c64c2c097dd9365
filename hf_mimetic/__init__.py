"""hf_mimetic: mimetic initialization for Hugging Face transformers.

``import hf_mimetic`` teaches transformers models the mimetic init of Trockman & Kolter (thesis *Mimetic
Initialization for Deep Neural Networks*, CMU-CS-25-114, §3.2–3.3) for every layer a catalogued layout recognises
(:mod:`hf_mimetic.catalog`), and in users' own models through :class:`MimeticInitMixin`::

    import hf_mimetic
    from transformers import AutoModelForCausalLM, GPT2Config

    model = AutoModelForCausalLM.from_config(GPT2Config(), mimetic_init=True, mimetic_config={"qk_beta": 0.6})

Models that do not ask for it are initialised exactly as by stock transformers. On machines without the CUDA
kernels of mamba-ssm, the import also gives Mamba 1 a fast pure-torch selective scan (same results to float32
rounding; ``HF_MIMETIC_FAST_MAMBA_SCAN=0`` turns it off, see :mod:`hf_mimetic.ops.selective_scan`).
"""

from __future__ import annotations

import sys

from .api import apply_mimetic_init, materialize, transfer_filter_covariance
from .catalog import Family, model_types
from .config import PRESETS, AttentionConfig, ConvConfig, MLPConfig, PositionConfig, SSMConfig
from .hook import install, uninstall
from .mixin import MimeticInitMixin
from .models.convmixer import ConvMixerConfig, ConvMixerForImageClassification, ConvMixerModel, register_auto_classes
from .ops.selective_scan import enable_fast_mamba_scan
from .recipe import MimeticConfig

__version__ = "0.2.0"

install()
register_auto_classes()
enable_fast_mamba_scan()
if "timm" in sys.modules:  # so that apply_mimetic_init can refuse weights timm loads from now on
    from .integrations.timm import watch_pretrained_loading

    watch_pretrained_loading()

#: The catalogued model types (see :mod:`hf_mimetic.catalog`).
FAMILIES = tuple(model_types())

__all__ = [
    "FAMILIES", "PRESETS", "AttentionConfig", "ConvConfig", "ConvMixerConfig", "ConvMixerForImageClassification",
    "ConvMixerModel", "Family", "MLPConfig", "MimeticConfig", "MimeticInitMixin", "PositionConfig", "SSMConfig",
    "apply_mimetic_init", "install", "materialize", "model_types", "transfer_filter_covariance", "uninstall",
    "__version__",
]  # fmt: skip
