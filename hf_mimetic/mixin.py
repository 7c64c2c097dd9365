"""Mimetic init for your own models: a ``PreTrainedModel`` declares its layers' layouts and its preset.

transformers initialises a model module by module through ``PreTrainedModel._initialize_weights``, which calls your
``_init_weights``; ``import hf_mimetic`` wraps it (:mod:`hf_mimetic.hook`), so that after your ``_init_weights`` has
run on a module, the layouts write the mimetic init into it if the config asks for it (``mimetic_init=True``). A
model class of your own only has to say which of its modules are what: that is this mixin's job.

The hook works at ``_initialize_weights`` rather than inside ``_init_weights`` on purpose: transformers never passes
a custom model's parameter-less containers (an attention module whose weights live in child ``nn.Linear`` layers) to
``_init_weights``, but it does pass them to ``_initialize_weights``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .config import PRESETS
from .layouts.base import Layout


class MimeticInitMixin:
    """Give a ``PreTrainedModel`` of your own mimetic init, from its config's flags.

    Put it first among the bases of your ``PreTrainedModel`` base class (so the bare model and every head model of
    your architecture carry it: transformers initialises each module through the innermost ``PreTrainedModel`` that
    holds it), and declare:

    * ``mimetic_layouts``: layouts of your own module classes (any layout of :mod:`hf_mimetic.layouts`, constructed
      with the names of your classes and of their weights); tried before the catalogue's, one per kind and module;
    * ``mimetic_preset``: the preset your recipe starts from (:data:`hf_mimetic.config.PRESETS`). A model whose
      layers are recognised only by structure must name it here (or in ``mimetic_config``): it is never guessed.

    Then ``MyModel(config)`` with ``config.mimetic_init = True``, ``MyModel.from_config(config, mimetic_init=True)``
    (or an auto class with ``trust_remote_code=True``), ``materialize`` after building without memory, and
    ``from_pretrained`` (which never re-initialises loaded weights) all work as for a catalogued model.

    Example:
        >>> from hf_mimetic import MimeticInitMixin
        >>> from hf_mimetic.layouts import FirstMLPLayer, FusedQKV
        >>> class MyPreTrainedModel(MimeticInitMixin, PreTrainedModel):
        ...     config_class = MyConfig
        ...     mimetic_preset = "vision"
        ...     mimetic_layouts = (
        ...         FusedQKV(("MyAttention",), qkv="qkv", out="proj", order="blocks", head_dim="head_dim"),
        ...         FirstMLPLayer({"MyMLP": "fc1"}),
        ...     )
        >>> model = MyModel(MyConfig(mimetic_init=True, mimetic_config={"mlp_mean": 0.02}))
        >>> model.config.mimetic_config["initialized"]
        {'attention': [0, 1, 2, 3], 'mlp': [0, 1, 2, 3]}
    """

    mimetic_layouts: ClassVar[tuple[Layout, ...]] = ()
    mimetic_preset: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        from transformers import PreTrainedModel

        if not issubclass(cls, PreTrainedModel):
            raise TypeError(
                f"{cls.__name__}: MimeticInitMixin goes with a transformers PreTrainedModel, first among the bases: "
                f"class {cls.__name__}(MimeticInitMixin, MyPreTrainedModel)"
            )
        layouts = cls.mimetic_layouts
        if not isinstance(layouts, (tuple, list)) or not all(isinstance(layout, Layout) for layout in layouts):
            raise TypeError(
                f"{cls.__name__}.mimetic_layouts must be a tuple of layouts (instances of hf_mimetic.layouts classes, "
                f"e.g. FusedQKV(('MyAttention',), 'qkv', 'proj', 'blocks', 'head_dim')); got {layouts!r}"
            )
        cls.mimetic_layouts = tuple(layouts)
        if cls.mimetic_preset is not None and cls.mimetic_preset not in PRESETS:
            raise ValueError(f"{cls.__name__}.mimetic_preset: unknown preset {cls.mimetic_preset!r}; valid: {tuple(PRESETS)}")
