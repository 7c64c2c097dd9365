"""What every layer layout shares: the layout interface and the one safe way to write a parameter.

transformers 5 marks tensors loaded by ``from_pretrained`` with ``_is_hf_initialized`` and runs the init again on
every module whose parameters were not all loaded. Only its guarded writers (``transformers.initialization``) honour
that flag, per Parameter: writing through a slice, ``.data`` or an in-place op would overwrite loaded weights. So
layouts build the whole new tensor and hand it to :func:`write`, and check :func:`writable` before any expensive maths.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from transformers import initialization as init

from ..config.base import KindConfig


class Layout:
    """How one layer layout stores the weights mimetic init is about: what it recognises, how it writes the init,
    and how to read the structure back from the weights.

    Subclasses set ``config`` (the :class:`~hf_mimetic.config.base.KindConfig` subclass of the options they read, whose
    ``kind`` is theirs: ``"attention"``, ``"positions"``, ``"mlp"``, ``"ssm"``, ``"conv"``) and implement
    :meth:`initialize` and :meth:`read`; an instance is constructed with the names of the
    module classes it recognises (:data:`hf_mimetic.catalog.LAYOUTS` lists them). Layouts are pure: constructing or
    importing one changes nothing.
    """

    #: The options this layout reads; its ``kind`` (``"attention"``, ``"ssm"``, …) is the config class's.
    config: ClassVar[type[KindConfig]]
    #: Names of the module classes this layout recognises (names, so that no model module needs importing).
    module_classes: ClassVar[tuple[str, ...]] = ()
    #: Short description for tables and error messages.
    description: ClassVar[str] = ""
    #: Whether it may recognise modules of classes it does not name (by their structure); see ``recognises``.
    structural: bool = False

    @property
    def kind(self) -> str:
        return self.config.kind

    def __init__(self, module_classes: tuple[str, ...] = ()) -> None:
        self.module_classes = tuple(module_classes)

    def recognises(self, module: nn.Module) -> bool:
        return type(module).__name__ in self.module_classes

    def check(self, module: nn.Module, model: nn.Module) -> None:
        """Raise ``ValueError`` for a module of this layout that the init cannot handle (checked before any write)."""

    def prepare(self, modules: list[nn.Module], depths: list[float], cfg: KindConfig) -> None:
        """Work shared by a model's modules of this layout, done once when the model's plan is made, before any
        :meth:`initialize` (e.g. one batched computation instead of one per layer). Default: nothing."""

    def initialize(self, module: nn.Module, cfg: KindConfig, model: nn.Module, depth: float = 0.0) -> None:
        """Write the mimetic init into ``module`` (called right after its native init; never overwrites loaded
        tensors). ``depth``: the module's relative depth in ``[0, 1]`` among the model's modules of this layout."""
        raise NotImplementedError

    def touched(self, module: nn.Module) -> list[nn.Parameter]:
        """Every parameter :meth:`initialize` reads or writes (default: all of ``module``'s, children included).
        Under DeepSpeed ZeRO-3 these are the ones gathered around the write, so an override must list every one it
        needs, and no more than it needs (a model-level target must not gather the whole model)."""
        return list(module.parameters())

    def replaced(self, module: nn.Module, cfg: KindConfig) -> tuple[tuple[nn.Module, nn.Parameter], ...]:
        """Parameters of ``module`` (or its children) that :meth:`initialize` overwrites entirely, whatever their
        native values, each with the module that owns it: their native init is skipped, as for loaded weights
        (default: none)."""
        return ()

    def configure(self, module: nn.Module, cfg: KindConfig) -> None:
        """Settings that must hold whether the weights were initialised or loaded (e.g. a frozen table)."""

    def read(self, module: nn.Module) -> dict[str, Any]:
        """The structure this layout's init creates, recomputed from the module's weights (for inspection)."""
        raise NotImplementedError

    #: The per-layer statistics of :meth:`statistics`: key → column title (empty: none for this layout).
    columns: ClassVar[dict[str, str]] = {}

    def statistics(self, module: nn.Module) -> dict[str, float]:
        """Numbers that say how mimetic this module is (one row of ``hf-mimetic structure``), keys of ``columns``."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self.module_classes)})"


def is_loaded(tensor: torch.Tensor) -> bool:
    """Whether ``from_pretrained`` loaded this tensor (it must then never be overwritten)."""
    return bool(getattr(tensor, "_is_hf_initialized", False))


def writable(*tensors: torch.Tensor | None) -> bool:
    """True when every given tensor exists, is real (not meta) and was not loaded from a checkpoint."""
    return all(t is not None and not t.is_meta and not is_loaded(t) for t in tensors)


def write(param: torch.Tensor | None, value: torch.Tensor) -> None:
    """Copy ``value`` (any float dtype) into ``param`` unless it was loaded; casts to the parameter's dtype."""
    if param is not None and writable(param):
        init.copy_(param, value.to(device=param.device, dtype=param.dtype))


def zero_(param: torch.Tensor | None) -> None:
    if param is not None:
        write(param, torch.zeros_like(param))


def linear_map(projection: nn.Module, in_features: int) -> torch.Tensor:
    """The matrix ``W`` of a linear projection in the row-vector convention (``y = x W + b``), read by calling the
    module itself on the identity: whatever it stores (``nn.Linear`` keeps ``Wᵀ``, GPT-2's ``Conv1D`` keeps ``W``),
    the result is the map it computes, so reading it back involves no transpose of our own."""
    weight = next(projection.parameters())
    eye = torch.eye(in_features, dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        return (projection(eye) - projection(torch.zeros_like(eye[:1]))).float()


def freeze_if(param: nn.Parameter, freeze: bool) -> None:
    if freeze:
        param.requires_grad_(False)
