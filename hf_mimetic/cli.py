"""``hf-mimetic`` (also ``python -m hf_mimetic``): the copy demo, the structure the init creates, and pictures of it.

    hf-mimetic                          # = hf-mimetic demo: copy, Mamba 2, default vs mimetic (about 5 min on 2 cores)
    hf-mimetic demo --steps 200 --seed 0 --out hf_mimetic_demo.png   # the same, with its options
    hf-mimetic structure                # per-layer structure of each registered model type, default → mimetic
    hf-mimetic structure --model_type vit
    hf-mimetic inspect runs/vit/checkpoint-400 --model_type vit --init both --out figures/vit
    hf-mimetic inspect init:runs/vit runs/vit --out figures/vit-trained   # a trained model against its init
    hf-mimetic coverage                 # the catalogue as a markdown table (the README's coverage table)

``inspect`` takes model folders, Trainer checkpoint folders, Hub ids, and ``--model_type T`` to build one (``--init``
default, mimetic or both), and draws them side by side (see :mod:`hf_mimetic.inspect.report`). The demo is
:mod:`hf_mimetic.demo`.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .catalog import KINDS, family, model_types
from .demo import COPY_STEPS, PICTURE, copy_experiment
from .inspect import columns, format_comparison, structure
from .layouts.attention import AttentionLayout
from .loading import build, load_saved
from .maths.attention import expected_qk_diagonal
from .plan import find_targets

if TYPE_CHECKING:
    from .inspect.report import Source

def describe(model_type: str, seed: int = 0) -> str:
    """Markdown section for one model type (its example config): the recipe, expected values and the default →
    mimetic table."""
    default = build(model_type, seed).base_model
    mimetic = build(model_type, seed, mimetic_init=True).base_model
    recipe = mimetic.config.mimetic_config
    lines = [f"## {model_type}: {type(mimetic).__name__}, preset {recipe['preset']!r}"]
    attention = [t for t in find_targets(mimetic)[0] if isinstance(t.layout, AttentionLayout)]
    if attention:
        g = attention[0].layout.geometry(attention[0].module)
        expected = expected_qk_diagonal(g.hidden_size, g.head_dim, recipe["qk_alpha"], recipe["qk_beta"])
        lines.append(
            f"d={g.hidden_size}, heads={g.num_heads}. Targets: W_Q^h W_K^hᵀ ≈ {recipe['qk_alpha']}·Z + {recipe['qk_beta']}·I "
            f"(rank {g.head_dim}: expected diagonal {expected:.3f}); W_V W_O = {recipe['vo_alpha']}·Z "
            f"{'-' if recipe['vo_sign'] < 0 else '+'} {recipe['vo_beta']}·I."
        )
    if "ssm_a" in recipe:
        lines.append(
            f"A_log shifted by -{recipe['ssm_a_shift']} (Ā ≈ 1), Δ bias = softplus⁻¹(1) (Δ = 1), W_C ← ½(W_C′ + W_B), "
            f"identity conv: {recipe['ssm_identity_conv']}. Δ and Ā at zero input."
        )
    table = format_comparison(structure(default), structure(mimetic), columns(mimetic))
    return "\n".join(lines) + f"\n\n{table}\n"


def coverage_table() -> str:
    """One row per catalogued model type: the class users train, the layers recognised (by kind: module class and
    layout), and the preset, found by building each type's example config on the meta device; then the timm models
    recognised."""
    lines = ["| model type | class | layers recognised | preset |", "|---|---|---|---|"]
    for model_type in model_types():
        entry = family(model_type)
        with torch.device("meta"):
            model = entry.auto().from_config(entry.config(model_type))
        found: dict[str, str] = {}
        for target in find_targets(model)[0]:
            found.setdefault(target.layout.kind, f"{type(target.module).__name__} ({target.layout.description})")
        layers = "; ".join(f"{kind}: {found[kind]}" for kind in KINDS if kind in found)
        lines.append(f"| `{model_type}` | {type(model).__name__} | {layers} | `{entry.preset}` |")
    return "\n".join(lines) + "\n\n" + timm_coverage_table()


def timm_coverage_table() -> str:
    """One row per timm model class hf_mimetic recognises (:data:`~hf_mimetic.catalog.TIMM_MODELS`), with the layers
    found in one model of it, built on the meta device."""
    from .catalog import TIMM_MODELS

    try:
        import timm
    except ImportError:
        return "timm models: timm is not installed (pip install 'hf_mimetic[timm]')."
    from .integrations.timm import timm_plan

    lines = ["| timm model class | e.g. | layers recognised | preset |", "|---|---|---|---|"]
    for name, entry in TIMM_MODELS.items():
        with torch.device("meta"):
            model = timm.create_model(entry.example)
        found: dict[str, str] = {}
        for target in timm_plan(model, {}).targets:
            found.setdefault(target.layout.kind, f"{type(target.module).__name__} ({target.layout.description})")
        layers = "; ".join(f"{kind}: {found[kind]}" for kind in KINDS if kind in found)
        lines.append(f"| {name} | `{entry.example}` | {layers} | `{entry.preset}` |")
    return "\n".join(lines)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def load_source(text: str, seed: int = 0) -> "Source":
    """A model from a local folder (a saved model or a Trainer checkpoint) or, if ``text`` is no path, a Hub id;
    ``init:FOLDER`` is a fresh model built (after ``torch.manual_seed(seed)``) from that folder's config, with its
    recipe: what the trained model started from, if ``seed`` is its training seed."""
    from transformers import AutoConfig, AutoModel

    from .inspect.report import Source

    if text.startswith("init:"):
        folder = Path(text[len("init:") :]).expanduser()
        if not (folder / "config.json").is_file():
            raise ValueError(f"{text}: no config.json in {folder}")
        config = AutoConfig.from_pretrained(folder)
        # The class users train of a registered type (the draws depend on it: a base model with a pooler draws more).
        auto = family(config.model_type).auto() if config.model_type in model_types() else AutoModel
        torch.manual_seed(seed)
        return Source(f"init of {folder.name}", auto.from_config(config).base_model)
    path = Path(text).expanduser()
    if path.exists() or text.startswith((".", "/", "~")) or os.sep in text and text.count("/") != 1:
        if not path.is_dir():
            raise ValueError(f"{text}: no such folder")
        if not (path / "config.json").is_file():
            raise ValueError(f"{text}: no config.json in it (expected a saved model or a Trainer checkpoint folder)")
        try:
            model = load_saved(str(path)).base_model
        except (ValueError, KeyError) as error:
            model_type = json.loads((path / "config.json").read_text()).get("model_type")
            first = str(error).strip().splitlines()[0]
            raise ValueError(f"{text}: cannot load model type {model_type!r} ({first})") from None
        return Source(path.name if path.name != "." else text, model)
    try:  # the Hub cache first: nothing is downloaded for a model already there
        return Source(text, AutoModel.from_pretrained(text, local_files_only=True))
    except OSError:
        pass
    try:
        socket.create_connection(("huggingface.co", 443), timeout=5).close()
    except OSError:
        raise ValueError(f"{text}: not a local folder, and the Hugging Face Hub is unreachable (offline?)") from None
    try:
        model = AutoModel.from_pretrained(text)
    except OSError as error:
        first = str(error).strip().splitlines()[0]
        raise ValueError(f"{text}: not a local folder, and it could not be loaded from the Hugging Face Hub ({first})") from None
    return Source(text, model)


def inspect_command(args: argparse.Namespace) -> None:
    from .inspect.report import Source, inspect_models

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ValueError("the figures need matplotlib: pip install 'hf_mimetic[inspect]'") from None
    sources = [load_source(text, args.seed) for text in args.sources]
    inits = {"default": [False], "mimetic": [True], "both": [False, True]}[args.init]
    for model_type in args.model_type or []:
        for mimetic in inits:
            kwargs = {"mimetic_init": True} if mimetic else {}
            model = build(model_type, args.seed, **kwargs).base_model
            sources.append(Source(f"{model_type} ({'mimetic' if mimetic else 'default'})", model))
    if not sources:
        raise ValueError("nothing to inspect: give a model folder, a checkpoint, a Hub id or --model_type")
    data = inspect_models(sources, Path(args.out), crop=args.crop, layers=args.layers)
    print(f"wrote {len(data['figures'])} figures, summary.json and summary.md to {args.out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hf-mimetic", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command")
    demo = commands.add_parser("demo", help="copy task, Mamba 2, default vs mimetic init (the default command)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--steps", type=positive_int, default=COPY_STEPS, help="training steps")
    demo.add_argument("--out", default=PICTURE, help="where to write the picture (PNG); default: %(default)s")
    shown = commands.add_parser("structure", help="the per-layer structure of the init, default → mimetic")
    shown.add_argument("--model_type", choices=model_types(), action="append", help="repeatable; default: every type")
    shown.add_argument("--seed", type=int, default=0)
    commands.add_parser("coverage", help="the registered model types and the layers recognised, as a markdown table")
    looked = commands.add_parser("inspect", help="figures and per-layer statistics of models' weights, side by side")
    looked.add_argument("sources", nargs="*", metavar="SOURCE",
                        help="a model folder, a Trainer checkpoint folder, a Hub id, or init:FOLDER (a fresh model from "
                             "that folder's config and recipe, seeded with --seed)")  # fmt: skip
    looked.add_argument("--model_type", choices=model_types(), action="append", help="also build one of this type (repeatable)")
    looked.add_argument("--init", choices=["default", "mimetic", "both"], default="both", help="for --model_type")
    looked.add_argument("--mimetic", dest="init", action="store_const", const="mimetic", help="= --init mimetic")
    looked.add_argument("--seed", type=int, default=0)
    looked.add_argument("--out", required=True, help="folder for the figures and summary.json / summary.md")
    looked.add_argument("--crop", type=positive_int, help="show the central N×N block of each product")
    looked.add_argument("--layers", type=int, nargs="+", help="draw only these layers (the summary has all)")
    args = parser.parse_args(argv)
    if args.command == "inspect":
        try:
            inspect_command(args)
        except (ValueError, OSError) as error:
            parser.exit(2, f"hf-mimetic inspect: error: {str(error).strip().splitlines()[0]}\n")
        return
    if args.command == "coverage":
        print(coverage_table())
    elif args.command == "structure":
        for model_type in args.model_type or model_types():
            print(describe(model_type, args.seed))
    else:
        print(copy_experiment(getattr(args, "seed", 0), getattr(args, "steps", COPY_STEPS), Path(getattr(args, "out", PICTURE))))


if __name__ == "__main__":
    main()
