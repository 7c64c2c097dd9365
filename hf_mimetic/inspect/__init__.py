"""Inspection: the structure an init creates (:mod:`.structure`) and Mamba's attention maps (:mod:`.ssm_maps`)."""

from .structure import columns, format_comparison, structure

__all__ = ["columns", "format_comparison", "structure"]
