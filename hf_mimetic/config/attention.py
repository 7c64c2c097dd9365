"""Self-attention options (thesis §3.2.3, eqs. 3.12–3.18): W_Q^h W_K^hᵀ ≈ α1 Z_h + β1 I, W_V W_O ≈ α2 Z + sign·β2 I."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from ..maths.attention import NOISE_DISTRIBUTIONS, QK_SVD_METHODS
from .base import Choice, Flag, KindConfig, Number, option


@dataclass
class AttentionConfig(KindConfig):
    """Options of the attention layers. ``None`` fields take the preset's value.

    Example:
        >>> AttentionConfig(qk_beta=0.6).resolve({"qk_alpha": 0.0}).qk_alpha
        0.0
    """

    kind: ClassVar[str] = "attention"
    description: ClassVar[str] = "attention layers with W_Q W_Kᵀ ≈ α1 Z + β1 I per head and W_V W_O ≈ α2 Z − β2 I per layer (§3.2)"
    absent: ClassVar[str] = "it has no attention layer hf_mimetic recognises"
    #: The thesis's ViT values (§3.2.4: "α1 = β1 = 0.7 and α2 = β2 = 0.4 for all experiments").
    defaults: ClassVar[Mapping[str, Any]] = {
        "qk": True, "qk_alpha": 0.7, "qk_beta": 0.7, "vo": True, "vo_alpha": 0.4, "vo_beta": 0.4, "vo_sign": -1,
        "noise": "normal", "qk_svd": "auto",
    }  # fmt: skip

    qk: bool | None = option(Flag(), "initialise W_Q W_Kᵀ ≈ α1 Z + β1 I per head")
    qk_alpha: float | None = option(Number(0.0, 1.0), "α1, the noise in W_Q W_Kᵀ")
    qk_beta: float | None = option(Number(0.0, 1.0), "β1, the identity in W_Q W_Kᵀ")
    vo: bool | None = option(Flag(), "initialise W_V W_O ≈ α2 Z + sign·β2 I per layer")
    vo_alpha: float | None = option(Number(0.0, 1.0), "α2, the noise in W_V W_O")
    vo_beta: float | None = option(Number(0.0, 1.0), "β2, the identity in W_V W_O")
    vo_sign: int | None = option(Choice((-1, 1)), "-1 (thesis) or +1 (its ablation, Table 3.4)")
    noise: str | None = option(Choice(NOISE_DISTRIBUTIONS), "Z ~ N(0, I/d) (thesis) or uniform with the same variance")
    qk_svd: str | None = option(
        Choice(QK_SVD_METHODS), "rank-k SVD of each QK target: exact, randomized, or auto (exact when k ≥ d/4)"
    )

    @property
    def active(self) -> bool:
        return bool(self.qk or self.vo)
