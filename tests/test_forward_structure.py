"""What each attention layout writes reaches the forward pass, per head, against the exact target.

Nothing here reads weights through a layout (its names, row maps or ``read``): q, k and v are captured where
transformers hands them to the attention function (a registered ``AttentionInterface`` entry), with every attention
module's input replaced by the basis vectors e_0 … e_{d−1} and a zero row (for the biases), the same vector at every
position. Position 0 is where q and k are read (a rotary embedding is the identity there); since every position holds
the same value vector, the attention output is v whatever the weights, so the linear map that receives it (found by
comparing tensors, not by name) gives W_V W_O.

The targets are exact. With α1 = 0 (language, decoder, encoder and hybrid presets) each head's W_Q^h W_K^hᵀ is β1
times an orthogonal projector of rank k: that pins the scale and which key head each query head is paired with. With
noise, ``attention_noise`` is recorded, so the target α·Z + β·I of every head and layer is known and its best
approximation (rank k per head, the least-squares shared key basis for grouped heads; rank min(d, G·k) for W_V W_O)
is recomputed here in float64 with numpy. The preset values are the thesis's numbers, written here, not read from the
library.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import build, config_of
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

import hf_mimetic.maths.attention as attention_maths

#: The thesis's values (α1, β1, α2, β2): §3.2.4 for vision, §3.2.6 for language, which the decoder, encoder and hybrid
#: presets take over.
THESIS = {"vision": (0.7, 0.7, 0.4, 0.4), "language": (0.0, 0.5, 0.2, 0.2)}
PRESET_VALUES = {"vision": THESIS["vision"], **dict.fromkeys(("language", "decoder", "encoder", "hybrid"), THESIS["language"])}
#: Every family whose attention is linear up to the attention function (Qwen3 and OLMo 2 normalise q and k first:
#: their layout, shared with Llama, is checked through Llama, Mistral and Qwen2).
FORWARD_FAMILIES = ["vit", "deit", "gpt2", "bert", "roberta", "llama", "mistral", "qwen2", "gemma", "phi3", "gpt_neox",
                    "modernbert", "jamba", "bamba"]  # fmt: skip

_CALLS: list = []
_ACTIVE: list[bool] = [False]


def _capture(module, query, key, value, attention_mask, **kwargs):
    output = sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    if _ACTIVE[0]:
        _CALLS.append((module, query.detach(), key.detach(), output[0].detach()))
    return output


AttentionInterface.register("hf_mimetic_capture", _capture)


class _Captured(Exception):
    """Raised after the last attention module: the forward pass has given everything it is run for."""


def model_inputs(model, batch: int) -> dict:
    config = model.config
    if model.main_input_name == "pixel_values":
        return {"pixel_values": torch.randn(batch, config.num_channels, config.image_size, config.image_size)}
    return {"input_ids": torch.randint(3, config.vocab_size, (batch, 2))}


def attention_modules(model) -> list:
    """The modules that call the attention function, in the order of the forward pass."""
    model.eval().set_attn_implementation("hf_mimetic_capture")
    _CALLS.clear()
    _ACTIVE[0] = True
    try:
        with torch.no_grad():
            model(**model_inputs(model, 2))
    finally:
        _ACTIVE[0] = False
    return list(dict.fromkeys(call[0] for call in _CALLS))


def forward_maps(model) -> list[dict]:
    """Per attention module (forward order): ``q`` (H, d, k), ``k`` (G, d, k) and ``vo`` (d, d) in the row-vector
    convention (``q = x W_Q``), read from the forward pass."""
    modules = attention_modules(model)
    widths = {}

    def basis_input(module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        batch, _, width = hidden.shape
        assert batch > width, "the batch must hold the d basis vectors and a zero row"
        widths[module] = width
        eye = torch.zeros(batch, width, dtype=hidden.dtype)
        eye[:width] = torch.eye(width, dtype=hidden.dtype)
        replaced = eye[:, None, :].expand(hidden.shape).contiguous()
        return ((replaced, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": replaced})

    records: list = []

    def record(leaf, inputs, output):
        if inputs and isinstance(inputs[0], torch.Tensor) and isinstance(output, torch.Tensor):
            records.append((inputs[0].detach(), output.detach()))

    def stop(module, args, output):
        raise _Captured  # the rest of the model (Mamba layers, the head over the vocabulary) reads nothing here

    handles = [m.register_forward_pre_hook(basis_input, with_kwargs=True) for m in modules]
    # After the block that holds the last attention module (BERT's output projection is its sibling, not its child).
    [parent] = [m for m in model.modules() if any(child is modules[-1] for child in m.children())][:1]
    handles.append(parent.register_forward_hook(stop))
    handles += [leaf.register_forward_hook(record) for leaf in model.modules()
                if not leaf._modules and any(True for _ in leaf.parameters(recurse=False))]  # fmt: skip
    width = max(getattr(model.config, "hidden_size", 0), getattr(model.config, "n_embd", 0))
    _CALLS.clear()
    _ACTIVE[0] = True
    try:
        with torch.no_grad():
            model(**model_inputs(model, 2 * width + 1))
    except _Captured:
        pass
    finally:
        _ACTIVE[0] = False
        for handle in handles:
            handle.remove()
    maps, seen = [], set()
    for module, query, key, output in _CALLS:
        if module in seen:
            continue  # a shared block called again
        seen.add(module)
        d = widths[module]
        q = (query[:d, :, 0] - query[d, :, 0]).permute(1, 0, 2).double()  # (H, d, k)
        k = (key[:d, :, 0] - key[d, :, 0]).permute(1, 0, 2).double()  # (G, d, k)
        flat = output.reshape(*output.shape[:2], -1)
        [vo] = [out for inp, out in records if inp.shape == flat.shape and torch.equal(inp, flat)]
        maps.append({"module": module, "q": q, "k": k, "vo": (vo[:d, 0] - vo[d, 0]).double()})
    return maps


@pytest.fixture
def recorded_noise(monkeypatch) -> list[torch.Tensor]:
    """Every noise tensor Z the attention maths draws, in order."""
    draws, original = [], attention_maths.attention_noise

    def record(*shape, **kwargs):
        z = original(*shape, **kwargs)
        draws.append(z.detach().clone().double())
        return z

    monkeypatch.setattr(attention_maths, "attention_noise", record)
    return draws


def best_qk(targets: np.ndarray, group: int, k: int) -> np.ndarray:
    """Per head, T_h P_V with V the top-k right singular vectors of the stacked targets of its group (for one head
    per group: the best rank-k approximation)."""
    heads, d, _ = targets.shape
    out = np.empty_like(targets)
    for g in range(heads // group):
        _, _, vh = np.linalg.svd(targets[g * group : (g + 1) * group].reshape(group * d, d))
        projector = vh[:k].T @ vh[:k]
        out[g * group : (g + 1) * group] = targets[g * group : (g + 1) * group] @ projector
    return out


def best_vo(target: np.ndarray, rank: int) -> np.ndarray:
    u, _, _ = np.linalg.svd(target)
    return u[:, :rank] @ u[:, :rank].T @ target


def check_qk_projector(q: torch.Tensor, k: torch.Tensor, beta: float) -> None:
    """α1 = 0: W_Q^h W_K^{g(h)}ᵀ = β1·P with P an orthogonal projector of rank k, for every head."""
    group = q.shape[0] // k.shape[0]
    products = q @ k.repeat_interleave(group, dim=0).mT / beta
    rank = q.shape[-1]
    for h, p in enumerate(products):
        torch.testing.assert_close(p, p.T, atol=1e-5, rtol=0, msg=f"head {h}: not symmetric")
        torch.testing.assert_close(p @ p, p, atol=1e-5, rtol=0, msg=f"head {h}: not β1 times a projector")
        assert p.trace().item() == pytest.approx(rank, abs=1e-4), f"head {h}: rank {p.trace().item():.3f}, not {rank}"


def check_layer(entry: dict, values: tuple, qk_noise: torch.Tensor | None, vo_noise: torch.Tensor) -> None:
    qk_alpha, qk_beta, vo_alpha, vo_beta = values
    q, k, vo = entry["q"], entry["k"], entry["vo"]
    heads, d, head_dim = q.shape
    kv_heads = k.shape[0]
    if qk_alpha == 0:
        assert qk_noise is None
        check_qk_projector(q, k, qk_beta)
    else:
        targets = qk_alpha * qk_noise.numpy() + qk_beta * np.eye(d)
        expected = best_qk(targets, heads // kv_heads, head_dim)
        products = (q @ k.repeat_interleave(heads // kv_heads, dim=0).mT).numpy()
        np.testing.assert_allclose(products, expected, atol=2e-4 * qk_beta, err_msg="W_Q^h W_K^hᵀ ≠ the best rank-k target")
    target = vo_alpha * vo_noise.numpy() - vo_beta * np.eye(d)
    expected = best_vo(target, min(d, kv_heads * head_dim))
    np.testing.assert_allclose(vo.numpy(), expected, atol=2e-4, err_msg="W_V W_O ≠ α2·Z − β2·I (best rank-m)")


def split_noise(draws: list[torch.Tensor], qk_alpha: float, layers: int) -> list[tuple]:
    """The recorded draws, per initialised layer: (QK noise or None, VO noise)."""
    per_layer = 2 if qk_alpha else 1
    assert len(draws) == per_layer * layers, f"{len(draws)} noise draws for {layers} attention layers"
    return [(draws[i] if qk_alpha else None, draws[i + per_layer - 1]) for i in range(0, len(draws), per_layer)]


@pytest.mark.parametrize("family", FORWARD_FAMILIES)
def test_every_heads_products_in_the_forward_pass_are_the_presets_exact_targets(family, recorded_noise):
    model = build(family, mimetic_init=True)
    recipe = model.config.mimetic_config
    values = PRESET_VALUES[recipe["preset"]]
    assert tuple(recipe[key] for key in ("qk_alpha", "qk_beta", "vo_alpha", "vo_beta")) == values, "not the thesis's values"
    maps = forward_maps(model)
    assert maps, "no attention call was captured"
    for entry, (qk_noise, vo_noise) in zip(maps, split_noise(recorded_noise, values[0], len(maps)), strict=True):
        check_layer(entry, values, qk_noise, vo_noise)


@pytest.mark.parametrize("family", ["llama", "bert", "gpt_neox", "phi3"])
def test_noisy_targets_reach_the_forward_pass_of_every_head(family, recorded_noise):
    """The vision values on text layouts: each head's own noise Z_h must end up in that head (a per-block write where
    rows are per head, or two heads exchanged, gives another head's target)."""
    values = THESIS["vision"]
    options = dict(zip(("qk_alpha", "qk_beta", "vo_alpha", "vo_beta"), values))
    maps = forward_maps(build(family, mimetic_init=True, mimetic_config=options))
    for entry, (qk_noise, vo_noise) in zip(maps, split_noise(recorded_noise, values[0], len(maps)), strict=True):
        check_layer(entry, values, qk_noise, vo_noise)


def test_uniform_noise_reaches_a_real_model(recorded_noise):
    """noise="uniform": W_V W_O − (−β2 I) = α2·Z with Z ~ U(±√(3/d)): bounded, with the variance 1/d of the normal."""
    model = build("vit", mimetic_init=True, mimetic_config={"noise": "uniform"})
    maps = forward_maps(model)
    _, _, vo_alpha, vo_beta = THESIS["vision"]
    for entry, (qk_noise, vo_noise) in zip(maps, split_noise(recorded_noise, 0.7, len(maps)), strict=True):
        check_layer(entry, THESIS["vision"], qk_noise, vo_noise)
        d = vo_noise.shape[-1]
        z = (entry["vo"] + vo_beta * torch.eye(d, dtype=torch.float64)) / vo_alpha
        bound = math.sqrt(3 / d)
        assert z.abs().max().item() <= bound * (1 + 1e-4)
        assert z.abs().max().item() > 0.95 * bound  # d² draws of a uniform reach its edge
        n = z.numel()  # the variance estimate of n uniform draws has relative sd √(0.8/n)
        assert z.pow(2).mean().item() == pytest.approx(1 / d, rel=5 * math.sqrt(0.8 / n))


def test_the_randomized_svd_route_meets_the_exact_constructions_statistics():
    """A ViT whose heads are narrow (k = 16 < d/4 = 48) takes the randomized SVD under qk_svd="auto". Its per-head
    diagonal mean and off-diagonal RMS must match the exact construction's (Monte Carlo over 32 heads of the same
    shapes); the sketch may lose a few percent of the diagonal, not more."""
    from hf_mimetic.maths.attention import qk_factors

    d, heads, head_dim = 192, 12, 16
    config = config_of("vit", hidden_size=d, num_attention_heads=heads, num_hidden_layers=1, intermediate_size=64)
    alpha, beta = THESIS["vision"][:2]
    torch.manual_seed(1)
    wq, wk = qk_factors(32, d, head_dim, alpha, beta, svd="exact", dtype=torch.float64)
    exact = wq @ wk.mT
    exact_diag = exact.diagonal(dim1=-2, dim2=-1).mean(-1)
    exact_off = (exact.pow(2).sum((-2, -1)) - exact.diagonal(dim1=-2, dim2=-1).pow(2).sum(-1)).div(d * d - d).sqrt()
    for svd in ("auto", "randomized"):
        [entry] = forward_maps(build("vit", config=config, mimetic_init=True, mimetic_config={"qk_svd": svd}))
        products = entry["q"] @ entry["k"].mT
        diag = products.diagonal(dim1=-2, dim2=-1).mean(-1)
        off = (products.pow(2).sum((-2, -1)) - products.diagonal(dim1=-2, dim2=-1).pow(2).sum(-1)).div(d * d - d).sqrt()
        # 12 heads against 32: 5 sd of the difference of two means, plus the sketch's few percent.
        sd = exact_diag.std().item() * math.sqrt(1 / heads + 1 / 32)
        assert diag.mean().item() == pytest.approx(exact_diag.mean().item(), abs=5 * sd + 0.06 * exact_diag.mean().item())
        sd_off = exact_off.std().item() * math.sqrt(1 / heads + 1 / 32)
        assert off.mean().item() == pytest.approx(exact_off.mean().item(), abs=5 * sd_off + 0.06 * exact_off.mean().item())
        # Each head is still rank k.
        assert torch.linalg.matrix_rank(products[0], atol=1e-6).item() == head_dim


def test_a_model_type_nobody_registered_is_matched_by_structure(recorded_noise):
    """Granite's attention has q/k/v/o linear projections and a head_dim: with the preset named (it is never
    guessed for an uncatalogued type), it gets that preset's exact targets in the forward pass, grouped heads
    included."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model("granite", hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                  num_key_value_heads=2, intermediate_size=128, vocab_size=64, bos_token_id=1,
                                  eos_token_id=2, pad_token_id=0)  # fmt: skip
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, mimetic_init=True, mimetic_config={"preset": "vision"})
    recipe = model.config.mimetic_config
    assert recipe["preset"] == "vision" and recipe["initialized"] == {"attention": [0, 1]}
    maps = forward_maps(model)
    assert len(maps) == 2
    for entry, (qk_noise, vo_noise) in zip(maps, split_noise(recorded_noise, 0.7, 2), strict=True):
        check_layer(entry, THESIS["vision"], qk_noise, vo_noise)


def test_query_heads_that_are_not_a_multiple_of_the_key_value_heads_are_refused():
    with pytest.raises(ValueError, match=r"LlamaAttention: 4 query heads are not a multiple of 3 key/value heads"):
        build("llama", config=config_of("llama", num_key_value_heads=3), mimetic_init=True)


def native_statistics(weight: torch.Tensor, std: float) -> None:
    """Entries of a native N(0, std²) draw: mean 0 and std ``std`` within 5 sd of their estimates."""
    n = weight.numel()
    assert weight.mean().item() == pytest.approx(0.0, abs=5 * std / math.sqrt(n))
    assert weight.std().item() == pytest.approx(std, rel=5 / math.sqrt(2 * n))


@pytest.mark.parametrize("family", ["gpt2", "bert"])
def test_cross_attention_keeps_its_native_init_and_self_attention_does_not(family):
    extra = {"is_decoder": True} if family == "bert" else {}
    model = build(family, config=config_of(family, add_cross_attention=True, **extra), mimetic_init=True)
    std = model.config.initializer_range
    if family == "gpt2":
        blocks = model.transformer.h
        cross = [(b.crossattention.q_attn.weight, b.crossattention.c_attn.weight) for b in blocks]
    else:
        blocks = model.bert.encoder.layer
        cross = [tuple(getattr(b.crossattention.self, n).weight for n in ("query", "key", "value")) for b in blocks]
    for weights in cross:
        for weight in weights:
            native_statistics(weight.detach(), std)
    values = PRESET_VALUES[model.config.mimetic_config["preset"]]
    for entry in forward_maps(model):  # self-attention only: no encoder states are passed
        check_qk_projector(entry["q"], entry["k"], values[1])


def test_zamba2s_shared_transformer_block_keeps_its_native_init():
    """It attends over [hidden, embeddings] (a map from 2d to d): bit-identical to a default build of the same seed,
    while the Mamba 2 mixers get their init."""
    mimetic, default = build("zamba2", mimetic_init=True).state_dict(), build("zamba2").state_dict()
    shared = [key for key in mimetic if ".shared_transformer." in key]
    assert shared and all(torch.equal(mimetic[key], default[key]) for key in shared)
    assert not torch.equal(mimetic["model.layers.0.mamba.A_log"], default["model.layers.0.mamba.A_log"])


@pytest.mark.parametrize("family, path", [("gpt2", "transformer.wpe"), ("bert", "bert.embeddings.position_embeddings"),
                                          ("roberta", "roberta.embeddings.position_embeddings")])  # fmt: skip
def test_the_positions_the_forward_pass_looks_up_are_the_sinusoids_from_position_zero(family, path):
    """The rows the embedding layer returns for the positions of a sequence (RoBERTa numbers them from
    padding_idx + 1) are position_scale × the token embeddings' std (initializer_range) × the 1-D sinusoids of
    positions 0, 1, …: the language and encoder presets' amplitude 1 (thesis §3.2.6)."""
    from hf_mimetic.maths.positions import sinusoidal_1d

    model = build(family, mimetic_init=True).eval()
    assert model.config.mimetic_config["position_scale"] == 1.0
    looked_up = []
    model.get_submodule(path).register_forward_hook(lambda module, args, output: looked_up.append(output.detach()))
    length = 12
    with torch.no_grad():
        model(input_ids=torch.randint(3, model.config.vocab_size, (1, length)))
    d = looked_up[0].shape[-1]
    expected = model.config.initializer_range * sinusoidal_1d(length, d)
    torch.testing.assert_close(looked_up[0].reshape(length, d), expected, atol=1e-6, rtol=1e-5)
