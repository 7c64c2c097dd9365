"""Position-table options (thesis §3.2.4, Table 3.4, Fig. 3.20): sinusoids written into a learned position table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from .base import Flag, KindConfig, Number, option


@dataclass
class PositionConfig(KindConfig):
    """Options of learned absolute position tables (ViT, GPT-2, BERT…). Models with rotary positions have none.

    ``position_scale`` is the amplitude of the sinusoids in units of the std of the token (or patch) embeddings at
    initialisation: the thesis's γ, whose Transformer added sinusoids to embeddings of std ≈ 1.
    """

    kind: ClassVar[str] = "positions"
    description: ClassVar[str] = "sinusoidal position embeddings (§3.2.4)"
    absent: ClassVar[str] = "it has no learned position table: rotary positions, or none"
    defaults: ClassVar[Mapping[str, Any]] = {
        "position_embeddings": True, "position_scale": 1.0, "freeze_position_embeddings": False,
    }  # fmt: skip

    position_embeddings: bool | None = option(Flag(), "write sinusoidal tables into the learned position embeddings")
    position_scale: float | None = option(
        Number(0.0, 100.0), "amplitude of the sinusoids, in units of the std of the token/patch embeddings at init"
    )
    freeze_position_embeddings: bool | None = option(Flag(), "keep the position table fixed during training")

    @property
    def active(self) -> bool:
        return bool(self.position_embeddings)
