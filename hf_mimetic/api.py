"""Helpers for models that already exist: initialise a built model, or materialise one built without weights."""

from __future__ import annotations

from itertools import chain
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

from .layouts.base import is_loaded, writable, write
from .layouts.depthwise_conv import DepthwiseConv
from .maths.conv import empirical_covariance, interpolate_by_depth, psd_root, sample_filters
from .plan import Plan, find_targets


def apply_mimetic_init(model: nn.Module, **overrides: Any) -> nn.Module:
    """Apply mimetic init to an already-built model, in place, and return it.

    ``overrides`` are options on top of the model family's preset (see :class:`~hf_mimetic.MimeticConfig`). The
    model's config records the recipe (``mimetic_init=True`` and the full ``mimetic_config``). Refuses to overwrite
    weights loaded by ``from_pretrained``. timm models (ViT, DeiT, ConvMixer, ConvNeXt) work too, their recipe
    recorded in ``model.pretrained_cfg`` (:mod:`hf_mimetic.integrations.timm`).

    Example:
        >>> model = ViTForImageClassification(ViTConfig(hidden_size=192, num_attention_heads=3, intermediate_size=768))
        >>> apply_mimetic_init(model, qk_beta=0.6, layers=[0, 1])
    """
    if not isinstance(model, PreTrainedModel):
        from .integrations import timm

        plan = timm.timm_plan(model, overrides)
    else:
        plan = Plan(model, overrides)
        loaded = [f"{t.name}.{name}" for t in plan.selected() for name, p in t.module.named_parameters() if is_loaded(p)]
        if loaded:
            raise ValueError(
                f"apply_mimetic_init would overwrite {len(loaded)} tensors loaded by from_pretrained (e.g. "
                f"{loaded[0]!r}); mimetic init is for training from scratch: build the model with "
                "from_config(..., mimetic_init=True)"
            )
    with torch.no_grad():
        for module in {id(t.module): t.module for t in plan.targets}.values():
            plan.initialize(module, model)
    plan.configure()
    if isinstance(model, PreTrainedModel):
        model.config.mimetic_init = True
        model.config.mimetic_config = plan.record()
    else:
        timm.record(model, plan.record())
    return model


def materialize(model: PreTrainedModel, device: torch.device | str = "cpu") -> PreTrainedModel:
    """Give a model built without weights (``accelerate.init_empty_weights()`` or the meta device) real tensors on
    ``device`` and initialise them: the native init and, if its config asks for it, the mimetic init. In place.

    ``model.to_empty(device)`` followed by ``model.init_weights()`` is not enough: when a model is built under
    ``init_empty_weights()``, transformers marks every module initialised, so ``init_weights()`` leaves the new
    memory as it found it (uninitialised, e.g. NaN), for every model, mimetic or not.

    Example:
        >>> with accelerate.init_empty_weights():
        ...     model = AutoModelForCausalLM.from_config(config, mimetic_init=True)
        >>> materialize(model, "cpu")
    """
    model.to_empty(device=device)
    for module in model.modules():
        module.__dict__.pop("_is_hf_initialized", None)
    for tensor in chain(model.parameters(), model.buffers()):
        tensor.__dict__.pop("_is_hf_initialized", None)
    model.init_weights()
    return model


def transfer_filter_covariance(source: PreTrainedModel, target: PreTrainedModel, with_mean: bool = False) -> PreTrainedModel:
    """Covariance transfer (thesis §3.1.1, eqs. 3.3–3.4): draw ``target``'s depthwise filters from the empirical
    covariance (and, if ``with_mean``, mean) of ``source``'s trained filters, layer by layer, in place.

    The models may differ in width and depth: layers are matched by relative depth, the statistics linearly
    interpolated between the two nearest source layers (as the thesis does for shallower sources). Their filter
    sizes must agree. Tensors ``target`` loaded from a checkpoint are not overwritten.

    Example:
        >>> trained = AutoModelForImageClassification.from_pretrained("runs/convmixer-8")
        >>> deeper = AutoModelForImageClassification.from_config(ConvMixerConfig(depth=16, num_labels=10))
        >>> transfer_filter_covariance(trained, deeper)
    """
    def depthwise(model: PreTrainedModel) -> list:
        found = [t for t in find_targets(model)[0] if isinstance(t.layout, DepthwiseConv)]
        if not found:
            raise ValueError(f"{type(model).__name__} has no depthwise convolution hf_mimetic recognises")
        return found

    sources, targets = depthwise(source), depthwise(target)
    statistics = [empirical_covariance(t.layout.read(t.module)["filters"]) for t in sources]
    size = lambda t: t.layout.conv(t.module).weight.shape[-1]  # noqa: E731
    if size(sources[0]) != size(targets[0]):
        raise ValueError(f"filter sizes differ: source {size(sources[0])}×{size(sources[0])}, target {size(targets[0])}×{size(targets[0])}")
    means = interpolate_by_depth([mean for mean, _ in statistics], len(targets))
    covariances = interpolate_by_depth([covariance for _, covariance in statistics], len(targets))
    with torch.no_grad():
        for target_layer, mean, covariance in zip(targets, means, covariances):
            weight = target_layer.layout.conv(target_layer.module).weight
            if writable(weight):
                k = weight.shape[-1]
                root = psd_root(covariance.reshape(k * k, k * k))
                filters = sample_filters(root, weight.shape[0], mean=mean if with_mean else None)
                write(weight, filters.unsqueeze(1))
    return target
