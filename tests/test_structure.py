"""Structure of initialised models, per family, recomputed here from the raw module weights (not via the adapters).

A wrong transpose still gives a plausible matrix with the right spectrum, but not the negative VO diagonal or the
positive QK diagonal: so every product below is rebuilt from ``module.weight`` following transformers' layouts.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
from conftest import CONFIGS, build, native_init_of

from hf_mimetic.maths.attention import expected_qk_diagonal
from hf_mimetic.maths.positions import sinusoidal_1d, sinusoidal_2d
from hf_mimetic.maths.ssm import DELTA_ONE_BIAS


def vit_products(model):
    """Per layer: W_Q^h W_K^hᵀ per head = (q rows of head h)ᵀ (k rows), and W_V W_O = Wvᵀ Woᵀ."""
    out = []
    for layer in model.vit.layers:
        a = layer.attention
        h, k = a.num_attention_heads, a.head_dim
        q = a.q_proj.weight.detach().view(h, k, -1)
        kk = a.k_proj.weight.detach().view(h, k, -1)
        out.append((q.mT @ kk, a.v_proj.weight.detach().T @ a.o_proj.weight.detach().T))
    return out


def gpt2_products(model):
    """Per layer: W[:, q_h] W[:, k_h]ᵀ from c_attn (Conv1D, y = x W), and W[:, v] · c_proj.weight."""
    out = []
    for block in model.transformer.h:
        a = block.attn
        d, h, k = a.embed_dim, a.num_heads, a.head_dim
        w = a.c_attn.weight.detach()
        qk = torch.stack([w[:, i * k : (i + 1) * k] @ w[:, d + i * k : d + (i + 1) * k].T for i in range(h)])
        out.append((qk, w[:, 2 * d :] @ a.c_proj.weight.detach()))
    return out


PRODUCTS = {"vit": vit_products, "gpt2": gpt2_products}


def mean_diag(m):
    return m.diagonal(dim1=-2, dim2=-1).mean().item()


@pytest.mark.parametrize("family", ["vit", "gpt2"])
def test_attention_products_match_the_targets(family):
    config = CONFIGS[family]()
    d, heads = config.hidden_size, config.num_attention_heads
    model = build(family, mimetic_init=True)
    cfg = model.config.mimetic_config
    expected = expected_qk_diagonal(d, d // heads, cfg["qk_alpha"], cfg["qk_beta"], samples=16)
    for qk, vo in PRODUCTS[family](model):
        per_head = qk.diagonal(dim1=-2, dim2=-1).mean(-1)
        assert per_head.tolist() == pytest.approx([expected] * heads, rel=0.12)
        assert not torch.allclose(qk[0], qk[1], atol=1e-3), "each head needs its own Z_h / basis"
        assert mean_diag(vo) == pytest.approx(-cfg["vo_beta"], abs=0.06)
        off = vo - torch.diag(vo.diagonal())
        # W_V W_O = α2 Z − β2 I exactly: off-diagonal entries have std α2/√d.
        assert off.pow(2).sum().div(d * d - d).sqrt().item() == pytest.approx(cfg["vo_alpha"] / math.sqrt(d), rel=0.15)


@pytest.mark.parametrize("family", ["vit", "gpt2"])
def test_default_init_has_no_such_structure(family):
    for qk, vo in PRODUCTS[family](build(family)):
        assert abs(mean_diag(qk)) < 0.02 and abs(mean_diag(vo)) < 0.02


def test_vit_position_embeddings_are_the_2d_table_times_gamma_in_units_of_the_patch_embeddings():
    model = build("vit", mimetic_init=True, mimetic_config={"position_scale": 2.0})
    table = model.vit.embeddings.position_embeddings.detach()[0]
    grid = 16 // 4
    patch_std = 0.02 * math.sqrt(3 * 4 * 4)  # each patch embedding sums C·p² pixels times weights of std 0.02
    torch.testing.assert_close(table[0], torch.zeros(96))  # CLS position
    torch.testing.assert_close(table[1:], 2.0 * patch_std * sinusoidal_2d(grid, grid, 96))
    assert model.vit.embeddings.position_embeddings.requires_grad


@pytest.mark.parametrize("patch_size, num_channels", [(1, 3), (2, 3), (2, 1), (4, 1), (16, 3)])
def test_the_vision_presets_table_is_scaled_to_what_the_patch_embedding_produces(patch_size, num_channels):
    """The preset's κ is relative to the patch embeddings' std, so the ratio of the table's RMS to the std of real
    patch embeddings (pixels normalised to about [−1, 1], as the image processor does) is κ/√2 for every patch size
    and channel count: sinusoid pairs have RMS 1/√2."""
    from transformers import AutoModelForImageClassification, ViTConfig

    from hf_mimetic.config.presets import VISION_POSITION_SCALE

    config = ViTConfig(hidden_size=48, num_hidden_layers=1, num_attention_heads=3, intermediate_size=64,
                       image_size=max(8, 2 * patch_size), patch_size=patch_size, num_channels=num_channels)  # fmt: skip
    model = AutoModelForImageClassification.from_config(config, mimetic_init=True)
    table = model.vit.embeddings.position_embeddings.detach()[0, 1:]
    pixels = torch.rand(256, num_channels, config.image_size, config.image_size) * 2 - 1
    with torch.no_grad():
        measured = model.vit.embeddings.patch_embeddings(pixels * math.sqrt(3)).std().item()  # pixels of RMS 1
    ratio = table.pow(2).mean().sqrt().item() / measured
    assert ratio == pytest.approx(VISION_POSITION_SCALE / math.sqrt(2), rel=0.1)


def test_gpt2_position_embeddings_are_the_1d_table_and_can_be_frozen():
    model = build("gpt2", mimetic_init=True, mimetic_config={"freeze_position_embeddings": True, "position_scale": 3.0})
    torch.testing.assert_close(model.transformer.wpe.weight.detach(), 3.0 * 0.02 * sinusoidal_1d(48, 64))
    assert not model.transformer.wpe.weight.requires_grad
    assert model.transformer.wte.weight.requires_grad


def test_gpt2_language_preset_keeps_positions_on_the_token_embeddings_scale():
    # The thesis's Transformer: sinusoids of amplitude 1 (RMS 1/√2) on token embeddings of std ≈ 1. GPT-2's token
    # embeddings start at std 0.02, so the preset's table must be ≈ 0.7 × their RMS, not 35× (which stalls training).
    model = build("gpt2", mimetic_init=True)
    positions, tokens = model.transformer.wpe.weight.detach(), model.transformer.wte.weight.detach()
    ratio = positions.pow(2).mean().sqrt() / tokens.pow(2).mean().sqrt()
    assert ratio.item() == pytest.approx(1 / math.sqrt(2), rel=0.1)
    assert model.config.mimetic_config["position_scale"] == 1.0  # in units of the token embeddings' std


def test_attention_biases_are_zero():
    model = build("vit", mimetic_init=True)
    a = model.vit.layers[0].attention
    for proj in (a.q_proj, a.k_proj, a.v_proj, a.o_proj):
        assert torch.count_nonzero(proj.bias) == 0


@pytest.mark.parametrize("family", ["vit", "gpt2"])
def test_only_selected_layers_change(family):
    model = build(family, mimetic_init=True, mimetic_config={"layers": [1]})
    products = PRODUCTS[family](model)
    for index, (qk, vo) in enumerate(products):
        if index == 1:
            assert mean_diag(qk) > 0.05 and mean_diag(vo) < -0.1
        else:
            assert abs(mean_diag(qk)) < 0.02 and abs(mean_diag(vo)) < 0.02


#: Attention projection weights by name, in every catalogued layout: query/key (``qk``), value/output (``vo``) and
#: fused query-key-value (all three) projections. Named here from transformers' modules, not from the layouts.
ATTENTION_WEIGHT = re.compile(
    r"(attn|attention)\.(.*\.)?(?:(?P<qk>q_proj|k_proj|query|key)|(?P<vo>v_proj|o_proj|value|dense|c_proj|Wo)"
    r"|(?P<qkv>c_attn|qkv_proj|query_key_value|Wqkv))\.weight$"
)


def attention_weights(names, recipe: dict) -> set[str]:
    """The attention weights the recipe overwrites whole: q/k with ``qk``, v/o with ``vo``, fused qkv with both, in
    the recipe's layers."""
    chosen = set()
    for name in names:
        match = ATTENTION_WEIGHT.search(name)
        if match and (recipe["layers"] is None or int(re.search(r"\.(\d+)\.", name).group(1)) in recipe["layers"]):
            role = match.lastgroup
            if (role == "qk" and recipe["qk"]) or (role == "vo" and recipe["vo"]) or (role == "qkv" and recipe["qk"] and recipe["vo"]):
                chosen.add(name)
    return chosen


@pytest.mark.parametrize(
    "model_type, recipe",
    [(t, {}) for t in CONFIGS] + [("llama", {"vo": False}), ("llama", {"layers": [1]}), ("gpt2", {"qk": False}),
                                  ("phi3", {"vo": False}), ("gpt_neox", {"qk": False})],
)  # fmt: skip
def test_overwritten_attention_weights_skip_their_native_draw(model_type, recipe, monkeypatch):
    """The attention init overwrites q/k/v/o whole, so their native draws (a third of a decoder layer's besides its
    MLP) are skipped, as for loaded weights; a fused qkv keeps its draw unless q, k and v are all written. Every
    skipped weight is written, and everything else keeps its native init."""
    natively_drawn_default, _ = native_init_of(model_type, monkeypatch)
    natively_drawn, written = native_init_of(model_type, monkeypatch, mimetic_init=True, mimetic_config=recipe or None)
    skipped = natively_drawn_default - natively_drawn
    assert natively_drawn <= natively_drawn_default and skipped <= written
    resolved = build(model_type, mimetic_init=True, mimetic_config=recipe or None).config.mimetic_config
    expected = attention_weights(natively_drawn_default, resolved) if resolved.get("qk") is not None else set()
    assert {name for name in skipped if "dwconv" not in name} == expected
    if model_type in ("llama", "gpt2", "phi3", "bert") and not recipe:
        assert expected  # the patterns above do name these layouts' weights


def test_qk_only_vo_only_and_positive_vo():
    qk_only = vit_products(build("vit", mimetic_init=True, mimetic_config={"vo": False}))[0]
    assert mean_diag(qk_only[0]) > 0.1 and abs(mean_diag(qk_only[1])) < 0.02
    vo_only = vit_products(build("vit", mimetic_init=True, mimetic_config={"qk": False}))[0]
    assert abs(mean_diag(vo_only[0])) < 0.02 and mean_diag(vo_only[1]) < -0.3
    positive = vit_products(build("vit", mimetic_init=True, mimetic_config={"vo_sign": 1}))[0]
    assert mean_diag(positive[1]) == pytest.approx(0.4, abs=0.06)


def test_gpt2_language_preset_uses_alpha_zero():
    model = build("gpt2", mimetic_init=True)
    d, heads = 64, 4
    qk, _ = gpt2_products(model)[0]
    # α1 = 0: β1 times a rank-k projection, so the diagonal averages exactly β1·k/d.
    assert mean_diag(qk) == pytest.approx(0.5 * (d // heads) / d, abs=1e-5)


def test_mlp_mean_shifts_the_first_mlp_layer():
    torch.manual_seed(0)
    plain = build("vit", mimetic_init=True).vit.layers[0].mlp.fc1.weight.mean().item()
    shifted = build("vit", mimetic_init=True, mimetic_config={"mlp_mean": 0.05}).vit.layers[0].mlp.fc1.weight.mean().item()
    assert abs(plain) < 0.005 and shifted == pytest.approx(0.05, abs=0.005)


# ---------------------------------------------------------------------------------------------------------------- SSM
def test_mamba_parameters():
    config = CONFIGS["mamba"]()
    model = build("mamba", mimetic_init=True)
    n = config.state_size
    for layer in model.backbone.layers:
        mixer = layer.mixer
        a = -torch.exp(mixer.A_log.detach())
        torch.testing.assert_close(mixer.A_log.detach(), torch.log(torch.arange(1.0, n + 1)).expand_as(a) - 8.0)
        delta = torch.nn.functional.softplus(mixer.dt_proj.bias.detach())
        torch.testing.assert_close(delta, torch.ones_like(delta))
        assert torch.count_nonzero(mixer.dt_proj.weight) == 0
        assert torch.exp(a * delta[:, None]).min().item() > 1 - n * math.exp(-8) - 1e-6  # Ā ≈ 1
        r = mixer.time_step_rank
        w = mixer.x_proj.weight.detach()
        w_b, w_c = w[r : r + n], w[r + n : r + 2 * n]
        # W_C = ½(W_C′ + W_B) with entries of std σ: E[diag(W_Cᵀ W_B)] = ½·N·σ².
        expected = 0.5 * n * config.initializer_range**2
        assert (w_c * w_b).sum(0).mean().item() == pytest.approx(expected, rel=0.25)
        assert (w_c - 0.5 * w_b).std().item() == pytest.approx(0.5 * config.initializer_range, rel=0.1)
        # The thesis leaves Mamba 1's conv at its default (identity conv "somewhat harmful", Fig. 3.26).
        assert not torch.allclose(mixer.conv1d.weight[:, 0, -1], torch.ones(mixer.intermediate_size))


def test_mamba2_parameters_and_identity_conv():
    config = CONFIGS["mamba2"]()
    model = build("mamba2", mimetic_init=True, mimetic_config={"ssm_identity_conv": True})
    for layer in model.backbone.layers:
        mixer = layer.mixer
        heads, inter, gn = config.num_heads, mixer.intermediate_size, config.n_groups * config.state_size
        torch.testing.assert_close(mixer.A_log.detach(), torch.log(torch.arange(1.0, heads + 1)) - 8.0)
        torch.testing.assert_close(torch.nn.functional.softplus(mixer.dt_bias.detach()), torch.ones(heads))
        assert mixer.dt_bias.detach()[0].item() == pytest.approx(DELTA_ONE_BIAS)
        w = mixer.in_proj.weight.detach()
        dt_rows = w[2 * inter + 2 * gn :]
        assert dt_rows.shape[0] == heads and torch.count_nonzero(dt_rows) == 0
        assert torch.count_nonzero(w[: 2 * inter]) == w[: 2 * inter].numel(), "z and x rows keep their native draw"
        w_b, w_c = w[2 * inter : 2 * inter + gn], w[2 * inter + gn : 2 * inter + 2 * gn]
        per_group = (w_c * w_b).view(config.n_groups, config.state_size, -1).sum(1).mean().item()
        assert per_group == pytest.approx(0.5 * config.state_size * config.initializer_range**2, rel=0.3)
        # W_B keeps its native draw (std σ) and W_C = ½(W_C′ + W_B): W_C − ½W_B is ½W_C′, std ½σ. Tolerances are
        # 5 sd of a std estimated from n entries (relative sd 1/√(2n)); W_B and W_C exchanged fail both.
        tolerance = 5 / math.sqrt(2 * w_b.numel())
        assert w_b.std().item() == pytest.approx(config.initializer_range, rel=tolerance)
        assert (w_c - 0.5 * w_b).std().item() == pytest.approx(0.5 * config.initializer_range, rel=tolerance)
        x = torch.randn(2, mixer.conv_dim, 9)
        y = mixer.conv1d(x)[..., :9]  # transformers' causal use of the padded conv
        torch.testing.assert_close(y, x)


def test_ssm_options_switch_components_off_and_select_layers():
    default = build("mamba2")
    options = {"layers": [2], "ssm_delta": False, "ssm_identity_conv": True}
    model = build("mamba2", mimetic_init=True, mimetic_config=options)
    for index, layer in enumerate(model.backbone.layers):
        mixer, native = layer.mixer, default.backbone.layers[index].mixer
        shifted = torch.allclose(mixer.A_log, native.A_log - 8.0)
        assert shifted == (index == 2)
        assert not torch.allclose(torch.nn.functional.softplus(mixer.dt_bias), torch.ones(4))
        x = torch.randn(1, mixer.conv_dim, 5)
        assert torch.allclose(mixer.conv1d(x)[..., :5], x) == (index == 2)  # the identity conv, selected layer only


def test_bc_diagonal_option_sets_the_scale():
    model = build("mamba", mimetic_init=True, mimetic_config={"ssm_bc_diagonal": 1.0})
    mixer = model.backbone.layers[0].mixer
    r, n = mixer.time_step_rank, mixer.ssm_state_size
    w = mixer.x_proj.weight.detach()
    assert (w[r + n :] * w[r : r + n]).sum(0).mean().item() == pytest.approx(1.0, rel=0.2)
