"""hf_mimetic: mimetic initialization for Hugging Face transformers.

``import hf_mimetic`` teaches transformers' ViT, GPT-2, Mamba and Mamba 2 the mimetic init of Trockman & Kolter
(thesis CMU-CS-25-114, §3.2–3.3)::

    import hf_mimetic
    from transformers import AutoModelForCausalLM, GPT2Config

    model = AutoModelForCausalLM.from_config(GPT2Config(), mimetic_init=True, mimetic_config={"qk_beta": 0.6})

Models that do not ask for it are initialised exactly as by stock transformers. On machines without the CUDA
kernels of mamba-ssm, the import also gives Mamba 1 a fast pure-torch selective scan (same results to float32
rounding; ``HF_MIMETIC_FAST_MAMBA_SCAN=0`` turns it off, see :mod:`hf_mimetic.ops.selective_scan`).
"""

from __future__ import annotations

from .config import FAMILIES, PRESETS, MimeticConfig
from .integration import MimeticInitMixin, apply_mimetic_init, install
from .ops.selective_scan import enable_fast_mamba_scan

__version__ = "0.1.0"

install()
enable_fast_mamba_scan()

__all__ = ["FAMILIES", "PRESETS", "MimeticConfig", "MimeticInitMixin", "apply_mimetic_init", "install", "__version__"]
