"""Mimetic init beyond transformers' own single-process route, each imported only when used (all optional):
:mod:`.timm` (timm models), :mod:`.deepspeed` (ZeRO-3)."""
