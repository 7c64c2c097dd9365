"""The recipe: one config per kind of layer, a preset, and the layers to initialise.

What the user passes as ``mimetic_config`` (a flat dict, or a :class:`MimeticConfig`) holds *overrides*: every option
name is unique across kinds, so a flat ``{"qk_beta": 0.6, "layers": [0, 1]}`` says everything. When a model is built,
the recipe is resolved once against what the model contains (its kinds of layers) and its family's preset, and the
resolved recipe, flat again, is what ``config.mimetic_config`` records, with the layers that were initialised.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from .catalog import KINDS
from .config.base import KindConfig, check_layers
from .config.presets import PRESETS

#: Option → kind.
OPTION_KIND: dict[str, str] = {name: kind for kind, cls in KINDS.items() for name in cls.field_names()}
COMMON = ("preset", "layers")
#: Written by the library when a model is built: the layers each kind initialised. Read back, it is recomputed.
RECORD = "initialized"


def preset_kinds(name: str) -> set[str]:
    """The kinds of layer whose options preset ``name`` sets."""
    return {OPTION_KIND[option] for option in PRESETS[name]}


def _applicable(kinds: Iterable[str]) -> list[str]:
    """The option names that apply to a model whose layers are of ``kinds``."""
    kinds = set(kinds)
    return sorted([*COMMON, *(name for kind, cls in KINDS.items() if kind in kinds for name in cls.field_names())])


class MimeticConfig:
    """A mimetic-init recipe: ``preset``, ``layers`` and any option of any kind, as overrides of the preset.

    ``None`` (or an option left out) means "the preset's value"; the preset defaults to the model family's.

    Example:
        >>> recipe = MimeticConfig(qk_beta=0.6, layers=[0, 1])
        >>> model = AutoModelForCausalLM.from_config(GPT2Config(), mimetic_init=True, mimetic_config=recipe)
        >>> model.config.mimetic_config["qk_alpha"]  # the GPT-2 family's preset, "language"
        0.0
    """

    def __init__(self, preset: str | None = None, layers: list[int] | None = None, **options: Any) -> None:
        if preset is not None and (not isinstance(preset, str) or preset not in PRESETS):
            raise ValueError(f"unknown preset {preset!r}; valid presets: {tuple(PRESETS)}")
        self.preset = preset
        self.layers = check_layers(layers)
        options = {name: value for name, value in options.items() if value is not None}  # None: the preset's value
        for name in options:
            if name not in OPTION_KIND:
                raise ValueError(f"unknown mimetic_config key {name!r}; valid keys: {sorted([*COMMON, *OPTION_KIND])}")
        self.kinds: dict[str, KindConfig] = {
            kind: cls.from_overrides({k: v for k, v in options.items() if OPTION_KIND[k] == kind})
            for kind, cls in KINDS.items()
        }

    # ------------------------------------------------------------------------------------------------- construction
    @classmethod
    def from_value(cls, value: "MimeticConfig | Mapping[str, Any] | None") -> "MimeticConfig":
        """What a user passed as ``mimetic_config``: ``None``, a flat dict of options, or a ``MimeticConfig``."""
        if value is None:
            return cls()
        if isinstance(value, MimeticConfig):
            return value
        if isinstance(value, Mapping):
            options = dict(value)
            record = options.pop(RECORD, None)
            if record is not None and not isinstance(record, Mapping):
                raise ValueError(f"mimetic_config[{RECORD!r}] is written by hf_mimetic (a dict of layers per kind); got {record!r}")
            bad = [k for k in options if not isinstance(k, str)]
            if bad:
                raise ValueError(f"mimetic_config keys must be option names (strings); got {bad[0]!r}")
            return cls(**options)
        raise ValueError(f"mimetic_config must be a dict or a MimeticConfig, got {type(value).__name__}")

    @classmethod
    def for_model(
        cls, value: "MimeticConfig | Mapping[str, Any] | None", model_name: str, kinds: Iterable[str],
        default_preset: str | None,
    ) -> "MimeticConfig":
        """The full recipe for a model named ``model_name`` whose layers are of ``kinds``: what the user passed
        (``None``, a dict or a ``MimeticConfig``), validated and resolved against the preset."""
        if isinstance(value, Mapping):
            applicable = _applicable(kinds)
            for name in value:
                if name not in OPTION_KIND and name not in COMMON and name != RECORD:
                    raise ValueError(f"unknown mimetic_config key {name!r}; valid keys for {model_name}: {applicable}")
        return cls.from_value(value).resolved(default_preset, kinds, model_name)

    # --------------------------------------------------------------------------------------------------- resolution
    def overrides(self) -> dict[str, Any]:
        """Every option the user set, flat."""
        return {name: value for config in self.kinds.values() for name, value in config.overrides().items()}

    def resolved(self, default_preset: str | None, kinds: Iterable[str], model_name: str) -> "MimeticConfig":
        """The full recipe for a model whose layers are of ``kinds``: every option of those kinds filled from the
        preset (``self.preset`` or ``default_preset``) and the overrides. Raises ``ValueError`` for an option or a
        preset that does not apply to the model."""
        kinds = [kind for kind in KINDS if kind in set(kinds)]
        applicable = _applicable(kinds)
        for name in self.overrides():
            if OPTION_KIND[name] not in kinds:
                raise ValueError(
                    f"mimetic_config key {name!r} does not apply to {model_name} models ({KINDS[OPTION_KIND[name]].absent}); "
                    f"valid keys: {applicable}"
                )
        preset = self.preset or default_preset
        valid = tuple(name for name in PRESETS if preset_kinds(name) & set(kinds))
        if preset is None:
            raise ValueError(
                f"{model_name} is not in hf_mimetic's catalogue, so its recipe must name the preset it starts from "
                f"(its layers were recognised by structure: {', '.join(kinds)}): pass mimetic_config={{'preset': ...}}, "
                f"or set mimetic_preset on a MimeticInitMixin model class; valid presets: {valid}"
            )
        if not preset_kinds(preset) & set(kinds):
            raise ValueError(f"preset {preset!r} does not apply to {model_name} models; valid presets: {valid}")
        result = MimeticConfig(preset=preset, layers=self.layers)
        result.kinds = {kind: self.kinds[kind].resolve(PRESETS[preset]) for kind in kinds}
        return result

    # ------------------------------------------------------------------------------------------------------- access
    def __getattr__(self, name: str) -> Any:
        # Flat access to any kind's option: recipe.qk_alpha is recipe.kinds["attention"].qk_alpha.
        kind = OPTION_KIND.get(name)
        kinds = self.__dict__.get("kinds", {})
        if kind is None or kind not in kinds:
            raise AttributeError(f"{type(self).__name__} has no option {name!r} for this model")
        return getattr(kinds[kind], name)

    def to_dict(self) -> dict[str, Any]:
        """Flat and JSON-serialisable: ``preset``, ``layers`` and every option of the kinds this recipe holds."""
        return {"preset": self.preset, "layers": self.layers, **{k: v for c in self.kinds.values() for k, v in c.to_dict().items()}}

    def selects(self, layer: int | None) -> bool:
        """Whether layer ``layer`` is initialised (``layers=None`` selects all; ``None`` is a part outside layers)."""
        return layer is None or self.layers is None or layer in self.layers

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MimeticConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if v is not None)
        return f"MimeticConfig({options})"
