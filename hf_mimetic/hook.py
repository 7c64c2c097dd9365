"""The hook that wires mimetic init into transformers' own initialisation: the one place that touches transformers.

How transformers 5 initialises: ``post_init → init_weights → initialize_weights``, which calls
``_initialize_weights(module)`` once per module, children before parents, on the nearest enclosing
``PreTrainedModel`` (a head model's backbone is initialised by the inner base model, during its own ``post_init``).
``import hf_mimetic`` wraps ``PreTrainedModel._initialize_weights`` in place (nothing is subclassed: transformers
would treat a subclass as custom code and initialise it differently):

1. the native init of the module runs first, exactly as in stock transformers, except for parameters the mimetic
   init replaces entirely (depthwise filters): like loaded weights, they skip it (an unused draw costs time);
2. if the model's config asks for mimetic init and the module was not initialised before (not loaded by
   ``from_pretrained``), the model's :class:`~hf_mimetic.plan.Plan` writes the init into it: the recipe is resolved
   once per model, not per module;
3. when the model itself comes last, settings that must also hold for loaded weights (a frozen table) are applied.

Models whose config does not ask for mimetic init run only the native code. ``from_config`` learns the
``mimetic_init=`` and ``mimetic_config=`` keyword arguments, which it moves onto a copy of the config.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

from transformers import PretrainedConfig, PreTrainedModel

from .integrations import deepspeed as zero3
from .plan import plan_of
from .recipe import MimeticConfig

_NATIVE = "_hf_mimetic_native_"
_WRAPPED = ("_initialize_weights", "_from_config", "from_pretrained")


def _initialize_weights(self: PreTrainedModel, module: Any, is_custom_code: bool = False) -> None:
    fresh = not getattr(module, "_is_hf_initialized", False)
    plan = plan_of(self)
    # transformers' init functions skip tensors flagged _is_hf_initialized (its mark for loaded weights).
    skipped = plan.replaced_in(module) if plan is not None and fresh else []
    for param in skipped:
        param._is_hf_initialized = True
    try:
        getattr(PreTrainedModel, _NATIVE + "_initialize_weights")(self, module, is_custom_code)
    finally:
        for param in skipped:
            del param._is_hf_initialized
    if plan is None:
        return
    if fresh and not zero3.deferred(plan, module):  # ZeRO-3: layers below the gathered modules are written later
        plan.initialize(module, self)
    if module is self:
        plan.configure()


def configure(
    config: PretrainedConfig, mimetic_init: Any, mimetic_config: MimeticConfig | Mapping[str, Any] | None
) -> PretrainedConfig:
    """A copy of ``config`` carrying the flags (the caller's config is never mutated). The recipe is validated and
    resolved when the model is built, against the layers it contains."""
    if mimetic_init is not None and not isinstance(mimetic_init, bool):
        raise ValueError(f"mimetic_init must be True or False, got {mimetic_init!r}")
    if mimetic_config is not None and not mimetic_init:
        raise ValueError("mimetic_config was given without mimetic_init=True; pass mimetic_init=True to use it")
    # A shallow copy: only top-level attributes are set on it (a deep copy of a 1,000-label config costs ~10 ms).
    config = copy.copy(config)
    config.mimetic_init = bool(mimetic_init)
    if mimetic_init:
        if isinstance(mimetic_config, MimeticConfig):
            mimetic_config = {"preset": mimetic_config.preset, "layers": mimetic_config.layers, **mimetic_config.overrides()}
        config.mimetic_config = copy.deepcopy(mimetic_config)
    return config


def _from_config(cls, config: PretrainedConfig, **kwargs: Any) -> PreTrainedModel:
    """``PreTrainedModel._from_config`` that understands ``mimetic_init=`` and ``mimetic_config=``."""
    if "mimetic_init" in kwargs or "mimetic_config" in kwargs:
        config = configure(config, kwargs.pop("mimetic_init", None), kwargs.pop("mimetic_config", None))
    model = getattr(PreTrainedModel, _NATIVE + "_from_config").__func__(cls, config, **kwargs)
    zero3.finish(model)  # nothing unless ZeRO-3 partitions a mimetic model
    return model


def _from_pretrained(cls, *args: Any, **kwargs: Any) -> PreTrainedModel:
    """``from_pretrained`` with a clear error for the mimetic flags, which only mean something for new weights."""
    given = sorted(k for k in ("mimetic_init", "mimetic_config") if k in kwargs)
    if given:
        raise ValueError(
            f"from_pretrained got {', '.join(given)}: it loads trained weights and never re-initialises them (a saved "
            "mimetic model keeps its recipe in config.json). To train a new model from a saved config with mimetic "
            "init: AutoModel.from_config(AutoConfig.from_pretrained(path), mimetic_init=True)"
        )
    return getattr(PreTrainedModel, _NATIVE + "from_pretrained").__func__(cls, *args, **kwargs)


_REPLACEMENTS = {
    "_initialize_weights": _initialize_weights,
    "_from_config": classmethod(_from_config),
    "from_pretrained": classmethod(_from_pretrained),
}


def install() -> None:
    """Wrap ``PreTrainedModel._initialize_weights``, ``_from_config`` and ``from_pretrained``. Idempotent; called by
    ``import hf_mimetic``."""
    for name, replacement in _REPLACEMENTS.items():
        if _NATIVE + name not in PreTrainedModel.__dict__:
            setattr(PreTrainedModel, _NATIVE + name, PreTrainedModel.__dict__[name])
            setattr(PreTrainedModel, name, replacement)


def uninstall() -> None:
    """Restore transformers' original methods (for tests, and for comparing against stock behaviour)."""
    for name in _REPLACEMENTS:
        if _NATIVE + name in PreTrainedModel.__dict__:
            setattr(PreTrainedModel, name, PreTrainedModel.__dict__[_NATIVE + name])
            delattr(PreTrainedModel, _NATIVE + name)
