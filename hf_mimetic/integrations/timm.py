"""Mimetic init for timm models: ViT and DeiT (fused ``qkv``, ``proj``, learned ``pos_embed``), ConvMixer and ConvNeXt
(depthwise filters from the covariance construction). What is recognised is data in
:data:`hf_mimetic.catalog.TIMM_MODELS`.

timm is optional (``pip install 'hf_mimetic[timm]'``). Models are initialised after timm has built them, in place:

    >>> from hf_mimetic.integrations.timm import create_model
    >>> vit = create_model("vit_tiny_patch16_224", img_size=32, patch_size=2, num_classes=10)  # thesis's CIFAR shape
    >>> vit.pretrained_cfg["mimetic_config"]["preset"]
    'vision'

``hf_mimetic.apply_mimetic_init(model, **options)`` does the same for a timm model you built yourself. The recipe is
recorded in ``model.pretrained_cfg["mimetic_config"]``, which timm's ``save_for_hf`` / ``push_to_hf_hub`` write to
``config.json``. Mimetic init is for training from scratch: ``create_model`` refuses ``pretrained=True``, and
``apply_mimetic_init`` refuses a model timm loaded pretrained weights into (timm's loader is watched once this module
or ``hf_mimetic`` is imported after timm).
"""

from __future__ import annotations

import re
from typing import Any

from torch import nn

from ..catalog import TIMM_MODELS
from ..plan import Plan

#: Set on a model by timm's ``load_pretrained`` once :func:`watch_pretrained_loading` has run.
LOADED = "_hf_mimetic_pretrained_weights"


def create_model(model_name: str, *, pretrained: bool = False, mimetic_config: dict[str, Any] | None = None,
                 **kwargs: Any) -> nn.Module:  # fmt: skip
    """``timm.create_model(model_name, **kwargs)`` with mimetic init (``mimetic_config``: options over the preset).

    Example:
        >>> model = create_model("convmixer_768_32", num_classes=10, mimetic_config={"conv_gain": 0.5})
    """
    if pretrained:
        raise ValueError(
            f"create_model({model_name!r}, pretrained=True): mimetic init is for training from scratch and would "
            "overwrite the pretrained weights; pass pretrained=False"
        )
    import timm

    from ..api import apply_mimetic_init

    watch_pretrained_loading()
    return apply_mimetic_init(timm.create_model(model_name, pretrained=False, **kwargs), **(mimetic_config or {}))


def timm_plan(model: nn.Module, options: dict[str, Any]) -> Plan:
    """The plan for a timm model (``ValueError`` for a model timm loaded weights into, or one it does not know)."""
    name = type(model).__name__
    if name not in TIMM_MODELS:
        raise ValueError(
            f"{name} is neither a transformers PreTrainedModel nor a timm model hf_mimetic knows; timm models: "
            f"{sorted(TIMM_MODELS)} (a model of your own: subclass PreTrainedModel with MimeticInitMixin)"
        )
    if getattr(model, LOADED, False):
        raise ValueError(
            f"this {name} holds pretrained weights (timm.create_model(..., pretrained=True)); mimetic init is for "
            "training from scratch: build it with pretrained=False"
        )
    entry = TIMM_MODELS[name]
    layer_lists = tuple(path for path, _ in model.named_modules() if re.fullmatch(entry.layers, path))
    return Plan(model, options, preset=entry.preset, name=name, declared=entry.layouts, layer_lists=layer_lists)


def record(model: nn.Module, recipe: dict[str, Any]) -> None:
    """Keep the recipe where timm keeps what describes a model's weights (``pretrained_cfg``, saved to config.json)."""
    model.pretrained_cfg = {**getattr(model, "pretrained_cfg", {}), "mimetic_config": recipe}
    model.default_cfg = model.pretrained_cfg  # timm's alias


def watch_pretrained_loading() -> None:
    """Mark models that timm's ``load_pretrained`` loads weights into, so that :func:`timm_plan` refuses them.
    Idempotent; it wraps ``timm.models._builder.load_pretrained`` (what ``create_model(pretrained=True)`` calls)."""
    from timm.models import _builder

    if getattr(_builder.load_pretrained, "_hf_mimetic_watch", False):
        return
    original = _builder.load_pretrained

    def load_pretrained(model: nn.Module, *args: Any, **kwargs: Any) -> Any:
        result = original(model, *args, **kwargs)
        object.__setattr__(model, LOADED, True)
        return result

    load_pretrained._hf_mimetic_watch = True  # type: ignore[attr-defined]
    _builder.load_pretrained = load_pretrained
