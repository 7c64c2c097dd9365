"""Building and loading models of catalogued families: what the command line, the scripts and the studies share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .catalog import family, model_types

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel


def build(model_type: str, seed: int | None = 0, config: "PretrainedConfig | None" = None, **kwargs: Any) -> "PreTrainedModel":
    """A model of a catalogued type as users train it (its auto class), from ``config`` (default: the family's
    example config), built with ``from_config(config, **kwargs)`` after ``torch.manual_seed(seed)``.

    Example:
        >>> model = build("vit", mimetic_init=True)  # the thesis's CIFAR ViT-Tiny
    """
    import torch

    entry = family(model_type)
    if seed is not None:
        torch.manual_seed(seed)
    return entry.auto().from_config(config if config is not None else entry.config(model_type), **kwargs)


def saved_class(config: "PretrainedConfig") -> type:
    """The class a folder was saved from (``config.architectures``), so that its head loads too and transformers
    reports nothing missing or unexpected; else the catalogued family's auto class; else ``AutoModel``."""
    import transformers

    for name in getattr(config, "architectures", None) or []:
        if hasattr(transformers, name):
            return getattr(transformers, name)
    return family(config.model_type).auto() if config.model_type in model_types() else transformers.AutoModel


def load_saved(path: str) -> "PreTrainedModel":
    """A saved model folder (or Trainer checkpoint), loaded as the class it was saved from.

    Example:
        >>> model = load_saved("runs/convmixer")  # a ConvMixerForImageClassification, head included
    """
    from transformers import AutoConfig

    return saved_class(AutoConfig.from_pretrained(path)).from_pretrained(path)
