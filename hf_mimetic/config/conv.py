"""Depthwise-convolution options (thesis §3.1.2, eqs. 3.5–3.11): filters drawn from a closed-form covariance whose
Gaussian width σ grows with depth, ``σ(d) = σ0 + vσ·d + ½·aσ·d²``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from ..maths.conv import sigma_schedule
from .base import Flag, KindConfig, Number, option


@dataclass
class ConvConfig(KindConfig):
    """Options of depthwise convolutions (ConvMixer, ConvNeXt). ``None`` fields take the preset's value."""

    kind: ClassVar[str] = "conv"
    description: ClassVar[str] = "depthwise filters drawn from the closed-form covariance of §3.1.2"
    absent: ClassVar[str] = "it has no depthwise convolution hf_mimetic recognises"
    #: The thesis's example schedule (Fig. 3.7); its CIFAR values are in an appendix our copy lacks.
    defaults: ClassVar[Mapping[str, Any]] = {
        "conv_covariance": True, "conv_sigma0": 0.5, "conv_sigma_velocity": 0.5, "conv_sigma_acceleration": 3.0,
        "conv_gain": 1.0, "freeze_filters": False,
    }  # fmt: skip

    conv_covariance: bool | None = option(Flag(), "draw the depthwise filters from the closed-form covariance")
    conv_sigma0: float | None = option(Number(0.0, 100.0, low_open=True), "σ0: Gaussian width of the first layer")
    conv_sigma_velocity: float | None = option(Number(-100.0, 100.0), "vσ: growth of σ with relative depth")
    conv_sigma_acceleration: float | None = option(Number(-100.0, 100.0), "aσ: curvature of σ over depth")
    conv_gain: float | None = option(
        Number(0.0, 100.0, low_open=True),
        "multiplies the sampled filters; 1 keeps the thesis's unnormalised covariance (centre variance ½)",
    )
    freeze_filters: bool | None = option(Flag(), "keep the depthwise filters fixed during training")

    def validate(self) -> None:
        if self.conv_covariance:
            s0, v, a = self.conv_sigma0, self.conv_sigma_velocity, self.conv_sigma_acceleration
            depths = [0.0, 1.0] + ([-v / a] if a > 0 and 0 < -v / a < 1 else [])
            lowest = min(sigma_schedule(d, s0, v, a) for d in depths)
            if not lowest > 0:
                raise ValueError(
                    f"σ(d) = conv_sigma0 + conv_sigma_velocity·d + ½·conv_sigma_acceleration·d² must stay > 0 for d in "
                    f"[0, 1]; with {s0}, {v}, {a} it reaches {lowest:g}"
                )

    @property
    def active(self) -> bool:
        return bool(self.conv_covariance or self.freeze_filters)
