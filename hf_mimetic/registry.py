"""The registry: the layer layouts mimetic init recognises, and the model families it is tested on.

Everything that depends on an architecture reads this one table: the hook (which modules to initialise, with which
preset), :mod:`hf_mimetic.inspect` (how to read the structure back), the command line and the scripts (which model
types exist), and the tests (a tiny config per family, each tested without new test code).

* A **layout** (:class:`~hf_mimetic.layouts.base.Layout`) recognises modules (by class name) and knows how to write
  the init into them and read it back. Any model whose modules a layout recognises gets the init.
* A **family** (:class:`Family`) is a transformers ``model_type``: its preset, the class users train, and a tiny
  config for tests.

Example, adding a model whose attention already has a layout (one line)::

    register(Family("deit", preset="vision", auto_class="AutoModelForImageClassification", tiny=dict(...)))
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from torch import nn

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel

    from .layouts.base import Layout


@dataclass(frozen=True)
class LMSizes:
    """Sizes of a small causal LM, in one vocabulary for every family (``--hidden_size`` etc. of the scripts)."""

    hidden_size: int
    num_layers: int
    vocab_size: int
    max_positions: int
    head_dim: int = 64  # attention head size, or Mamba 2's SSM head size
    state_size: int = 32  # SSM state N
    expand: int = 2  # SSM inner width = expand × hidden_size
    chunk_size: int = 32  # Mamba 2's SSD chunk (speed only)
    num_kv_heads: int | None = None  # grouped-query attention: key/value heads (None: one per query head)


@dataclass(frozen=True)
class ImageSizes:
    """Sizes of a small image classifier, in one vocabulary for every family (``--hidden_size`` etc. of
    ``scripts/train_image_classification.py``)."""

    image_size: int
    patch_size: int
    hidden_size: int
    num_layers: int
    num_labels: int
    num_heads: int = 3  # attention models
    intermediate_size: int | None = None  # attention models; default 4 × hidden_size
    kernel_size: int = 9  # depthwise-convolution models
    num_channels: int = 3


def vision_transformer(sizes: ImageSizes) -> dict[str, Any]:
    """Config kwargs of a ViT or DeiT."""
    if sizes.hidden_size % sizes.num_heads:
        raise ValueError(f"num_attention_heads {sizes.num_heads} must divide hidden_size {sizes.hidden_size}")
    return dict(
        image_size=sizes.image_size, patch_size=sizes.patch_size, hidden_size=sizes.hidden_size,
        num_hidden_layers=sizes.num_layers, num_attention_heads=sizes.num_heads, num_channels=sizes.num_channels,
        intermediate_size=sizes.intermediate_size or 4 * sizes.hidden_size,
    )  # fmt: skip


def attention_lm(sizes: LMSizes, kv_heads: bool = False, mlp: str | None = None) -> dict[str, Any]:
    """Config kwargs of an attention decoder (transformers' standard names; ``attribute_map`` renames them).

    ``kv_heads``: the family takes ``num_key_value_heads`` (grouped-query attention). ``mlp``: ``"gated"`` (Llama's
    gate/up/down) gets the usual width 8d/3 rounded up to a multiple of 64, ``"plain"`` 4d, ``None`` the config's own
    rule (GPT-2's ``n_inner``); the configs' fixed defaults (Llama's 11008) belong to far wider models."""
    if sizes.hidden_size % sizes.head_dim:
        raise ValueError(f"head_dim {sizes.head_dim} must divide hidden_size {sizes.hidden_size}")
    heads, last = sizes.hidden_size // sizes.head_dim, sizes.vocab_size - 1
    config = dict(
        hidden_size=sizes.hidden_size, num_hidden_layers=sizes.num_layers, num_attention_heads=heads,
        max_position_embeddings=sizes.max_positions, vocab_size=sizes.vocab_size, bos_token_id=last, eos_token_id=last,
    )  # fmt: skip
    if mlp == "gated":
        config["intermediate_size"] = -(-8 * sizes.hidden_size // 3 // 64) * 64
    elif mlp == "plain":
        config["intermediate_size"] = 4 * sizes.hidden_size
    if sizes.num_kv_heads is not None:
        if not kv_heads:
            raise ValueError("this model type has no grouped-query attention: leave num_kv_heads unset")
        if heads % sizes.num_kv_heads:
            raise ValueError(f"num_kv_heads {sizes.num_kv_heads} must divide the {heads} attention heads")
        config["num_key_value_heads"] = sizes.num_kv_heads
    return config


def encoder_lm(sizes: LMSizes, position_offset: int = 0) -> dict[str, Any]:
    """Config kwargs of a BERT-style encoder; ``position_offset``: table rows before the first position (RoBERTa
    numbers positions from ``padding_idx + 1``)."""
    if sizes.hidden_size % sizes.head_dim:
        raise ValueError(f"head_dim {sizes.head_dim} must divide hidden_size {sizes.hidden_size}")
    return dict(
        hidden_size=sizes.hidden_size, num_hidden_layers=sizes.num_layers, num_attention_heads=sizes.hidden_size // sizes.head_dim,
        intermediate_size=4 * sizes.hidden_size, max_position_embeddings=sizes.max_positions + position_offset,
        vocab_size=sizes.vocab_size,
    )  # fmt: skip


@dataclass(frozen=True, eq=False)
class Family:
    """A model type mimetic init is tested on.

    Args:
        model_type: transformers' ``model_type`` (``config.model_type``).
        preset: the preset its recipe starts from (:data:`hf_mimetic.config.PRESETS`).
        auto_class: the ``transformers`` auto class of the model users train, e.g. ``"AutoModelForCausalLM"``.
        tiny: config kwargs of a model that builds in well under a second (tests).
        showcase: config kwargs of a typical small model (``hf-mimetic structure``); default: ``tiny``.
        lm_config: for language models (causal or masked, by ``auto_class``), config kwargs from :class:`LMSizes`
            (``scripts/train_synthetic.py``, ``scripts/train_language_model.py``).
        image_config: for image classifiers, config kwargs from :class:`ImageSizes`
            (``scripts/train_image_classification.py``).
    """

    model_type: str
    preset: str
    auto_class: str
    tiny: dict[str, Any]
    showcase: dict[str, Any] = field(default_factory=dict)
    lm_config: Callable[[LMSizes], dict[str, Any]] | None = None
    image_config: Callable[[ImageSizes], dict[str, Any]] | None = None

    def config(self, size: str = "tiny", **overrides: Any) -> "PretrainedConfig":
        """A config of this type: ``size`` "tiny" or "showcase", with ``overrides``."""
        from transformers import AutoConfig

        base = self.showcase if size == "showcase" and self.showcase else self.tiny
        return AutoConfig.for_model(self.model_type, **{**base, **overrides})

    def auto(self) -> type:
        import transformers

        return getattr(transformers, self.auto_class)

    def kinds(self) -> tuple[str, ...]:
        """The kinds of layer its models contain (found in a tiny model built on the meta device)."""
        if self.model_type not in _KINDS:
            import torch

            from .plan import find_targets

            with torch.device("meta"):
                model = self.auto().from_config(self.config())
            _KINDS[self.model_type] = tuple(dict.fromkeys(t.layout.kind for t in find_targets(model)[0]))
        return _KINDS[self.model_type]


LAYOUTS: list["Layout"] = []
FAMILIES: dict[str, Family] = {}
_KINDS: dict[str, tuple[str, ...]] = {}
#: Module class → the layouts that may recognise it (by class name, or by structure): layout_of runs per module.
_CANDIDATES: dict[type, list["Layout"]] = {}
_Item = TypeVar("_Item")


def register(item: _Item) -> _Item:
    """Add a :class:`~hf_mimetic.layouts.base.Layout` or a :class:`Family` to the registry; returns it."""
    if isinstance(item, Family):
        FAMILIES[item.model_type] = item
    else:
        LAYOUTS.append(item)
        _CANDIDATES.clear()
    return item


def _load() -> None:
    importlib.import_module("hf_mimetic.layouts")  # registers every layout and family


def layout_of(module: nn.Module) -> "Layout | None":
    """The layout that recognises ``module``, if any."""
    kind = type(module)
    if kind not in _CANDIDATES:  # registering a layout clears the cache
        _load()
        _CANDIDATES[kind] = [l for l in LAYOUTS if kind.__name__ in l.module_classes or l.structural]  # noqa: E741
    return next((layout for layout in _CANDIDATES[kind] if layout.recognises(module)), None)


def family(model_type: str) -> Family:
    """The registered family of ``model_type`` (``ValueError`` naming the supported ones)."""
    _load()
    if model_type not in FAMILIES:
        raise ValueError(f"mimetic init is not registered for model type {model_type!r}; supported: {sorted(FAMILIES)}")
    return FAMILIES[model_type]


def model_types() -> list[str]:
    """Every registered model type, sorted."""
    _load()
    return sorted(FAMILIES)


def lm_types(*auto_classes: str) -> list[str]:
    """The registered model types that the scripts can train as language models from :class:`LMSizes`, with one of
    ``auto_classes`` (``"AutoModelForCausalLM"``, ``"AutoModelForMaskedLM"``)."""
    _load()
    return sorted(t for t, entry in FAMILIES.items() if entry.lm_config is not None and entry.auto_class in auto_classes)


def image_types() -> list[str]:
    """The registered model types that ``scripts/train_image_classification.py`` can build from :class:`ImageSizes`."""
    _load()
    return sorted(t for t, entry in FAMILIES.items() if entry.image_config is not None)


def recognised_modules() -> list[str]:
    """Every module class a layout recognises (for error messages)."""
    _load()
    return sorted({name for layout in LAYOUTS for name in layout.module_classes})


def build(model_type: str, size: str = "tiny", seed: int | None = 0, **kwargs: Any) -> "PreTrainedModel":
    """A model of a registered type, as users train it (its auto class), built with ``from_config(config, **kwargs)``
    after ``torch.manual_seed(seed)``."""
    import torch

    entry = family(model_type)
    if seed is not None:
        torch.manual_seed(seed)
    config = kwargs.pop("config", None) or entry.config(size)
    return entry.auto().from_config(config, **kwargs)


def saved_class(config: "PretrainedConfig") -> type:
    """The class a folder was saved from (``config.architectures``), so that its head loads too and transformers
    reports nothing missing or unexpected; else the registered family's auto class; else ``AutoModel``."""
    import transformers

    for name in getattr(config, "architectures", None) or []:
        if hasattr(transformers, name):
            return getattr(transformers, name)
    return family(config.model_type).auto() if config.model_type in model_types() else transformers.AutoModel


def load_saved(path: str) -> "PreTrainedModel":
    """A saved model folder (or Trainer checkpoint), loaded as the class it was saved from.

    Example:
        >>> model = load_saved("runs/convmixer")  # a ConvMixerForImageClassification, head included
    """
    from transformers import AutoConfig

    return saved_class(AutoConfig.from_pretrained(path)).from_pretrained(path)
