"""Layer layouts: one module per way a model stores the weights mimetic init is about.

Importing this package registers every layout and the model families they serve (:mod:`hf_mimetic.registry`).
"""

from . import (  # noqa: F401  (registration)
    depthwise_conv,
    fused_qkv,
    gpt2_conv1d,
    mamba,
    mamba2,
    mlp,
    positions,
    qkvo_linear,
)
