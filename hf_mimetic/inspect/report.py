"""``hf-mimetic inspect``: pictures and numbers of the structure in a model's weights, for one model or several side
by side (default | mimetic | trained).

What is drawn, per kind of layer a layout recognises (:mod:`hf_mimetic.catalog`):

* attention: ``W_Q^h W_K^hᵀ`` per head and ``W_V W_O`` per layer (thesis Figs. 3.17–3.18), optionally the centre
  crop of each matrix;
* depthwise convolutions: the filters' empirical covariance (rearranged ``k² × k²``, thesis Fig. 3.1) and sample
  filters (Fig. 3.8);
* SSM mixers: ``Ā`` and ``Δ`` at zero input, and the attention matrix ``M`` of the scan on a fixed random input
  (eq. 3.34, Fig. 3.24).

Per layer, the numbers that say how mimetic a model is: for attention, the mean diagonal, the off-diagonal std and
their ratio for QK and VO; for filters, the centre variance and the correlation of neighbouring pixels; for SSMs,
mean Ā, Δ and diag(W_Cᵀ W_B). They go to ``summary.json`` and ``summary.md``.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..layouts.attention import AttentionLayout
from ..layouts.depthwise_conv import DepthwiseConv
from ..layouts.ssm import MixerLayout
from ..maths.attention import diagonal_statistics
from ..plan import Target, find_targets
from .ssm_maps import attention_maps


@dataclass
class Source:
    """A model to inspect and the name its panels get."""

    name: str
    model: nn.Module
    targets: list[Target] = field(init=False)

    def __post_init__(self) -> None:
        self.targets = find_targets(self.model)[0]
        if not self.targets:
            raise ValueError(f"{self.name}: {type(self.model).__name__} has no layer hf_mimetic recognises")

    def of(self, layout_type: type) -> list[Target]:
        return [t for t in self.targets if isinstance(t.layout, layout_type)]


def attention_statistics(products: dict[str, torch.Tensor]) -> dict[str, float]:
    """Mean diagonal, off-diagonal std and their ratio, for QK (over heads) and VO."""
    values: dict[str, float] = {}
    for name in ("qk", "vo"):
        diagonal, off = diagonal_statistics(products[name])
        values.update({f"{name}_diag": diagonal, f"{name}_offdiag_std": off,
                       f"{name}_ratio": diagonal / off if off > 0 else math.inf})  # fmt: skip
    return values


def layer_statistics(source: Source) -> list[dict[str, Any]]:
    """One row per recognised module in a layer: its layer, kind, class and statistics."""
    rows = []
    for target in source.targets:
        if target.layer is None:
            continue
        if isinstance(target.layout, AttentionLayout):
            values = attention_statistics(target.layout.read(target.module))
        elif target.layout.columns:
            values = target.layout.statistics(target.module)
        else:
            continue
        rows.append({"layer": target.layer, "kind": target.layout.kind, "module": type(target.module).__name__, **values})
    return rows


def summary(sources: list[Source]) -> dict[str, Any]:
    """What ``summary.json`` holds: per source its class, recipe and per-layer statistics."""
    return {
        "sources": [
            {
                "name": s.name, "class": type(s.model).__name__,
                "model_type": getattr(s.model.config, "model_type", None),
                "mimetic_config": getattr(s.model.config, "mimetic_config", None) if getattr(s.model.config, "mimetic_init", False) else None,
                "layers": layer_statistics(s),
            }
            for s in sources
        ]
    }  # fmt: skip


def summary_markdown(data: dict[str, Any]) -> str:
    """One table per source: a row per layer and kind, a column per statistic."""
    parts = []
    for source in data["sources"]:
        rows = source["layers"]
        parts.append(f"## {source['name']} ({source['class']})\n")
        for kind in dict.fromkeys(r["kind"] for r in rows):
            kind_rows = [r for r in rows if r["kind"] == kind]
            keys = [k for k in kind_rows[0] if k not in ("layer", "kind", "module")]
            parts.append("| layer | " + " | ".join(keys) + " |")
            parts.append("|---:|" + "---:|" * len(keys))
            parts += [f"| {r['layer']} | " + " | ".join(f"{r[k]:+.4f}" for k in keys) + " |" for r in kind_rows]
            parts.append("")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------------------- figures
def centre(matrix: torch.Tensor, crop: int | None) -> torch.Tensor:
    """The central ``crop × crop`` block of a square matrix (all of it if ``crop`` is None or larger)."""
    if crop is None or crop >= matrix.shape[-1]:
        return matrix
    start = (matrix.shape[-1] - crop) // 2
    return matrix[..., start : start + crop, start : start + crop]


def _grid(rows: int, columns: int, size: float = 2.6):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(rows, columns, figsize=(size * columns + 0.6, size * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return plt, figure, axes


def _heatmap(ax, matrix: torch.Tensor, title: str) -> None:
    # Colour limits at the 99.5th percentile of |values|, so that a few large entries (a trained SSM's attention
    # matrix has some 100× the rest) do not wash out the structure; the diagonal of a product still saturates.
    limit = torch.quantile(matrix.abs().float().flatten(), 0.995).item() or matrix.abs().max().item() or 1.0
    image = ax.imshow(matrix.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(title, fontsize=7)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=5)


def _save(plt, figure, path: Path, title: str) -> Path:
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _panels(sources: list[Source], layout_type: type, layers: list[int] | None) -> tuple[list[Source], list[dict[int, Target]], list[int]]:
    """The sources that have layers of ``layout_type``, their targets by layer, and the layers to draw (the union,
    restricted to ``layers``); a source without one of them gets a blank panel."""
    relevant = [s for s in sources if s.of(layout_type)]
    per_source = [{t.layer: t for t in s.of(layout_type)} for s in relevant]
    shown = sorted({i for p in per_source for i in p if layers is None or i in layers})
    return relevant, per_source, shown


def attention_figures(sources: list[Source], out: Path, crop: int | None, layers: list[int] | None,
                      progress: Callable[[str], None]) -> list[Path]:  # fmt: skip
    """``attention_vo.png`` (a row per layer), ``attention_qk_layer<i>.png`` (a row per head), a column per source."""
    sources, per_source, shown = _panels(sources, AttentionLayout, layers)
    if not shown:
        return []
    plt, figure, axes = _grid(len(shown), len(sources))
    paths = []
    products = {}
    for row, layer in enumerate(shown):
        progress(f"attention layer {layer}")
        for column, (source, targets) in enumerate(zip(sources, per_source)):
            if layer in targets:
                products[row, column] = targets[layer].layout.read(targets[layer].module)
                _heatmap(axes[row][column], centre(products[row, column]["vo"], crop), f"{source.name}: layer {layer} W_V W_O")
    paths.append(_save(plt, figure, out / "attention_vo.png", "W_V W_O per layer (centre crop)" if crop else "W_V W_O per layer"))
    for row, layer in enumerate(shown):
        heads = max(products[row, c]["qk"].shape[0] for c in range(len(sources)) if (row, c) in products)
        plt, figure, axes = _grid(heads, len(sources))
        for column, source in enumerate(sources):
            qk = products[row, column]["qk"] if (row, column) in products else torch.empty(0)
            for head in range(qk.shape[0]):
                _heatmap(axes[head][column], centre(qk[head], crop), f"{source.name}: head {head}")
        paths.append(_save(plt, figure, out / f"attention_qk_layer{layer}.png", f"W_Q^h W_K^hᵀ, layer {layer}"))
    return paths


def filter_mosaic(filters: torch.Tensor, rows: int = 4, columns: int = 4) -> torch.Tensor:
    """The first ``rows × columns`` of ``filters`` (channels × k × k) as one image, each scaled to its max |value| and
    followed by a blank line and column (as the thesis draws them, Fig. 3.8); missing channels stay blank."""
    k = filters.shape[-1]
    tiles = torch.zeros(rows * columns, k + 1, k + 1)
    for i, f in enumerate(filters[: rows * columns].float()):
        tiles[i, :k, :k] = f / (f.abs().max() or 1.0)
    return tiles.reshape(rows, columns, k + 1, k + 1).permute(0, 2, 1, 3).reshape(rows * (k + 1), columns * (k + 1))


def conv_figures(sources: list[Source], out: Path, layers: list[int] | None, progress: Callable[[str], None]) -> list[Path]:
    """``conv_covariance.png`` (the filters' empirical covariance, rearranged) and ``conv_filters.png`` (16 filters),
    a row per layer, a column per source."""
    sources, per_source, shown = _panels(sources, DepthwiseConv, layers)
    if not shown:
        return []
    plt, cov_figure, cov_axes = _grid(len(shown), len(sources))
    plt, filter_figure, filter_axes = _grid(len(shown), len(sources))
    for row, layer in enumerate(shown):
        progress(f"filters of layer {layer}")
        for column, (source, targets) in enumerate(zip(sources, per_source)):
            if layer not in targets:
                continue
            values = targets[layer].layout.read(targets[layer].module)
            k = values["filters"].shape[-1]
            _heatmap(cov_axes[row][column], values["covariance"].reshape(k * k, k * k).float(), f"{source.name}: layer {layer}")
            _heatmap(filter_axes[row][column], filter_mosaic(values["filters"]), f"{source.name}: layer {layer}")
    return [
        _save(plt, cov_figure, out / "conv_covariance.png", "Depthwise filters: empirical covariance (k² × k²)"),
        _save(plt, filter_figure, out / "conv_filters.png", "Depthwise filters: the first 16, each scaled to its max"),
    ]


def ssm_figures(sources: list[Source], out: Path, layers: list[int] | None, length: int,
                progress: Callable[[str], None]) -> list[Path]:  # fmt: skip
    """``ssm.png``: per layer, Ā and Δ at zero input (histograms) and the scan's attention matrix on a fixed random
    input (mean over channels or heads), a column pair per source."""
    sources, per_source, shown = _panels(sources, MixerLayout, layers)
    if not shown:
        return []
    plt, figure, axes = _grid(len(shown), 2 * len(sources))
    for column, source in enumerate(sources):
        progress(f"SSM attention maps of {source.name}")
        vocab = source.model.config.vocab_size
        generator = torch.Generator().manual_seed(0)
        maps = attention_maps(source.model, torch.randint(0, vocab, (1, length), generator=generator))
        order = {t.layer: i for i, t in enumerate(source.of(MixerLayout))}
        for row, layer in enumerate(shown):
            if layer not in per_source[column]:
                continue
            target = per_source[column][layer]
            values = target.layout.read(target.module)
            ax = axes[row][2 * column]
            a_bar = values["a_bar"].mean(dim=-1) if values["a_bar"].dim() > 1 else values["a_bar"]  # per channel/head
            ax.plot(a_bar.sort().values.numpy(), label="Ā (mean over the state)")
            ax.plot(values["delta"].flatten().sort().values.numpy(), linestyle="--", label="Δ")
            ax.set_ylim(0, 1.1 * max(1.0, values["delta"].max().item()))
            ax.set_yticks([0, 0.5, 1])
            ax.tick_params(labelsize=5)
            ax.set_title(f"{source.name}: layer {layer} Ā, Δ (sorted)", fontsize=7)
            ax.legend(fontsize=5)
            _heatmap(axes[row][2 * column + 1], maps[order[layer], 0], f"{source.name}: layer {layer} M")
    return [_save(plt, figure, out / "ssm.png", "SSM: Ā and Δ at zero input; the scan's attention matrix M")]


def inspect_models(sources: list[Source], out: Path, crop: int | None = None, layers: list[int] | None = None,
                   ssm_length: int = 32, progress: Callable[[str], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Write the figures, ``summary.json`` and ``summary.md`` for ``sources`` into ``out``; returns the summary."""
    progress = progress or (lambda message: print(message, file=sys.stderr, flush=True))
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        figures = [
            *attention_figures(sources, out, crop, layers, progress),
            *conv_figures(sources, out, layers, progress),
            *ssm_figures(sources, out, layers, ssm_length, progress),
        ]
        data = {**summary(sources), "figures": [path.name for path in figures]}
    (out / "summary.json").write_text(json.dumps(data, indent=2))
    (out / "summary.md").write_text(summary_markdown(data))
    return data
