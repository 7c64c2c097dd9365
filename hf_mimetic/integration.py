"""The hook that wires mimetic init into transformers' own initialisation.

How transformers 5 initialises (see docs/METHOD notes in the README): ``post_init → init_weights →
initialize_weights``, which calls ``_init_weights(module)`` once per module, children before parents, on the nearest
enclosing ``PreTrainedModel``; a head model's backbone is initialised by the inner base model. So the hook lives on the
four ``*PreTrainedModel`` base classes, whose ``_init_weights`` it wraps: native init first, then the mimetic writes
for the same module. Subclassing the model classes would make transformers treat them as custom code (which changes
how it initialises them), so nothing is subclassed; the wrap is installed in place, idempotently, by
``import hf_mimetic``. Models whose config does not ask for mimetic init run exactly the native code.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

import torch
from torch import nn
from transformers import PreTrainedModel, PretrainedConfig

from .adapters import ADAPTERS, Adapter, adapter_for
from .adapters.base import is_loaded
from .config import MimeticConfig

_NATIVE_INIT = "_hf_mimetic_native_init_weights"
_NATIVE_FROM_CONFIG = "_hf_mimetic_native_from_config"


class MimeticInitMixin:
    """The per-family mimetic init, grafted onto ``ViTPreTrainedModel``, ``GPT2PreTrainedModel``,
    ``MambaPreTrainedModel`` and ``Mamba2PreTrainedModel`` by :func:`install`.

    ``_init_weights`` runs the class's native init and then, if ``config.mimetic_init`` is true, the family's adapter
    on the same module. The adapter never writes a tensor that ``from_pretrained`` loaded.
    """

    _mimetic_adapter: Adapter

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        getattr(self, _NATIVE_INIT)(module)
        cfg = mimetic_settings(self.config, self._mimetic_adapter)
        if cfg is not None:
            self._mimetic_adapter.init_module(self, module, cfg)


def mimetic_settings(config: PretrainedConfig, adapter: Adapter) -> MimeticConfig | None:
    """The validated :class:`MimeticConfig` a model config asks for, or ``None`` if it does not ask for mimetic init."""
    if not getattr(config, "mimetic_init", False):
        return None
    adapter.check_config(config)
    cfg = MimeticConfig.resolve(adapter.family, getattr(config, "mimetic_config", None))
    cfg.validate(num_layers=adapter.num_layers(config))
    return cfg


def configure(
    config: PretrainedConfig, model_class: type, mimetic_init: bool | None, mimetic_config: MimeticConfig | Mapping[str, Any] | None
) -> PretrainedConfig:
    """A copy of ``config`` carrying the validated flags (the caller's config is never mutated)."""
    if mimetic_init is not None and not isinstance(mimetic_init, bool):
        raise ValueError(f"mimetic_init must be True or False, got {mimetic_init!r}")
    if mimetic_config is not None and not mimetic_init:
        raise ValueError("mimetic_config was given without mimetic_init=True; pass mimetic_init=True to use it")
    config = copy.deepcopy(config)
    config.mimetic_init = bool(mimetic_init)
    if mimetic_init:
        adapter = adapter_for(model_class)
        adapter.check_config(config)
        cfg = MimeticConfig.resolve(adapter.family, mimetic_config)
        cfg.validate(num_layers=adapter.num_layers(config))
        config.mimetic_config = cfg.to_dict(adapter.family)  # the full recipe, so config.json records it
    return config


def _from_config(cls, config: PretrainedConfig, **kwargs: Any) -> PreTrainedModel:
    """``PreTrainedModel._from_config`` that understands ``mimetic_init=`` and ``mimetic_config=``."""
    if "mimetic_init" in kwargs or "mimetic_config" in kwargs:
        config = configure(config, cls, kwargs.pop("mimetic_init", None), kwargs.pop("mimetic_config", None))
    return getattr(PreTrainedModel, _NATIVE_FROM_CONFIG).__func__(cls, config, **kwargs)


def install() -> None:
    """Graft :class:`MimeticInitMixin` onto the supported base classes and teach ``from_config`` the new kwargs.

    Idempotent; called by ``import hf_mimetic``.
    """
    for adapter in ADAPTERS.values():
        cls = adapter.base_class
        if _NATIVE_INIT not in cls.__dict__:
            setattr(cls, _NATIVE_INIT, cls.__dict__["_init_weights"])
            cls._init_weights = MimeticInitMixin._init_weights
            cls._mimetic_adapter = adapter
    if _NATIVE_FROM_CONFIG not in PreTrainedModel.__dict__:
        setattr(PreTrainedModel, _NATIVE_FROM_CONFIG, PreTrainedModel.__dict__["_from_config"])
        PreTrainedModel._from_config = classmethod(_from_config)


def uninstall() -> None:
    """Restore transformers' original methods (for tests and for comparing against stock behaviour)."""
    for adapter in ADAPTERS.values():
        cls = adapter.base_class
        if _NATIVE_INIT in cls.__dict__:
            cls._init_weights = cls.__dict__[_NATIVE_INIT]
            delattr(cls, _NATIVE_INIT)
            delattr(cls, "_mimetic_adapter")
    if _NATIVE_FROM_CONFIG in PreTrainedModel.__dict__:
        PreTrainedModel._from_config = PreTrainedModel.__dict__[_NATIVE_FROM_CONFIG]
        delattr(PreTrainedModel, _NATIVE_FROM_CONFIG)


def apply_mimetic_init(model: PreTrainedModel, **overrides: Any) -> PreTrainedModel:
    """Apply mimetic init to an already-built model of a supported family, in place, and return it.

    ``overrides`` are :class:`MimeticConfig` fields applied on top of the family's preset. The model's config records
    the recipe (``mimetic_init=True`` and the full ``mimetic_config``). Refuses to overwrite weights loaded by
    ``from_pretrained``.

    Example:
        >>> model = ViTForImageClassification(ViTConfig(hidden_size=192, num_attention_heads=3, intermediate_size=768))
        >>> apply_mimetic_init(model, qk_beta=0.6, layers=[0, 1])
    """
    adapter = adapter_for(type(model))
    adapter.check_config(model.config)
    cfg = MimeticConfig.for_family(adapter.family, **overrides)
    cfg.validate(num_layers=adapter.num_layers(model.config))
    targets = list(adapter.target_modules(model))
    loaded = [name for module in targets for name, p in module.named_parameters() if is_loaded(p)]
    if loaded:
        raise ValueError(
            f"apply_mimetic_init would overwrite {len(loaded)} tensors loaded by from_pretrained (e.g. {loaded[0]!r}); "
            "mimetic init is for training from scratch: build the model with from_config(..., mimetic_init=True)"
        )
    with torch.no_grad():
        for module in targets:
            adapter.init_module(model, module, cfg)
    model.config.mimetic_init = True
    model.config.mimetic_config = cfg.to_dict(adapter.family)
    return model
