"""What every kind of layer config shares: declared options, strict validation, and resolution against a preset.

A kind config (:class:`~hf_mimetic.config.attention.AttentionConfig`, :class:`~hf_mimetic.config.ssm.SSMConfig`, …)
is a dataclass whose fields are the user's *overrides*: ``None`` means "the preset's value". :meth:`KindConfig.resolve`
fills every field from the kind's defaults (the thesis's values), the chosen preset and the overrides, in that order,
and validates the result. Each field declares its check, so validation, error messages and the scripts' flags all come
from one place.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping


class Check:
    """How one option is validated; ``describe()`` is the valid range used in error messages and flag help."""

    python_type: type

    def __call__(self, name: str, value: Any) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Flag(Check):
    python_type: ClassVar[type] = bool

    def __call__(self, name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, got {value!r}")
        return value

    def describe(self) -> str:
        return "True or False"


@dataclass(frozen=True)
class Number(Check):
    """A finite real number in ``[low, high]`` (``(low, high]`` when ``low_open``)."""

    low: float
    high: float
    low_open: bool = False
    python_type: ClassVar[type] = float

    def __call__(self, name: str, value: Any) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if ok:
            ok = (self.low < value if self.low_open else self.low <= value) and value <= self.high
        if not ok:
            raise ValueError(f"{name} must be a number in {self.describe()}, got {value!r}")
        return float(value)

    def describe(self) -> str:
        return f"{'(' if self.low_open else '['}{float(self.low)}, {float(self.high)}]"


@dataclass(frozen=True)
class Choice(Check):
    """One of a fixed set of values (compared with ``==`` and of the same type: ``True`` is not ``1``)."""

    values: tuple[Any, ...]

    @property
    def python_type(self) -> type:  # type: ignore[override]
        return type(self.values[0])

    def __call__(self, name: str, value: Any) -> Any:
        if not any(type(value) is type(v) and value == v for v in self.values):
            raise ValueError(f"{name} must be one of {self.values}, got {value!r}")
        return value

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


@dataclass(frozen=True)
class OrNone(Check):
    """``None`` or a value passing ``inner``."""

    inner: Check
    meaning: str

    @property
    def python_type(self) -> type:  # type: ignore[override]
        return self.inner.python_type

    def __call__(self, name: str, value: Any) -> Any:
        if value is None:
            return None
        try:
            return self.inner(name, value)
        except ValueError:
            raise ValueError(f"{name} must be None ({self.meaning}) or a number in {self.inner.describe()}, got {value!r}") from None

    def describe(self) -> str:
        return f"None ({self.meaning}) or {self.inner.describe()}"


def option(check: Check, help: str) -> Any:  # noqa: A002  (dataclass field metadata)
    """A kind-config field: ``None`` (the preset's value) unless the user sets it; ``check`` validates it."""
    return field(default=None, metadata={"check": check, "help": help})


@dataclass
class KindConfig:
    """Base of the per-kind configs. Subclasses set ``kind``, ``defaults`` (the thesis's values, every field) and
    declare their fields with :func:`option`."""

    kind: ClassVar[str]
    #: What this kind's init does, for model cards ("attention layers with W_Q W_Kᵀ ≈ …").
    description: ClassVar[str] = ""
    #: Why a model lacks this kind, for the error when an option of it is set.
    absent: ClassVar[str] = ""
    #: Value of every field when neither the preset nor the user sets it (the thesis's choice).
    defaults: ClassVar[Mapping[str, Any]]

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def check_of(cls, name: str) -> Check:
        return next(f.metadata["check"] for f in dataclasses.fields(cls) if f.name == name)

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any]) -> "KindConfig":
        """Validate ``overrides`` (field → value) and return them as a config; unset fields stay ``None``."""
        return cls(**{name: cls.check_of(name)(name, value) for name, value in overrides.items()})

    def overrides(self) -> dict[str, Any]:
        """The fields the user set."""
        return {name: getattr(self, name) for name in self.field_names() if getattr(self, name) is not None}

    def resolve(self, preset: Mapping[str, Any]) -> "KindConfig":
        """Every field filled: the kind's defaults, then the preset's values for this kind, then the overrides;
        ``ValueError`` if the result is inconsistent (:meth:`validate`)."""
        names = set(self.field_names())
        values = {**self.defaults, **{k: v for k, v in preset.items() if k in names}, **self.overrides()}
        resolved = type(self).from_overrides(values)
        resolved.validate()
        return resolved

    def validate(self) -> None:
        """Checks across fields of a resolved config (each field alone is checked by its ``Check``)."""

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.field_names()}

    @property
    def active(self) -> bool:
        """Whether this kind writes anything (e.g. attention with both QK and VO switched off does not)."""
        raise NotImplementedError


def check_layers(value: Any) -> list[int] | None:
    """``None`` (every layer) or a list/tuple of distinct layer indices ≥ 0, returned sorted."""
    if value is None:
        return None
    valid = isinstance(value, (list, tuple)) and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value)
    if not valid or len(set(value)) != len(value):
        raise ValueError(
            f"layers must be None (every layer) or a list of distinct layer indices >= 0, e.g. [0, 2]; got {value!r}"
        )
    return sorted(value)


def check_layer_range(layers: list[int] | None, num_layers: int) -> None:
    """Raise ``ValueError`` unless every index in ``layers`` is a layer of a model with ``num_layers`` layers."""
    if layers is None:
        return
    bad = [i for i in layers if i >= num_layers]
    if bad:
        has = {0: "no layers", 1: "1 layer (valid: 0)"}.get(num_layers, f"{num_layers} layers (valid: 0..{num_layers - 1})")
        raise ValueError(f"layers {bad} out of range: the model has {has}")
