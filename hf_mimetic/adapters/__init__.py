"""Architecture adapters: where each supported family keeps its attention / state-space weights.

One adapter per family, as PEFT keeps one mapping from architecture to target modules. To support a new family,
write an :class:`~hf_mimetic.adapters.base.Adapter` and add it to :data:`ADAPTERS`.
"""

from __future__ import annotations

from .attention import GPT2Adapter, ViTAdapter
from .base import Adapter
from .ssm import Mamba2Adapter, MambaAdapter

#: Adapter per family (transformers ``model_type``).
ADAPTERS: dict[str, Adapter] = {a.family: a for a in (ViTAdapter(), GPT2Adapter(), MambaAdapter(), Mamba2Adapter())}


def adapter_for(model_class: type) -> Adapter:
    """The adapter of a model class (any subclass of a supported ``*PreTrainedModel``), or ``ValueError``."""
    for adapter in ADAPTERS.values():
        if issubclass(model_class, adapter.base_class):
            return adapter
    supported = ", ".join(f"{family} ({a.base_class.__name__})" for family, a in ADAPTERS.items())
    raise ValueError(f"mimetic init does not support {model_class.__name__}; supported model families: {supported}")


__all__ = ["ADAPTERS", "Adapter", "adapter_for"]
