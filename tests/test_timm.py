"""timm models: ViT and DeiT (fused qkv, proj, pos_embed with class/distillation tokens), ConvMixer and ConvNeXt.
Structure is read back from the raw weights; skipped without timm (the `timm` extra; CI installs it)."""

from __future__ import annotations

import math

import pytest
import torch

timm = pytest.importorskip("timm")

from hf_mimetic import apply_mimetic_init  # noqa: E402
from hf_mimetic.integrations.timm import create_model  # noqa: E402
from hf_mimetic.layouts.positions import PIXEL_RMS  # noqa: E402
from hf_mimetic.maths.attention import expected_qk_diagonal  # noqa: E402
from hf_mimetic.maths.conv import filter_covariance, nearest_psd, sigma_schedule  # noqa: E402
from hf_mimetic.maths.positions import sinusoidal_2d  # noqa: E402

# The thesis's CIFAR ViT-Tiny shape (width 192, 3 heads, 32×32 input), 2 blocks and patch 4 to build quickly.
VIT = dict(img_size=32, patch_size=4, depth=2, num_classes=10)


def qk_vo(attention):
    """Per head W_Q^h W_K^hᵀ and W_V W_O from timm's fused qkv weight (rows [Q heads | K heads | V heads], nn.Linear
    stores Wᵀ) and proj."""
    heads, k = attention.num_heads, attention.head_dim
    q, key, v = attention.qkv.weight.detach().split(heads * k)
    qk = torch.stack([q[h * k : (h + 1) * k].T @ key[h * k : (h + 1) * k] for h in range(heads)])
    return qk, v.T @ attention.proj.weight.detach().T


@pytest.mark.parametrize("name, prefix", [("vit_tiny_patch16_224", 1), ("deit_tiny_distilled_patch16_224", 2)])
def test_vit_and_deit_get_the_vision_preset(name, prefix):
    torch.manual_seed(0)
    model = create_model(name, **VIT)
    recipe = model.pretrained_cfg["mimetic_config"]
    assert recipe["preset"] == "vision" and recipe["initialized"] == {"attention": [0, 1], "positions": True}
    expected = expected_qk_diagonal(192, 64, 0.7, 0.7, samples=16)
    for block in model.blocks:
        qk, vo = qk_vo(block.attn)
        assert qk.diagonal(dim1=-2, dim2=-1).mean(-1).tolist() == pytest.approx([expected] * 3, rel=0.1)
        assert vo.diagonal().mean().item() == pytest.approx(-0.4, abs=4 * 0.4 / 192)
        off = (vo - torch.diag(vo.diagonal())).pow(2).sum().div(192 * 191).sqrt().item()
        assert off == pytest.approx(0.4 / math.sqrt(192), rel=0.05)
    # pos_embed: the class (and distillation) rows stay zero; the grid rows are 2-D sinusoids scaled to the patch
    # embeddings, whose std follows from timm's patch projection weights.
    table = model.pos_embed.detach()[0]
    assert torch.count_nonzero(table[:prefix]) == 0
    weight = model.patch_embed.proj.weight.detach()
    scale = 0.3 * weight.std().item() * math.sqrt(weight[0].numel()) * PIXEL_RMS
    torch.testing.assert_close(table[prefix:], scale * sinusoidal_2d(8, 8, 192))


def test_layers_and_options_reach_timm_blocks():
    model = create_model("vit_tiny_patch16_224", mimetic_config={"layers": [1], "vo_sign": 1}, **VIT)
    first, second = (qk_vo(block.attn)[1].diagonal().mean().item() for block in model.blocks)
    assert abs(first) < 0.02 and second == pytest.approx(0.4, abs=0.03)


def test_default_timm_init_is_untouched_without_mimetic_init():
    torch.manual_seed(0)
    plain = timm.create_model("vit_tiny_patch16_224", **VIT)
    torch.manual_seed(0)
    again = timm.create_model("vit_tiny_patch16_224", **VIT)
    for (name, a), b in zip(plain.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name
    assert "mimetic_config" not in plain.pretrained_cfg


def check_filters(convs, recipe, tolerance_sd: float = 5.0) -> None:
    """Centre-pixel variance of each layer's filters against the construction's at its relative depth."""
    for index, conv in enumerate(convs):
        filters = conv.weight.detach()[:, 0].reshape(conv.weight.shape[0], -1).double()
        k = conv.kernel_size[0]
        depth = index / (len(convs) - 1)
        sigma = sigma_schedule(depth, recipe["conv_sigma0"], recipe["conv_sigma_velocity"], recipe["conv_sigma_acceleration"])
        expected = nearest_psd(filter_covariance(k, sigma).reshape(k * k, k * k))[k * k // 2, k * k // 2].item()
        n = filters.shape[0]
        assert filters[:, k * k // 2].var().item() == pytest.approx(expected, rel=tolerance_sd * math.sqrt(2 / (n - 1)))


def test_timm_convmixer_filters_come_from_the_covariance():
    from timm.models.convmixer import ConvMixer

    torch.manual_seed(0)
    model = apply_mimetic_init(ConvMixer(dim=256, depth=3, kernel_size=5, patch_size=2, num_classes=5))
    recipe = model.pretrained_cfg["mimetic_config"]
    assert recipe["initialized"] == {"conv": [0, 1, 2]}
    check_filters([block[0].fn[0] for block in model.blocks], recipe)


def test_timm_convnext_filters_come_from_the_covariance_over_all_stages():
    torch.manual_seed(0)
    model = create_model("convnext_atto", num_classes=5)
    recipe = model.pretrained_cfg["mimetic_config"]
    convs = [block.conv_dw for stage in model.stages for block in stage.blocks]
    assert recipe["initialized"] == {"conv": list(range(len(convs)))}  # layers numbered across the stages
    check_filters(convs, recipe)


def test_pretrained_weights_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"pretrained=True\): mimetic init is for training from scratch"):
        create_model("vit_tiny_patch16_224", pretrained=True, **VIT)
    # Weights timm loads (here from a local file, as pretrained=True does from the Hub) mark the model.
    source = timm.create_model("vit_tiny_patch16_224", **VIT)
    torch.save(source.state_dict(), tmp_path / "weights.pth")
    loaded = timm.create_model("vit_tiny_patch16_224", pretrained=True, pretrained_cfg_overlay={"file": str(tmp_path / "weights.pth")}, **VIT)
    with pytest.raises(ValueError, match="holds pretrained weights"):
        apply_mimetic_init(loaded)
    for name, tensor in source.state_dict().items():
        if not name.startswith("head."):  # timm re-draws a head whose class count differs from the checkpoint's
            assert torch.equal(loaded.state_dict()[name], tensor), name


def test_a_module_timm_does_not_know_is_refused_by_name():
    with pytest.raises(ValueError, match=r"Linear is neither a transformers PreTrainedModel nor a timm model hf_mimetic knows"):
        apply_mimetic_init(torch.nn.Linear(4, 4))
