"""Every registered model type, without test code of its own: the structure each kind of layer gets, read back from
the module weights, the recorded recipe, errors, and the empty-weight route.

Readings go through each layout's ``read``, which calls the projection modules themselves on the identity (so no
transpose of the writing code is repeated), and are compared with values computed here for the shapes.
"""

from __future__ import annotations

import math

import pytest
import torch
from accelerate import init_empty_weights
from conftest import build, config_of

from hf_mimetic import catalog, materialize
from hf_mimetic.catalog import KINDS
from hf_mimetic.inspect import structure
from hf_mimetic.layouts.positions import PIXEL_RMS
from hf_mimetic.maths.attention import expected_qk_diagonal
from hf_mimetic.maths.conv import filter_covariance, nearest_psd, sigma_schedule
from hf_mimetic.plan import family_kinds, find_targets


def check_attention(layout, module, recipe, model) -> None:
    g = layout.geometry(module)
    products = layout.read(module)
    per_head = products["qk"].diagonal(dim1=-2, dim2=-1).mean(-1)
    if recipe["qk_alpha"] == 0:  # β1 times a rank-k projection: the diagonal averages exactly β1·k/d
        expected = recipe["qk_beta"] * g.head_dim / g.hidden_size
        assert per_head.tolist() == pytest.approx([expected] * g.num_heads, abs=1e-4)
    else:
        expected = expected_qk_diagonal(g.hidden_size, g.head_dim, recipe["qk_alpha"], recipe["qk_beta"], samples=8)
        assert per_head.tolist() == pytest.approx([expected] * g.num_heads, rel=0.15)
    vo = products["vo"]
    assert vo.diagonal().mean().item() == pytest.approx(-recipe["vo_beta"], abs=0.08)
    off = (vo - torch.diag(vo.diagonal())).pow(2).sum().div(g.hidden_size**2 - g.hidden_size).sqrt().item()
    assert off == pytest.approx(recipe["vo_alpha"] / math.sqrt(g.hidden_size), rel=0.2)  # W_V W_O = α2 Z − β2 I


def check_positions(layout, module, recipe, model) -> None:
    # The table is sinusoids (RMS 1/√2) at position_scale × the embeddings' std at init; check it against the std
    # of what the embedding actually produces, measured here.
    table = layout.read(module)["table"]
    rows = table.reshape(-1, table.shape[-1])
    rows = rows[rows.abs().sum(-1) > 0]  # a CLS row stays zero
    if hasattr(module, "patch_embeddings"):
        embedding = module.patch_embeddings
        size = embedding.image_size
        pixels = (torch.rand(64, embedding.num_channels, *size) * 2 - 1) * math.sqrt(3) * PIXEL_RMS  # RMS PIXEL_RMS
        with torch.no_grad():
            measured = embedding(pixels).std().item()
    else:
        measured = model.get_input_embeddings().weight.std().item()
    ratio = rows.pow(2).mean().sqrt().item() / measured
    assert ratio == pytest.approx(recipe["position_scale"] / math.sqrt(2), rel=0.15)


def check_ssm(layout, module, recipe, model) -> None:
    values = layout.read(module)
    assert values["a_bar"].min().item() > 1 - module.ssm_state_size * math.exp(-recipe["ssm_a_shift"]) - 1e-4
    torch.testing.assert_close(values["delta"], torch.ones_like(values["delta"]))
    assert values["bc_diagonal"] > 0  # W_C = ½(W_C′ + W_B): E[diag W_Cᵀ W_B] = ½·N·σ² > 0


def check_conv(layout, module, recipe, model, depth: float) -> None:
    # Filters drawn from the covariance construction: neighbouring pixels correlate (independent draws: ≈ 0), and
    # the centre pixel has the construction's variance at this depth (projected to PSD), within sampling error.
    statistics = layout.statistics(module)
    assert statistics["neighbour_correlation"] > 0.2
    k = layout.conv(module).weight.shape[-1]
    sigma = sigma_schedule(depth, recipe["conv_sigma0"], recipe["conv_sigma_velocity"], recipe["conv_sigma_acceleration"])
    expected = recipe["conv_gain"] ** 2 * nearest_psd(filter_covariance(k, sigma).reshape(k * k, k * k))[k * k // 2, k * k // 2]
    count = layout.conv(module).weight.shape[0]
    assert statistics["filter_centre_variance"] == pytest.approx(expected.item(), rel=5 * math.sqrt(2 / (count - 1)))


CHECKS = {"attention": check_attention, "positions": check_positions, "ssm": check_ssm, "conv": check_conv}


def check_structure(model) -> None:
    recipe = model.config.mimetic_config
    for target in find_targets(model)[0]:
        if target.layout.kind in CHECKS and recipe["initialized"].get(target.layout.kind):
            extra = (target.depth,) if target.layout.kind == "conv" else ()
            CHECKS[target.layout.kind](target.layout, target.module, recipe, model, *extra)


def test_each_kind_of_layer_gets_its_structure(family):
    model = build(family, mimetic_init=True)
    assert find_targets(model)[0], "the catalogue lists a family none of whose layers is recognised"
    check_structure(model)


#: The kinds of layer each model type has (README, "Supported models"), written here rather than recomputed.
KINDS_OF = {
    **dict.fromkeys(("vit", "deit", "gpt2", "bert", "roberta"), {"attention", "positions", "mlp"}),
    "gpt_neox": {"attention", "mlp"},
    **dict.fromkeys(("llama", "mistral", "qwen2", "qwen3", "gemma", "olmo2", "phi3", "modernbert"), {"attention"}),
    **dict.fromkeys(("mamba", "mamba2", "falcon_mamba", "zamba2"), {"ssm"}),
    **dict.fromkeys(("jamba", "bamba"), {"attention", "ssm"}),
    # One layout per kind: the conv blocks' first MLP layer is recognised too (mlp_mean, off in the conv preset).
    **dict.fromkeys(("convmixer", "convnext", "convnextv2"), {"conv", "mlp"}),
}


def test_the_recipe_is_the_familys_preset_and_records_what_was_initialised(family):
    model = build(family, mimetic_init=True)
    recipe = model.config.mimetic_config
    assert recipe["preset"] == catalog.family(family).preset
    kinds = {t.layout.kind: t for t in find_targets(model)[0]}
    assert set(kinds) == KINDS_OF[family]
    assert set(family_kinds(family)) == set(kinds)  # what the plan finds in the family's example, on the meta device
    active = {kind for kind in kinds if KINDS[kind].from_overrides({k: recipe[k] for k in KINDS[kind].field_names()}).active}
    assert set(recipe["initialized"]) == active
    targets = find_targets(model)[0]
    for kind in active:
        layers = sorted({t.layer for t in targets if t.layout.kind == kind})
        assert recipe["initialized"][kind] == (True if layers == [None] else layers)


def test_layer_selection_is_recorded(family):
    recipe = build(family, mimetic_init=True, mimetic_config={"layers": [1]}).config.mimetic_config
    assert all(value in ([1], True) for value in recipe["initialized"].values())


def test_options_of_kinds_the_model_lacks_are_refused(family):
    present = set(family_kinds(family))
    absent = next(kind for kind in KINDS if kind not in present)
    option = KINDS[absent].field_names()[0]
    with pytest.raises(ValueError, match=rf"mimetic_config key '{option}' does not apply to {family} models \(.*\); valid keys"):
        build(family, mimetic_init=True, mimetic_config={option: KINDS[absent].defaults[option]})


def test_a_layer_index_out_of_range_names_the_range(family):
    num_layers = find_targets(build(family))[1]
    with pytest.raises(ValueError, match=rf"layers \[{num_layers}\] out of range: the model has {num_layers} layers"):
        build(family, mimetic_init=True, mimetic_config={"layers": [num_layers]})


@pytest.mark.parametrize("mimetic_init", [False, True])
def test_a_model_built_without_weights_is_materialised_with_its_init(family, mimetic_init):
    """accelerate's init_empty_weights, then materialize: the structure from_config gives (and no garbage). The
    random draws need not be the same (building on the meta device draws nothing), so the mimetic model is held to
    the same checks as from_config's, and the default one to its statistics."""
    kwargs = {"mimetic_init": True} if mimetic_init else {}
    torch.manual_seed(0)
    with init_empty_weights():
        empty = catalog.family(family).auto().from_config(config_of(family), **kwargs)
    materialize(empty, "cpu")
    for name, tensor in empty.state_dict().items():
        assert torch.isfinite(tensor).all(), name
    if mimetic_init:
        check_structure(empty)
        return
    # Every tensor as a stock build draws it: constants equal, random draws with the same mean and std within 6 sd
    # of the difference of two estimates from n entries each (std: relative sd at most 1/√n for these distributions;
    # mean: √(2/n) std).
    reference = build(family).state_dict()
    for name, tensor in empty.state_dict().items():
        value, expected = tensor.double(), reference[name].double()
        n = expected.numel()
        if n == 1 or expected.std().item() == 0:
            assert torch.equal(value, expected), name
            continue
        std = expected.std().item()
        assert value.std().item() == pytest.approx(std, rel=6 / math.sqrt(n)), name
        assert value.mean().item() == pytest.approx(expected.mean().item(), abs=6 * std * math.sqrt(2 / n) + 1e-12), name


def test_stock_to_empty_then_init_weights_is_what_materialize_fixes():
    """The reason materialize exists: stock transformers leaves uninitialised memory on this route."""
    with init_empty_weights():
        model = catalog.family("gpt2").auto().from_config(config_of("gpt2"))
    model.to_empty(device="cpu")
    for tensor in model.parameters():
        tensor.data.fill_(float("nan"))  # what uninitialised memory may hold
    model.init_weights()
    assert torch.isnan(model.transformer.wte.weight).all()
    materialize(model, "cpu")
    assert torch.isfinite(model.transformer.wte.weight).all()
