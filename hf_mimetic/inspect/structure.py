"""Read back the structure an init created: per-layer statistics of the attention products and SSM parameters.

Used by ``hf-mimetic structure`` and handy in notebooks::

    >>> from hf_mimetic.inspect import structure, format_comparison
    >>> print(format_comparison(structure(default_model), structure(mimetic_model)))
"""

from __future__ import annotations

from torch import nn

from ..plan import find_targets


def structure(model: nn.Module) -> list[dict[str, float]]:
    """One dict per layer, merging the statistics of every recognised module in it: for attention, the mean
    diagonal of ``W_Q^h W_K^hᵀ`` (over heads) and of ``W_V W_O`` and the std of their off-diagonal entries; for
    Mamba mixers, mean ``Ā`` and ``Δ`` at zero input and mean ``diag(W_Cᵀ W_B)``. Recomputed from the weights."""
    rows: dict[int, dict[str, float]] = {}
    for target in find_targets(model)[0]:
        if target.layer is not None and target.layout.columns:
            rows.setdefault(target.layer, {}).update(target.layout.statistics(target.module))
    return [rows[index] for index in sorted(rows)]


def columns(model: nn.Module) -> dict[str, str]:
    """The statistics :func:`structure` reports for ``model``: key → column title, in layout order."""
    found: dict[str, str] = {}
    for target in find_targets(model)[0]:
        found.update(target.layout.columns)
    return found


def format_comparison(default: list[dict[str, float]], mimetic: list[dict[str, float]], titles: dict[str, str]) -> str:
    """A markdown table with one row per layer and ``default → mimetic`` in each cell (blank where a layer has no
    such statistic, e.g. the attention columns of a hybrid model's SSM layers)."""
    lines = ["| layer | " + " | ".join(titles.values()) + " |", "|---:|" + "---:|" * len(titles)]
    for index, (before, after) in enumerate(zip(default, mimetic)):
        cells = [f"{before[key]:+.3f} → {after[key]:+.3f}" if key in after else "" for key in titles]
        lines.append(f"| {index} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
