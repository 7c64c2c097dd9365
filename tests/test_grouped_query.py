"""Grouped-query and multi-query attention: the construction, read back from Llama's and Gemma's module weights,
against values computed here independently (numpy SVDs of freshly drawn targets) for the same shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import build

from hf_mimetic.layouts import QKVOLinear

QKVO_LINEAR = QKVOLinear(("LlamaAttention",))

ALPHA, BETA = 0.7, 0.7  # the vision values, so that the noise term matters (the decoder preset has α1 = 0)


def predicted_qk_diagonal(d: int, k: int, group: int, samples: int = 20, seed: int = 0) -> float:
    """Mean diagonal of T_h P_V, V the top-k right singular vectors of the stacked targets of a group (the
    least-squares optimum of the shared key basis), by Monte Carlo in numpy."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(samples):
        targets = [ALPHA * rng.normal(0, 1 / math.sqrt(d), (d, d)) + BETA * np.eye(d) for _ in range(group)]
        _, _, vh = np.linalg.svd(np.vstack(targets))
        projector = vh[:k].T @ vh[:k]
        values += [np.trace(t @ projector) / d for t in targets]
    return float(np.mean(values))


def predicted_vo_diagonal(d: int, rank: int, alpha: float, beta: float, samples: int = 20, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(samples):
        u, s, vh = np.linalg.svd(alpha * rng.normal(0, 1 / math.sqrt(d), (d, d)) - beta * np.eye(d))
        values.append(np.trace((u[:, :rank] * s[:rank]) @ vh[:rank]) / d)
    return float(np.mean(values))


@pytest.mark.parametrize("family, heads, kv_heads, head_dim", [("llama", 4, 2, 16), ("gemma", 4, 1, 32)])
def test_grouped_products_match_the_least_squares_construction(family, heads, kv_heads, head_dim):
    options = {"qk_alpha": ALPHA, "qk_beta": BETA, "vo_alpha": 0.4, "vo_beta": 0.4}
    model = build(family, mimetic_init=True, mimetic_config=options)
    d, group = 64, heads // kv_heads
    qk_expected = predicted_qk_diagonal(d, head_dim, group)
    vo_expected = predicted_vo_diagonal(d, min(d, kv_heads * head_dim), 0.4, 0.4)
    for layer in model.model.layers:
        attention = layer.self_attn
        geometry = QKVO_LINEAR.geometry(attention)
        assert (geometry.num_heads, geometry.num_kv_heads, geometry.head_dim) == (heads, kv_heads, head_dim)
        products = QKVO_LINEAR.read(attention)
        per_head = products["qk"].diagonal(dim1=-2, dim2=-1).mean(-1)
        assert per_head.mean().item() == pytest.approx(qk_expected, rel=0.12)
        # Heads of a group share W_K: their products have the same row space of dimension k (W_Q^h W_Kᵀ = T_h P_V).
        for g in range(kv_heads):
            shared = torch.cat(list(products["qk"][g * group : (g + 1) * group]), dim=0)
            assert torch.linalg.matrix_rank(shared, atol=1e-4).item() == head_dim
        vo = products["vo"]
        assert torch.linalg.matrix_rank(vo, atol=1e-4).item() == min(d, kv_heads * head_dim)
        assert vo.diagonal().mean().item() == pytest.approx(vo_expected, abs=0.04)
        # Heads that share keys and values do not start as clones: their output projections differ.
        w_o = attention.o_proj.weight.detach().T.reshape(heads, head_dim, d)
        assert not torch.allclose(w_o[0], w_o[1])


def test_the_noise_term_of_the_diagonal_shrinks_as_one_over_root_group_size():
    """Derivation (docs/grouped-query-attention.md): the α-part of the diagonal comes from tr(Z_h P_V), and with r heads
    per key basis the basis follows their average, so it shrinks by about 1/√r; β·k/d is the floor. Llama's heads
    (r = 2), read from the model, against the numpy Monte Carlo of multi-head attention (r = 1)."""
    d, k = 64, 16
    floor = BETA * k / d
    excess = predicted_qk_diagonal(d, k, 1, samples=10) - floor
    model = build("llama", mimetic_init=True, mimetic_config={"qk_alpha": ALPHA, "qk_beta": BETA})
    diagonals = [QKVO_LINEAR.read(layer.self_attn)["qk"].diagonal(dim1=-2, dim2=-1).mean().item() for layer in model.model.layers]
    ratio = (sum(diagonals) / len(diagonals) - floor) / excess
    assert ratio == pytest.approx(1 / math.sqrt(2), rel=0.1)  # 12 heads: ±5 % between seeds


def test_rotary_models_refuse_position_options_with_the_reason():
    with pytest.raises(ValueError, match=r"'position_scale' does not apply to llama models .*no learned position table"):
        build("llama", mimetic_init=True, mimetic_config={"position_scale": 2.0})
