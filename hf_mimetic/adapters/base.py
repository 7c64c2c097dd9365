"""What every architecture adapter shares: the adapter interface and the one safe way to write a parameter.

transformers 5 marks tensors loaded by ``from_pretrained`` with ``_is_hf_initialized`` and runs ``_init_weights``
on every module again afterwards. Only its guarded writers (``transformers.initialization``) honour that flag, per
Parameter: writing through a slice, ``.data`` or an in-place op would overwrite loaded weights. So adapters build
the whole new tensor and hand it to :func:`write`, and check :func:`writable` before any expensive maths.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import nn
from transformers import initialization as init

from ..config import MimeticConfig


class Adapter:
    """Finds the weights of one model family by role and writes the mimetic init into them.

    Subclasses set ``family`` and ``base_class`` and implement :meth:`init_module` (called by the transformers hook
    for every module, after the native init) and :meth:`target_modules` (the modules it acts on, in order).
    """

    family: str
    #: The ``*PreTrainedModel`` class whose ``_init_weights`` the hook wraps.
    base_class: type

    def num_layers(self, config) -> int:
        return config.num_hidden_layers

    def check_config(self, config) -> None:
        """Raise ``ValueError`` for model configs the init cannot handle (e.g. head_dim not dividing hidden size)."""

    def init_module(self, model: nn.Module, module: nn.Module, cfg: MimeticConfig) -> None:
        raise NotImplementedError

    def target_modules(self, model: nn.Module) -> Iterator[nn.Module]:
        raise NotImplementedError


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


def write_rows(param: torch.Tensor, rows: slice, value: torch.Tensor) -> None:
    """Write ``value`` into ``param[rows]`` by building the whole new tensor (a slice write would bypass the guard)."""
    if writable(param):
        new = param.detach().clone()
        new[rows] = value.to(device=param.device, dtype=param.dtype)
        write(param, new)


def zero_(param: torch.Tensor | None) -> None:
    if param is not None:
        write(param, torch.zeros_like(param))
