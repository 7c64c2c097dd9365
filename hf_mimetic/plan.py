"""What mimetic init does to one model, worked out once per model: the modules it acts on, the layer each belongs to,
and the recipe resolved for them.

The hook asks for the plan of a model when transformers initialises it (:func:`plan_of`); the plan is cached on the
model and rebuilt only if ``config.mimetic_config`` changes. Layer indices are found by structure: a module's layer
is the element of the innermost ``nn.ModuleList`` that contains it, numbered across the lists that hold targets in
module order (so ConvNeXt's per-stage lists number their blocks consecutively).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from torch import nn

from .catalog import FAMILIES, family, layouts_for, recognised_modules
from .config.base import check_layer_range
from .layouts.base import Layout, writable
from .recipe import KINDS, RECORD, MimeticConfig

_CACHE = "_hf_mimetic_plan"


@dataclass
class Target:
    """A module a layout recognised: its name in the model, its layout and its layer (``None``: outside the layers).
    A module recognised by layouts of several kinds (ConvMixer's block: ``conv`` and ``mlp``) is several targets."""

    name: str
    module: nn.Module
    layout: Layout
    layer: int | None
    #: Relative depth in [0, 1] among the model's targets of the same layout (the thesis's d = (i − 1)/(D − 1)).
    depth: float = 0.0


def find_targets(
    model: nn.Module, declared: tuple[Layout, ...] = (), layer_lists: tuple[str, ...] | None = None
) -> tuple[list[Target], int]:
    """Every (module, layout) of ``model`` that a layout recognises, in module order, and the number of layers.

    ``declared``: the model class's own layouts, tried before the catalogue's (default: its ``mimetic_layouts``
    attribute, see :class:`~hf_mimetic.MimeticInitMixin`). ``layer_lists``: the containers whose children are the
    layers (default: every ``nn.ModuleList``, the innermost one holding a module giving its layer).
    """
    declared = declared or tuple(getattr(model, "mimetic_layouts", ()))
    matched, lists = [], []
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) if layer_lists is None else name in layer_lists:
            lists.append(name)
        for layout in layouts_for(module, declared):
            matched.append((name, module, layout))

    def block(name: str) -> tuple[str, int] | None:
        """(list, index) of the innermost ModuleList element that contains module ``name``."""
        found = None
        for list_name in lists:
            prefix = f"{list_name}." if list_name else ""
            head = name[len(prefix) :].split(".")[0] if name.startswith(prefix) else ""
            if head.isdigit() and (found is None or len(list_name) > len(found[0])):
                found = (list_name, int(head))
        return found

    blocks = {name: block(name) for name, _, _ in matched}
    used = [name for name in lists if any(b is not None and b[0] == name for b in blocks.values())]
    offsets, total = {}, 0
    for name in used:
        offsets[name] = total
        total += len(model.get_submodule(name))
    targets = [
        Target(name, module, layout, None if blocks[name] is None else offsets[blocks[name][0]] + blocks[name][1])
        for name, module, layout in matched
    ]
    for layout in {id(t.layout): t.layout for t in targets}.values():
        same = [t for t in targets if t.layout is layout]
        for rank, target in enumerate(same):
            target.depth = rank / (len(same) - 1) if len(same) > 1 else 0.0
    return targets, total


class Plan:
    """The targets of one model and the recipe resolved for them (``ValueError`` for anything that does not apply).

    ``preset``: the preset the recipe starts from unless the user names one. Default: the model class's
    ``mimetic_preset`` (:class:`~hf_mimetic.MimeticInitMixin`), else its catalogued family's; a model that has
    neither must name it in ``value``. ``name``: the model's name in messages (default: its ``config.model_type``).
    ``declared`` and ``layer_lists``: as :func:`find_targets`.
    """

    def __init__(
        self,
        model: nn.Module,
        value: MimeticConfig | Mapping[str, Any] | None,
        *,
        preset: str | None = None,
        name: str | None = None,
        declared: tuple[Layout, ...] = (),
        layer_lists: tuple[str, ...] | None = None,
    ) -> None:
        self.targets, self.num_layers = find_targets(model, declared, layer_lists)
        config = getattr(model, "config", None)
        name = name or getattr(config, "model_type", None) or type(model).__name__
        if not self.targets:
            raise ValueError(
                f"mimetic init found no layer it recognises in {type(model).__name__} (model type {name!r}). It "
                f"recognises {', '.join(recognised_modules())} (catalogued model types: {sorted(FAMILIES)}); for a "
                "model of your own, declare its layouts with MimeticInitMixin"
            )
        kinds = list(dict.fromkeys(t.layout.kind for t in self.targets))
        preset = preset or getattr(model, "mimetic_preset", None)
        if preset is None and name in FAMILIES:
            preset = FAMILIES[name].preset
        self.recipe = MimeticConfig.for_model(value, name, kinds, preset)
        check_layer_range(self.recipe.layers, self.num_layers)
        for target in self.targets:
            target.layout.check(target.module, model)
        self.by_module: dict[int, list[Target]] = {}
        for target in self.targets:
            self.by_module.setdefault(id(target.module), []).append(target)
        # Parameters a selected target overwrites entirely, by the module that owns them (the hook asks per module).
        self.replaced: dict[int, list[nn.Parameter]] = {}
        selected = self.selected()
        for t in selected:
            for owner, param in t.layout.replaced(t.module, self.recipe.kinds[t.layout.kind]):
                self.replaced.setdefault(id(owner), []).append(param)
        for layout in {id(t.layout): t.layout for t in selected}.values():
            same = [t for t in selected if t.layout is layout]
            layout.prepare([t.module for t in same], [t.depth for t in same], self.recipe.kinds[layout.kind])

    def selected(self) -> list[Target]:
        """The targets the recipe initialises: in a selected layer, of a kind that writes something."""
        return [
            t for t in self.targets if self.recipe.selects(t.layer) and self.recipe.kinds[t.layout.kind].active
        ]

    def replaced_in(self, module: nn.Module) -> list[nn.Parameter]:
        """``module``'s own parameters that a selected target will overwrite entirely (and may: not loaded)."""
        return [p for p in self.replaced.get(id(module), ()) if writable(p)]

    def initialize(self, module: nn.Module, model: nn.Module) -> None:
        """Write the init into ``module`` for each target it is in a selected layer (after its native init)."""
        for target in self.by_module.get(id(module), ()):
            if self.recipe.selects(target.layer):
                target.layout.initialize(module, self.recipe.kinds[target.layout.kind], model, depth=target.depth)

    def configure(self) -> None:
        """Settings that hold for loaded weights too (e.g. a frozen position table)."""
        for target in self.selected():
            target.layout.configure(target.module, self.recipe.kinds[target.layout.kind])

    def record(self) -> dict[str, Any]:
        """The recipe, flat, with the layers each kind initialises (``True`` for parts outside the layers)."""
        initialized: dict[str, Any] = {}
        for target in self.selected():
            kind = target.layout.kind
            if target.layer is None:
                initialized[kind] = True
            else:
                initialized.setdefault(kind, [])
                if target.layer not in initialized[kind]:
                    initialized[kind].append(target.layer)
        return {**self.recipe.to_dict(), RECORD: {kind: initialized[kind] for kind in KINDS if kind in initialized}}


def plan_of(model: nn.Module) -> Plan | None:
    """The cached plan of a model whose config asks for mimetic init (``None`` if it does not). Building the plan
    writes the resolved recipe into ``config.mimetic_config``."""
    # Read from the config's own attributes: transformers' PretrainedConfig.__getattribute__ (which checks for
    # per-layer attributes) costs more than the rest of this function, which runs once per module of every model.
    attributes = object.__getattribute__(model.config, "__dict__")
    flag = attributes.get("mimetic_init")
    if flag is None or flag is False:  # None: the flag was never set
        return None
    if flag is not True:
        raise ValueError(f"mimetic_init must be True or False, got {flag!r}")
    value = attributes.get("mimetic_config")
    cached = model.__dict__.get(_CACHE)
    if cached is not None and cached.model_id == id(model) and cached.source == value:
        return cached
    plan = Plan(model, value)
    model.config.mimetic_config = plan.record()
    plan.source, plan.model_id = dict(model.config.mimetic_config), id(model)
    object.__setattr__(model, _CACHE, plan)
    return plan


_KINDS: dict[str, tuple[str, ...]] = {}


def family_kinds(model_type: str) -> tuple[str, ...]:
    """The kinds of layer a catalogued family's models contain (found in its example model, built on the meta
    device; cached)."""
    if model_type not in _KINDS:
        import torch

        entry = family(model_type)
        with torch.device("meta"):
            model = entry.auto().from_config(entry.config(model_type))
        _KINDS[model_type] = tuple(dict.fromkeys(t.layout.kind for t in find_targets(model)[0]))
    return _KINDS[model_type]


def recipe_for(model_type: str, value: MimeticConfig | Mapping[str, Any] | None = None, **options: Any) -> MimeticConfig:
    """The full recipe a catalogued model type gets from ``value`` (what a user passes as ``mimetic_config``: ``None``,
    a dict or a :class:`~hf_mimetic.MimeticConfig`) and ``options`` (overrides on top).

    Example:
        >>> recipe_for("gpt2", qk_beta=0.6).qk_alpha  # the GPT-2 family's preset, "language"
        0.0
    """
    given = MimeticConfig.from_value(value)
    options = {**given.overrides(), **options}
    recipe = MimeticConfig(preset=options.pop("preset", given.preset), layers=options.pop("layers", given.layers), **options)
    return recipe.resolved(family(model_type).preset, family_kinds(model_type), model_type)
