"""State-space options (thesis §3.3.2, Fig. 3.26): Ā ≈ 1, Δ ≈ 1, W_Cᵀ W_B ≈ I and the identity convolution."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from .base import Flag, KindConfig, Number, OrNone, option


@dataclass
class SSMConfig(KindConfig):
    """Options of Mamba and Mamba 2 mixers.

    The thesis adds an identity convolution for Mamba 2; in transformers' Mamba 2 it stopped copying from being learned
    at all (3 learning rates × 3 seeds, docs/RESULTS.md, "Mamba 2"), so it is off here for both versions.
    """

    kind: ClassVar[str] = "ssm"
    description: ClassVar[str] = "state-space layers that start as linear attention: Ā ≈ 1, Δ ≈ 1, W_Cᵀ W_B ≈ I (§3.3)"
    absent: ClassVar[str] = "it has no state-space mixer"
    #: The thesis's ablation (Fig. 3.26): c = 8, b_Δ = softplus⁻¹(1); A, Δ and W_Cᵀ W_B on.
    defaults: ClassVar[Mapping[str, Any]] = {
        "ssm_a": True, "ssm_a_shift": 8.0, "ssm_delta": True, "ssm_bc": True, "ssm_bc_diagonal": None,
        "ssm_identity_conv": False,
    }  # fmt: skip

    ssm_a: bool | None = option(Flag(), "Ā ≈ 1: A_log ← A_log − ssm_a_shift")
    ssm_a_shift: float | None = option(Number(0.0, 20.0), "c in A_log ← A_log − c (thesis: 2, 4 or 8)")
    ssm_delta: bool | None = option(Flag(), "Δ ≈ 1: zero the Δ projection, Δ bias = softplus⁻¹(1)")
    ssm_bc: bool | None = option(Flag(), "W_Cᵀ W_B ≈ I: W_C ← ½(W_C′ + W_B)")
    ssm_bc_diagonal: float | None = option(
        OrNone(Number(0.0, 100.0, low_open=True), "keep the native draw"),
        "redraw W_B, W_C′ so that E[diag W_Cᵀ W_B] equals this (None: keep the native draw)",
    )
    ssm_identity_conv: bool | None = option(Flag(), "depthwise conv = identity (current-token tap 1)")

    @property
    def active(self) -> bool:
        return bool(self.ssm_a or self.ssm_delta or self.ssm_bc or self.ssm_identity_conv)
