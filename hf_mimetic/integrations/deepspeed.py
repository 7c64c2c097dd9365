"""DeepSpeed ZeRO-3: mimetic init of layers whose weights lie deeper than the modules transformers gathers.

Under ZeRO-3, ``from_config`` builds the model inside ``deepspeed.zero.Init``: every parameter is partitioned across
the ranks, and on each rank the parameter itself is an empty tensor. transformers then initialises it with
``initialize_weights_zero3``: for each module, it gathers the module's own parameters and those of its direct
children, runs ``_initialize_weights`` on rank 0 only, and leaving the gather broadcasts rank 0's values and
partitions them again. A layout that touches deeper parameters (BERT's attention writes ``self.query`` and
``output.dense``, its grandchildren) cannot write there, and rank 0 cannot gather them by itself: gathering is a
collective call, which every rank must make.

So the hook leaves such targets alone (:func:`deferred`), and :func:`finish`, which every rank runs when
``from_config`` returns, writes them one at a time inside ``GatheredParameters(layout.touched(module),
modifier_rank=0)``: rank 0 draws, the others receive its values, and no rank ever holds more than one layer's
weights. :func:`finish` also resolves the recipe and applies :meth:`~hf_mimetic.plan.Plan.configure` on every rank
(``initialize_weights_zero3`` calls the hook on rank 0 only, so the other ranks would otherwise keep the caller's
``mimetic_config`` and miss a frozen table). Nothing here imports DeepSpeed unless a model's parameters are
partitioned.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel

from ..plan import Plan, Target, plan_of


def is_partitioned(params: list[nn.Parameter]) -> bool:
    """Whether ZeRO-3 partitions these parameters (``deepspeed.zero.Init`` gives each a ``ds_id``)."""
    return any(hasattr(p, "ds_id") for p in params)


def gathered_with(module: nn.Module) -> set[int]:
    """Ids of the parameters ``initialize_weights_zero3`` gathers around ``module``'s init: its own and those of its
    direct children that are not models of their own."""
    params = list(module.parameters(recurse=False))
    for child in module.children():
        if not isinstance(child, PreTrainedModel):
            params.extend(child.parameters(recurse=False))
    return {id(p) for p in params}


def reaches_deeper(target: Target) -> bool:
    """Whether the target's layout touches parameters that transformers does not gather with its module."""
    available = gathered_with(target.module)
    return any(id(p) not in available for p in target.layout.touched(target.module))


def deferred(plan: Plan, module: nn.Module) -> bool:
    """True when the hook must leave ``module`` to :func:`finish`: a ZeRO-3 partitioned target whose layout touches
    parameters below its direct children."""
    return any(
        is_partitioned(target.layout.touched(module)) and reaches_deeper(target) for target in plan.by_module.get(id(module), ())
    )


def finish(model: nn.Module) -> None:
    """On every rank, after ``from_config`` under ZeRO-3: write the deferred targets, and configure the model.
    Does nothing for a model that does not ask for mimetic init or whose parameters are not partitioned.

    Example (what ``from_config`` does under ZeRO-3; you never call it yourself):
        >>> model = AutoModelForMaskedLM.from_config(BertConfig(), mimetic_init=True)   # calls finish(model)
    """
    plan = plan_of(model)
    first = next(model.parameters(), None)
    if plan is None or first is None or not is_partitioned([first]):
        return
    import deepspeed

    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    deferred_modules = {id(t.module): t.module for t in plan.selected() if reaches_deeper(t)}
    with torch.no_grad():
        for module in deferred_modules.values():  # a module with targets of several kinds is written once
            touched = {id(p): p for t in plan.by_module[id(module)] for p in t.layout.touched(module)}
            with deepspeed.zero.GatheredParameters(list(touched.values()), modifier_rank=0):
                if rank == 0:
                    plan.initialize(module, model)
    plan.configure()
