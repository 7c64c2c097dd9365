"""Read back the structure an init created: per-layer statistics of the attention products and SSM parameters.

Used by ``python -m hf_mimetic`` and handy in notebooks::

    >>> from hf_mimetic.structure import structure, format_comparison
    >>> print(format_comparison(structure(default_model), structure(mimetic_model)))
"""

from __future__ import annotations

from torch import nn

from .adapters import adapter_for
from .adapters.attention import GPT2Adapter, ViTAdapter

ATTENTION_COLUMNS = {
    "qk_diag": "QK diag",
    "qk_offdiag_std": "QK off-diag std",
    "vo_diag": "VO diag",
    "vo_offdiag_std": "VO off-diag std",
}
SSM_COLUMNS = {"mean_a_bar": "mean Ā", "mean_delta": "mean Δ", "bc_diagonal": "diag(W_Cᵀ W_B)"}


def _diag_stats(products):
    """Mean diagonal and off-diagonal std of a batch of square matrices (..., d, d)."""
    diag = products.diagonal(dim1=-2, dim2=-1)
    d = products.shape[-1]
    off_sq = products.pow(2).sum((-2, -1)) - diag.pow(2).sum(-1)
    return diag.mean().item(), (off_sq / (d * d - d)).sqrt().mean().item()


def structure(model: nn.Module) -> list[dict[str, float]]:
    """One dict per layer. Attention models: mean diagonal of ``W_Q^h W_K^hᵀ`` (over heads) and of ``W_V W_O``, and
    the std of their off-diagonal entries. Mamba: mean ``Ā`` and ``Δ`` at zero input and mean ``diag(W_Cᵀ W_B)``.
    """
    adapter = adapter_for(type(model))
    if isinstance(adapter, (ViTAdapter, GPT2Adapter)):
        rows = []
        for qk, vo in adapter.layer_products(model):
            qk_diag, qk_off = _diag_stats(qk)
            vo_diag, vo_off = _diag_stats(vo)
            rows.append({"qk_diag": qk_diag, "qk_offdiag_std": qk_off, "vo_diag": vo_diag, "vo_offdiag_std": vo_off})
        return rows
    return [vars(stats) for stats in adapter.layer_stats(model)]


def format_comparison(default: list[dict[str, float]], mimetic: list[dict[str, float]]) -> str:
    """A markdown table with one row per layer and ``default → mimetic`` in each cell."""
    columns = ATTENTION_COLUMNS if "qk_diag" in default[0] else SSM_COLUMNS
    lines = [
        "| layer | " + " | ".join(columns.values()) + " |",
        "|---:|" + "---:|" * len(columns),
    ]
    for index, (before, after) in enumerate(zip(default, mimetic)):
        cells = [f"{before[key]:+.3f} → {after[key]:+.3f}" for key in columns]
        lines.append(f"| {index} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
