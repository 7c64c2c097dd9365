"""Users' own models (MimeticInitMixin), a user's subclass of a catalogued family, models matched by structure only,
and the catalogue itself: one layout per kind per module, pure layouts, no import circle."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from accelerate import init_empty_weights
from conftest import build
from own_model import OwnConfig, OwnForClassification, OwnModel
from transformers import AutoConfig, AutoModel, LlamaForCausalLM, PreTrainedModel

from hf_mimetic import MimeticInitMixin, materialize
from hf_mimetic.maths.attention import expected_qk_diagonal
from hf_mimetic.plan import find_targets

AutoConfig.register(OwnConfig.model_type, OwnConfig, exist_ok=True)
AutoModel.register(OwnConfig, OwnModel, exist_ok=True)
D, HEADS = 64, 4
HEAD_DIM = D // HEADS


def products(attention) -> tuple[torch.Tensor, torch.Tensor]:
    """W_Q^h W_K^hᵀ per head and W_V W_O, rebuilt here from the raw fused weight (rows [Q heads | K heads | V heads],
    nn.Linear stores Wᵀ) and the output projection."""
    w = attention.qkv.weight.detach()
    q, k, v = w[:D], w[D : 2 * D], w[2 * D :]
    qk = torch.stack([q[h * HEAD_DIM : (h + 1) * HEAD_DIM].T @ k[h * HEAD_DIM : (h + 1) * HEAD_DIM] for h in range(HEADS)])
    return qk, v.T @ attention.proj.weight.detach().T


def check_own_structure(encoder: OwnModel) -> None:
    expected = expected_qk_diagonal(D, HEAD_DIM, 0.7, 0.7, samples=16)  # the vision preset the class declares
    for block in encoder.blocks:
        qk, vo = products(block.attention)
        assert qk.diagonal(dim1=-2, dim2=-1).mean(-1).tolist() == pytest.approx([expected] * HEADS, rel=0.12)
        assert vo.diagonal().mean().item() == pytest.approx(-0.4, abs=4 * 0.4 / D)  # −β2 + α2·mean(diag Z)
        off = (vo - torch.diag(vo.diagonal())).pow(2).sum().div(D * D - D).sqrt().item()
        assert off == pytest.approx(0.4 / math.sqrt(D), rel=0.1)
        assert torch.count_nonzero(block.attention.qkv.bias) == 0


def test_direct_construction_of_an_own_model_follows_its_configs_flag():
    torch.manual_seed(0)
    model = OwnModel(OwnConfig(mimetic_init=True, mimetic_config={"mlp_mean": 0.05}))
    check_own_structure(model)
    assert model.config.mimetic_config["preset"] == "vision"
    assert model.config.mimetic_config["initialized"] == {"attention": [0, 1, 2], "mlp": [0, 1, 2]}
    assert model.blocks[0].mlp.fc1.weight.mean().item() == pytest.approx(0.05, abs=0.005)
    assert abs(model.blocks[0].mlp.fc2.weight.mean().item()) < 0.005
    assert torch.isfinite(model(torch.randint(0, 32, (2, 5)))).all()


def test_without_the_flag_an_own_model_is_initialised_by_its_own_init_weights_alone():
    torch.manual_seed(0)
    model = OwnModel(OwnConfig())
    qk, vo = products(model.blocks[0].attention)
    assert abs(qk.diagonal(dim1=-2, dim2=-1).mean().item()) < 0.01 and abs(vo.diagonal().mean().item()) < 0.01
    assert not hasattr(model.config, "mimetic_config")


def test_from_config_on_a_head_model_reaches_the_layers_of_its_inner_model():
    config = OwnConfig()
    model = OwnForClassification._from_config(config, mimetic_init=True)
    check_own_structure(model.encoder)
    assert not hasattr(config, "mimetic_init"), "from_config must not change the caller's config"
    assert model.config.mimetic_config["initialized"] == {"attention": [0, 1, 2]}


def test_a_saved_own_model_loads_bit_identically_and_keeps_its_recipe(tmp_path):
    model = OwnForClassification._from_config(OwnConfig(), mimetic_init=True, mimetic_config={"qk_beta": 0.6})
    model.save_pretrained(tmp_path)
    torch.manual_seed(123)  # a different seed: a re-initialisation would show
    loaded = OwnForClassification.from_pretrained(tmp_path)
    for (name, tensor), reference in zip(loaded.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.equal(tensor, reference), name
    assert loaded.config.mimetic_config == model.config.mimetic_config


def test_an_own_model_built_without_memory_is_materialised_with_its_init():
    with init_empty_weights():
        model = AutoModel.from_config(OwnConfig(), mimetic_init=True)
    materialize(model, "cpu")
    check_own_structure(model)


def test_an_own_model_round_trips_through_trust_remote_code(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    OwnConfig.register_for_auto_class()
    OwnModel.register_for_auto_class("AutoModel")
    try:
        model = AutoModel.from_config(OwnConfig(), mimetic_init=True)
        model.save_pretrained(tmp_path / "saved")
    finally:
        OwnConfig._auto_class = OwnModel._auto_class = None
    assert (tmp_path / "saved" / "own_model.py").is_file()
    code = f"""
import torch
from transformers import AutoConfig, AutoModel
loaded = AutoModel.from_pretrained({str(tmp_path / 'saved')!r}, trust_remote_code=True)
assert type(loaded).__name__ == "OwnModel" and type(loaded).__module__.startswith("transformers_modules"), type(loaded)
torch.save(loaded.state_dict(), {str(tmp_path / 'loaded.pt')!r})
config = AutoConfig.from_pretrained({str(tmp_path / 'saved')!r}, trust_remote_code=True)
fresh = AutoModel.from_config(config, trust_remote_code=True, mimetic_init=True)
torch.save(fresh.state_dict(), {str(tmp_path / 'fresh.pt')!r})
print(fresh.config.mimetic_config["initialized"])
"""
    # A fresh process: the class comes from the saved folder's copy of the file, not from this test's import.
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**__import__("os").environ, "HF_MODULES_CACHE": str(tmp_path / "modules"),
                                 "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "{'attention': [0, 1, 2]}" in result.stdout
    loaded = torch.load(tmp_path / "loaded.pt", weights_only=True)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded[name], tensor), name
    fresh = OwnModel(OwnConfig())
    fresh.load_state_dict(torch.load(tmp_path / "fresh.pt", weights_only=True))
    check_own_structure(fresh)


def test_a_users_subclass_of_a_catalogued_family_gets_the_familys_init():
    class MyLlama(MimeticInitMixin, LlamaForCausalLM):  # custom code to transformers: outside its package
        pass

    config = build("llama").config
    model = MyLlama._from_config(config, mimetic_init=True)
    assert model.config.mimetic_config["preset"] == "decoder"
    attention = model.model.layers[0].self_attn
    q = attention.q_proj.weight.detach().view(4, 16, 64)
    k = attention.k_proj.weight.detach().view(2, 16, 64)
    # α1 = 0: W_Q^h W_K^hᵀ = β1 × a rank-k projector, whose diagonal averages β1·k/d; query head h reads KV head h // 2.
    for h in range(4):
        qk = q[h].T @ k[h // 2]
        assert qk.diagonal().mean().item() == pytest.approx(0.5 * 16 / 64, abs=1e-4)
        torch.testing.assert_close(qk @ qk, 0.5 * qk, atol=1e-4, rtol=1e-4)  # (β P)² = β (β P)


def test_a_model_recognised_only_by_structure_must_name_its_preset():
    config = AutoConfig.for_model("granite", hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                  num_key_value_heads=2, intermediate_size=128, vocab_size=64)  # fmt: skip
    with pytest.raises(ValueError, match=r"granite is not in hf_mimetic's catalogue.*attention.*pass mimetic_config=\{'preset': \.\.\.\}.*valid presets: \('vision', 'language', 'decoder', 'encoder', 'hybrid'\)"):
        AutoModel.from_config(config, mimetic_init=True)
    model = AutoModel.from_config(config, mimetic_init=True, mimetic_config={"preset": "decoder"})
    assert model.config.mimetic_config["initialized"] == {"attention": [0, 1]}
    qk = model.layers[0].self_attn.q_proj.weight.T[:, :16] @ model.layers[0].self_attn.k_proj.weight[:16]
    assert qk.diagonal().mean().item() == pytest.approx(0.5 * 16 / 64, abs=1e-4)


def test_mixin_declarations_are_checked_when_the_class_is_made():
    with pytest.raises(TypeError, match="MimeticInitMixin goes with a transformers PreTrainedModel"):
        type("NotAModel", (MimeticInitMixin, torch.nn.Module), {})
    with pytest.raises(ValueError, match=r"mimetic_preset: unknown preset 'vit'; valid: \('vision'"):
        type("BadPreset", (MimeticInitMixin, PreTrainedModel), {"mimetic_preset": "vit"})
    with pytest.raises(TypeError, match="mimetic_layouts must be a tuple of layouts"):
        type("BadLayouts", (MimeticInitMixin, PreTrainedModel), {"mimetic_layouts": ("OwnAttention",)})


# ----------------------------------------------------------------------------------------------------------- catalogue
def test_a_module_gets_one_layout_of_each_kind_so_convmixer_blocks_get_the_mlp_mean():
    model = build("convmixer", mimetic_init=True, mimetic_config={"mlp_mean": 0.05})
    kinds = {}
    for target in find_targets(model)[0]:
        kinds.setdefault(type(target.module).__name__, set()).add(target.layout.kind)
    assert kinds["ConvMixerLayer"] == {"conv", "mlp"}
    assert model.config.mimetic_config["initialized"] == {"mlp": [0, 1, 2], "conv": [0, 1, 2]}
    layer = model.convmixer.layers[0]
    assert layer.pwconv.weight.mean().item() == pytest.approx(0.05, abs=0.01)
    # The filters keep the covariance construction (neighbouring pixels correlate; the default's do not).
    filters = layer.dwconv.weight.detach()[:, 0]
    left, right = filters[:, :, :-1].reshape(-1), filters[:, :, 1:].reshape(-1)
    assert torch.corrcoef(torch.stack([left, right]))[0, 1].item() > 0.2


def test_the_maths_configs_layouts_and_catalogue_import_nothing_above_them():
    """The layers of the package import downwards only (maths → config → layouts → catalogue → plan → hook, mixin,
    api → integrations, loading, train, cli), so there is no import circle; read from the source, since importing
    any submodule runs the package's __init__."""
    import ast
    from pathlib import Path

    import hf_mimetic

    package = Path(hf_mimetic.__file__).parent
    above = {"plan", "hook", "api", "mixin", "integrations", "loading", "train", "cli", "inspect", "tasks"}
    lower = [package / "catalog.py", *package.glob("layouts/*.py"), *package.glob("config/*.py"), *package.glob("maths/*.py")]
    offending = []
    for path in lower:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level > 0 and node.module:
                if node.module.split(".")[0] in above:
                    offending.append(f"{path.relative_to(package)}: from {'.' * node.level}{node.module}")
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("hf_mimetic"):
                offending.append(f"{path.relative_to(package)}: from {node.module}")
    assert not offending, offending


@pytest.mark.parametrize("section", ["### Your own model", "### timm"])
def test_the_readmes_examples_run(section):
    import re
    from pathlib import Path

    if section == "### timm":
        pytest.importorskip("timm")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme[readme.index(section) :], re.S).group(1)
    namespace: dict = {}
    exec(compile(code, f"README {section}", "exec"), namespace)
    if section == "### Your own model":
        assert namespace["model"].config.mimetic_config["initialized"] == {"attention": [0, 1], "mlp": [0, 1]}
        assert (namespace["w_v"] @ namespace["w_o"]).diagonal().mean().item() == pytest.approx(-0.4, abs=0.05)
    else:
        assert namespace["convnext"].pretrained_cfg["mimetic_config"]["conv_gain"] == 0.5
