"""MLP options ("Mimetic Initialization of MLPs", Trockman & Kolter 2026): a nonzero mean in the first layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from .base import KindConfig, Number, option


@dataclass
class MLPConfig(KindConfig):
    """Options of the MLP blocks. The paper's value of the mean is not in our sources, so it is off by default."""

    kind: ClassVar[str] = "mlp"
    description: ClassVar[str] = "a nonzero mean in the first MLP layer (Trockman & Kolter 2026)"
    absent: ClassVar[str] = "it has no plain two-layer MLP hf_mimetic recognises; gated MLPs are not covered"
    defaults: ClassVar[Mapping[str, Any]] = {"mlp_mean": 0.0}

    mlp_mean: float | None = option(Number(-1.0, 1.0), "mean added to the first MLP layer's weights (0: off)")

    @property
    def active(self) -> bool:
        return self.mlp_mean != 0.0
