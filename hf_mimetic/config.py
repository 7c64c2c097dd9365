"""Configuration of mimetic initialization: one dataclass, a preset per model family, strict validation.

The flags live on the transformers config (``config.mimetic_init`` and ``config.mimetic_config``, a plain dict), so
they round-trip through ``config.json``. A user passes overrides as a dict; they are applied on top of the family's
preset (thesis defaults) and every key is checked.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

from .functional.attention import NOISE_DISTRIBUTIONS, QK_SVD_METHODS

#: Model families with an adapter, by transformers ``model_type``.
FAMILIES = ("vit", "gpt2", "mamba", "mamba2")
ATTENTION_FAMILIES = ("vit", "gpt2")
SSM_FAMILIES = ("mamba", "mamba2")

#: The preset each family starts from.
FAMILY_PRESET = {"vit": "vision", "gpt2": "language", "mamba": "ssm", "mamba2": "ssm"}

# Thesis defaults. vision: §3.2.4 ("α1 = β1 = 0.7 and α2 = β2 = 0.4 for all experiments"); language: §3.2.6
# (chosen on char-level PTB: α1 = 0, β1 = 0.5, α2 = β2 = 0.2); ssm: §3.3.2 (Fig. 3.26 ablation: c = 8, b_Δ = 0.54;
# A, Δ and W_Cᵀ W_B). The thesis adds an identity convolution for Mamba 2; in transformers' Mamba 2 it stopped
# copying from being learned at all (3 learning rates × 3 seeds, docs/RESULTS.md), so it is off here too.
PRESETS: dict[str, dict[str, Any]] = {
    "vision": {"qk_alpha": 0.7, "qk_beta": 0.7, "vo_alpha": 0.4, "vo_beta": 0.4},
    # position_scale: the thesis's Transformer adds sinusoids of amplitude 1 to token embeddings of std ≈ 1; GPT-2's
    # start at std initializer_range = 0.02 (and are not scaled by √d), so the table is scaled to keep that ratio.
    # At amplitude 1 a small char-level GPT-2 stalls at the unigram loss (docs/RESULTS.md, char-gpt2).
    "language": {"qk_alpha": 0.0, "qk_beta": 0.5, "vo_alpha": 0.2, "vo_beta": 0.2, "position_scale": 0.02},
    "ssm": {"ssm_a": True, "ssm_a_shift": 8.0, "ssm_delta": True, "ssm_bc": True, "ssm_identity_conv": False},
}


@dataclass
class MimeticConfig:
    """Every switch of mimetic initialization. Defaults are the thesis's; presets adjust them per family.

    Attention fields apply to ViT and GPT-2, ``ssm_*`` fields to Mamba and Mamba 2, ``preset`` and ``layers`` to all.

    Example:
        >>> MimeticConfig.for_family("gpt2", qk_beta=0.6).qk_alpha
        0.0
        >>> model = AutoModelForCausalLM.from_config(cfg, mimetic_init=True, mimetic_config={"qk_beta": 0.6})
    """

    preset: str = "vision"
    #: Layer indices (0-based) to initialise; ``None`` means all layers. Position embeddings are not per layer.
    layers: list[int] | None = None

    # Self-attention, thesis §3.2.3: W_Q W_Kᵀ ≈ α1 Z + β1 I per head, W_V W_O ≈ α2 Z + sign·β2 I per layer.
    qk: bool = True
    qk_alpha: float = 0.7
    qk_beta: float = 0.7
    vo: bool = True
    vo_alpha: float = 0.4
    vo_beta: float = 0.4
    #: −1 (thesis) or +1 (its ablation in Table 3.4: 91.38% → 89.65% on CIFAR-10).
    vo_sign: int = -1
    #: "normal" (thesis, Z ~ N(0, I/d)) or "uniform" (same variance; public re-implementations).
    noise: str = "normal"
    #: How to take the rank-k SVD of each QK target: "exact", "randomized" (a rank-(k+10) sketch whose diagonal is a
    #: few % below exact) or "auto" (exact when k ≥ d/4, i.e. small d where it is cheap; randomized otherwise).
    qk_svd: str = "auto"
    #: Write sinusoidal tables (2-D for ViT, 1-D for GPT-2) × ``position_scale`` into the learned position embeddings.
    position_embeddings: bool = True
    position_scale: float = 1.0
    freeze_position_embeddings: bool = False
    #: Mean added to the first MLP layer's weights (Trockman & Kolter 2026). Its value is not in our sources and has
    #: not been measured here yet, so it is off by default.
    mlp_mean: float = 0.0

    # State space layers, thesis §3.3.2.
    #: Ā ≈ 1: A_log ← A_log − ssm_a_shift (our init-only reading of the thesis's A = −exp(−c·A_log)).
    ssm_a: bool = True
    ssm_a_shift: float = 8.0
    #: Δ ≈ 1: zero the Δ projection and set the Δ bias to softplus⁻¹(1) ≈ 0.5413.
    ssm_delta: bool = True
    #: W_Cᵀ W_B ≈ I: W_C ← ½(W_C′ + W_B).
    ssm_bc: bool = True
    #: ``None`` keeps the layer's native draw of W_B, W_C′ (thesis). A number t redraws them ~ N(0, 2t/N) so that
    #: E[diag(W_Cᵀ W_B)] = t (our addition, for the scale ablation).
    ssm_bc_diagonal: float | None = None
    #: Identity depthwise conv (current-token tap = 1). Thesis: off for Mamba 1, on for Mamba 2; off for both here,
    #: by measurement (docs/RESULTS.md, length-generalisation study).
    ssm_identity_conv: bool = False

    # ----------------------------------------------------------------------------------------------------------
    @classmethod
    def for_family(cls, family: str, **overrides: Any) -> "MimeticConfig":
        """The family's preset (or ``overrides["preset"]``) with ``overrides`` applied, validated."""
        _check_family(family)
        preset = overrides.get("preset", FAMILY_PRESET[family])
        allowed = PRESETS_BY_KIND["ssm" if family in SSM_FAMILIES else "attention"]
        if preset not in allowed:
            raise ValueError(f"preset {preset!r} does not apply to {family} models; valid presets: {allowed}")
        _check_keys(family, overrides)
        values: dict[str, Any] = {"preset": preset, **PRESETS[preset], **overrides}
        config = cls(**values)
        config.validate()
        return config

    @classmethod
    def resolve(cls, family: str, value: "MimeticConfig | Mapping[str, Any] | None") -> "MimeticConfig":
        """Turn what a user passed (``None``, a dict of overrides, or a ``MimeticConfig``) into a validated config."""
        if value is None:
            return cls.for_family(family)
        if isinstance(value, MimeticConfig):
            _check_keys(family, value.changed_fields())
            value.validate()
            return value
        if isinstance(value, Mapping):
            return cls.for_family(family, **dict(value))
        raise ValueError(f"mimetic_config must be a dict or a MimeticConfig, got {type(value).__name__}")

    def changed_fields(self) -> dict[str, Any]:
        """Fields whose value differs from the dataclass default."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != (f.default_factory() if callable(f.default_factory) else f.default)
        }

    def to_dict(self, family: str) -> dict[str, Any]:
        """The fields that apply to ``family``, JSON-serialisable (what is stored in ``config.mimetic_config``)."""
        names = COMMON_FIELDS + (SSM_FIELDS if family in SSM_FAMILIES else ATTENTION_FIELDS)
        return {name: _plain(getattr(self, name)) for name in names}

    def validate(self, num_layers: int | None = None) -> None:
        """Raise ``ValueError`` naming the bad value and the valid range."""
        for name in ("qk_alpha", "qk_beta", "vo_alpha", "vo_beta"):
            _check_range(name, getattr(self, name), 0.0, 1.0)
        for name in ("qk", "vo", "position_embeddings", "freeze_position_embeddings", "ssm_a", "ssm_delta", "ssm_bc", "ssm_identity_conv"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.vo_sign not in (-1, 1):
            raise ValueError(f"vo_sign must be -1 (thesis) or +1, got {self.vo_sign!r}")
        if self.noise not in NOISE_DISTRIBUTIONS:
            raise ValueError(f"noise must be one of {NOISE_DISTRIBUTIONS}, got {self.noise!r}")
        if self.qk_svd not in QK_SVD_METHODS:
            raise ValueError(f"qk_svd must be one of {QK_SVD_METHODS}, got {self.qk_svd!r}")
        _check_range("position_scale", self.position_scale, 0.0, math.inf)
        _check_range("mlp_mean", self.mlp_mean, -math.inf, math.inf)
        _check_range("ssm_a_shift", self.ssm_a_shift, 0.0, math.inf)
        if self.ssm_bc_diagonal is not None:
            _check_range("ssm_bc_diagonal", self.ssm_bc_diagonal, 0.0, math.inf)
            if self.ssm_bc_diagonal == 0:
                raise ValueError("ssm_bc_diagonal must be > 0 (or None to keep the native draw), got 0")
        if self.layers is not None:
            if isinstance(self.layers, (str, bytes)) or not all(isinstance(i, int) and not isinstance(i, bool) for i in self.layers):
                raise ValueError(f"layers must be a list of layer indices or None, got {self.layers!r}")
            if num_layers is not None:
                bad = [i for i in self.layers if not 0 <= i < num_layers]
                if bad:
                    raise ValueError(f"layers {bad} out of range: the model has {num_layers} layers (valid: 0..{num_layers - 1})")

    def selects(self, layer_index: int) -> bool:
        """Whether layer ``layer_index`` is initialised (``layers=None`` selects all)."""
        return self.layers is None or layer_index in self.layers


COMMON_FIELDS = ("preset", "layers")
ATTENTION_FIELDS = (
    "qk", "qk_alpha", "qk_beta", "vo", "vo_alpha", "vo_beta", "vo_sign", "noise", "qk_svd",
    "position_embeddings", "position_scale", "freeze_position_embeddings", "mlp_mean",
)  # fmt: skip
SSM_FIELDS = ("ssm_a", "ssm_a_shift", "ssm_delta", "ssm_bc", "ssm_bc_diagonal", "ssm_identity_conv")
PRESETS_BY_KIND = {"attention": ("vision", "language"), "ssm": ("ssm",)}


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"mimetic init supports model types {FAMILIES}, got {family!r}")


def _check_keys(family: str, keys: Mapping[str, Any]) -> None:
    applicable = COMMON_FIELDS + (SSM_FIELDS if family in SSM_FAMILIES else ATTENTION_FIELDS)
    everything = COMMON_FIELDS + ATTENTION_FIELDS + SSM_FIELDS
    for key in keys:
        if key not in everything:
            raise ValueError(f"unknown mimetic_config key {key!r}; valid keys for {family}: {sorted(applicable)}")
        if key not in applicable:
            raise ValueError(f"mimetic_config key {key!r} does not apply to {family} models; valid keys: {sorted(applicable)}")


def _check_range(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value <= high) or math.isnan(value):
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value

