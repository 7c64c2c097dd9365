"""The convolutional covariance construction (thesis §3.1.2), ConvMixer as a transformers model, and the conv init in
ConvMixer and ConvNeXt: structure, sampling statistics, depth schedule, freezing, transfer, errors, the script."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import build, config_of, native_init_of
from test_train_image_classification import TINY as IMAGE_TINY
from test_train_image_classification import write_imagefolder
from transformers import AutoConfig, AutoModel, AutoModelForImageClassification, pipeline

import hf_mimetic.layouts.depthwise_conv as depthwise_conv
from hf_mimetic import ConvMixerConfig, transfer_filter_covariance
from hf_mimetic.maths.conv import (
    block_transpose,
    clear_roots,
    construction_roots,
    empirical_covariance,
    filter_covariance,
    gaussian_bump,
    nearest_psd,
    psd_root,
    sample_filters,
    shifted_bumps,
    sigma_schedule,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import train_image_classification  # noqa: E402


# ------------------------------------------------------------------------------------------------ the construction
@pytest.mark.parametrize("kernel_size, sigma", [(3, 0.5), (7, 1.0), (9, 2.5)])
def test_the_covariance_is_symmetric_block_transpose_symmetric_and_psd_once_projected(kernel_size, sigma):
    k = kernel_size
    t = filter_covariance(k, sigma)
    rearranged = t.reshape(k * k, k * k)
    torch.testing.assert_close(rearranged, rearranged.T)  # symmetric in the rearranged form (eq. 3.1) ...
    torch.testing.assert_close(t, block_transpose(t))  # ... which is block-transpose symmetry in the block form
    # Mirroring the filter (both pixels of a pair) leaves it unchanged: construction_roots relies on it.
    torch.testing.assert_close(t, t.flip(0, 2))
    torch.testing.assert_close(t, t.flip(1, 3))
    bump = gaussian_bump(k, sigma)
    torch.testing.assert_close(shifted_bumps(bump), block_transpose(shifted_bumps(bump)))  # C^B = C
    assert bump[k // 2, k // 2] == 1.0 and bump[0, 0] == pytest.approx(math.exp(-2 * (k // 2) ** 2 / (2 * sigma)))
    psd = nearest_psd(rearranged)
    assert torch.linalg.eigvalsh(psd).min().item() > -1e-10
    # The diagonal: ½[M(C − S) + S·C] at pixel (i, j) is ½ Z_ij (2 − Z_ij): ½ at the centre.
    diagonal = torch.diagonal(rearranged).reshape(k, k)
    torch.testing.assert_close(diagonal, 0.5 * bump * (2 - bump))


def test_the_psd_root_keeps_one_column_per_positive_eigenvalue():
    k = 7
    covariance = filter_covariance(k, 1.0).reshape(k * k, k * k)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance.numpy())
    root = psd_root(covariance)
    assert root.shape == (k * k, (eigenvalues > 0).sum()) and root.shape[1] < k * k  # the construction is not PSD
    projected = (eigenvectors * np.clip(eigenvalues, 0, None)) @ eigenvectors.T
    np.testing.assert_allclose((root @ root.T).numpy(), projected, atol=1e-12)
    torch.testing.assert_close(nearest_psd(root @ root.T), root @ root.T)  # a PSD matrix is its own projection
    [cached] = construction_roots(k, [1.0])
    assert construction_roots(k, [2.0, 1.0])[1] is cached  # cached; batched with one not yet cached
    torch.testing.assert_close(cached @ cached.T, root @ root.T)  # (eigenvectors are unique only up to rotation)


@pytest.mark.parametrize("kernel_size", [1, 3, 5, 9])
def test_the_construction_roots_are_the_psd_projection_for_every_odd_size(kernel_size):
    k, sigmas = kernel_size, [0.3, 1.0, 2.5]
    clear_roots()
    for sigma, root in zip(sigmas, construction_roots(k, sigmas)):  # eigendecomposed by mirror symmetry, in blocks
        target = nearest_psd(filter_covariance(k, sigma).reshape(k * k, k * k))
        torch.testing.assert_close(root @ root.T, target, atol=1e-12, rtol=0)


def test_sampled_filters_have_the_projected_covariance_within_sampling_error():
    k, count = 5, 200_000
    target = nearest_psd(filter_covariance(k, 1.0).reshape(k * k, k * k))
    torch.manual_seed(0)
    [root] = construction_roots(k, [1.0])
    filters = sample_filters(root, count)
    _, empirical = empirical_covariance(filters)
    empirical = empirical.reshape(k * k, k * k)
    # Var of a sample covariance entry: (Σ_ii Σ_jj + Σ_ij²) / n.
    standard_error = ((torch.outer(target.diagonal(), target.diagonal()) + target**2) / count).sqrt()
    assert ((empirical - target).abs() / standard_error.clamp_min(1e-12)).max().item() < 5
    # Row-major: coordinate k·i + j of a sample is pixel (i, j).
    assert filters[:, k // 2, k // 2].var().item() == pytest.approx(target[(k * k) // 2, (k * k) // 2].item(), rel=0.02)


def test_the_schedule_widens_the_filters_with_depth(monkeypatch):
    seen = []
    construction = depthwise_conv.construction_roots

    def record(kernel_size, sigmas):
        seen.append(list(sigmas))
        return construction(kernel_size, sigmas)

    monkeypatch.setattr(depthwise_conv, "construction_roots", record)
    build("convmixer", mimetic_init=True, mimetic_config={"conv_sigma0": 0.5, "conv_sigma_velocity": 0.5,
                                                          "conv_sigma_acceleration": 3.0})  # fmt: skip
    expected = [sigma_schedule(d, 0.5, 0.5, 3.0) for d in (0.0, 0.5, 1.0)]
    assert expected == pytest.approx([0.5, 1.125, 2.5])
    # All layers at once when the plan is made (the base model's, then the head model's), then one per layer.
    batched, single = [s for s in seen if len(s) > 1], [s[0] for s in seen if len(s) == 1]
    assert len(batched) == 2 and all(s == pytest.approx(expected) for s in batched)
    assert single == pytest.approx(expected)


def test_covariance_filters_are_correlated_and_default_ones_are_not(family_conv):
    default, mimetic = build(family_conv), build(family_conv, mimetic_init=True)
    from hf_mimetic.inspect import structure

    for before, after in zip(structure(default), structure(mimetic)):
        assert abs(before["neighbour_correlation"]) < 0.1 and after["neighbour_correlation"] > 0.2


def test_replaced_filters_skip_their_native_draw_and_nothing_else_does(family_conv, monkeypatch):
    """The filters are overwritten entirely, so their native init is skipped (as for loaded weights); every other
    tensor still gets its native init, and no loaded-weight flag is left behind."""
    natively_drawn_default, _ = native_init_of(family_conv, monkeypatch)
    natively_drawn, written = native_init_of(family_conv, monkeypatch, mimetic_init=True)
    filters = {name for name in natively_drawn_default if "dwconv.weight" in name}
    assert filters and natively_drawn == natively_drawn_default - filters and filters <= written


@pytest.fixture(params=["convmixer", "convnext", "convnextv2"])
def family_conv(request) -> str:
    return request.param


#: Wide enough that the centre variance of each layer's filters is estimated to within a few percent: with n filters
#: its relative sd is √(2/(n−1)), so 5 sd is 44 % for n = 256 and 36 % for n = 384; filters scaled by √2 (variance
#: ×2) are far outside.
WIDE = {"convmixer": dict(hidden_size=384, depth=3), "convnext": dict(hidden_sizes=[256, 384], depths=[2, 1]),
        "convnextv2": dict(hidden_sizes=[256, 384], depths=[2, 1])}  # fmt: skip


def test_every_layers_filters_have_the_constructions_variance_at_its_depth(family_conv):
    """Read from the model's depthwise Conv2d layers (groups = channels), in order: the centre pixel's variance is
    the projected covariance's at σ(d) of the layer's relative depth, with the thesis's schedule and gain 1."""
    model = build(family_conv, config=config_of(family_conv, **WIDE[family_conv]), mimetic_init=True)
    recipe = model.config.mimetic_config
    schedule = tuple(recipe[k] for k in ("conv_sigma0", "conv_sigma_velocity", "conv_sigma_acceleration", "conv_gain"))
    assert schedule == (0.5, 0.5, 3.0, 1.0)  # thesis §3.1.2, Fig. 3.7; unnormalised construction
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups == m.in_channels > 1]
    assert len(convs) == 3
    for index, conv in enumerate(convs):
        k, n = conv.kernel_size[0], conv.out_channels
        sigma = sigma_schedule(index / (len(convs) - 1), *schedule[:3])
        covariance = nearest_psd(filter_covariance(k, sigma).reshape(k * k, k * k))
        centre = conv.weight.detach()[:, 0].reshape(n, k * k)[:, k * k // 2].double()
        expected = covariance[k * k // 2, k * k // 2].item()
        assert centre.var().item() == pytest.approx(expected, rel=5 * math.sqrt(2 / (n - 1))), (index, sigma)
        assert centre.mean().item() == pytest.approx(0.0, abs=5 * math.sqrt(expected / n))
        # The centre variance barely moves with σ (0.50–0.53); the correlation of the centre with its right
        # neighbour does (0.17 at σ(0) = 0.5, 0.63 at σ(1) = 2.5). Its Fisher transform atanh(r) has sd 1/√(n − 3).
        flat = conv.weight.detach()[:, 0].reshape(n, k * k).double()
        measured = torch.corrcoef(flat[:, [k * k // 2, k * k // 2 + 1]].T)[0, 1].item()
        correlation = (covariance[k * k // 2, k * k // 2 + 1] / covariance[k * k // 2 + 1, k * k // 2 + 1].sqrt() / math.sqrt(expected)).item()
        assert math.atanh(measured) == pytest.approx(math.atanh(correlation), abs=5 / math.sqrt(n - 3)), (index, sigma)


def test_conv_gain_multiplies_the_filters_and_nothing_else(family_conv):
    plain = build(family_conv, seed=3, mimetic_init=True).state_dict()
    doubled = build(family_conv, seed=3, mimetic_init=True, mimetic_config={"conv_gain": 2.0}).state_dict()
    filters = [key for key in plain if "dwconv.weight" in key]
    assert filters
    for key, value in plain.items():
        if key in filters:
            torch.testing.assert_close(doubled[key], 2 * value)
        else:
            assert torch.equal(doubled[key], value), key


def test_frozen_filters_do_not_train_and_the_rest_does():
    model = build("convmixer", mimetic_init=True, mimetic_config={"freeze_filters": True})
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loss = model(pixel_values=torch.randn(4, 3, 16, 16), labels=torch.tensor([0, 1, 2, 3])).loss
    loss.backward()
    optimizer.step()
    for name, p in model.named_parameters():
        changed = not torch.equal(before[name], p.detach())
        assert changed is not name.endswith("dwconv.weight"), name


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"conv_sigma0": -1.0}, r"conv_sigma0 must be a number in \(0.0, 100.0\], got -1.0"),
        ({"conv_sigma0": 0.1, "conv_sigma_velocity": -1.0}, r"σ\(d\) = .* must stay > 0 for d in \[0, 1\]; with 0.1, -1.0, 3.0 it reaches"),
        ({"conv_gain": math.inf}, r"conv_gain must be a number in \(0.0, 100.0\], got inf"),
        ({"conv_sigma_0": 1.0}, r"unknown mimetic_config key 'conv_sigma_0'; valid keys for convmixer"),
        ({"qk_beta": 0.5}, r"'qk_beta' does not apply to convmixer models \(it has no attention layer"),
    ],
)
def test_bad_conv_settings_name_the_valid_range(settings, message):
    with pytest.raises(ValueError, match=message):
        build("convmixer", mimetic_init=True, mimetic_config=settings)


def test_an_even_kernel_is_refused_with_the_reason():
    config = AutoConfig.for_model("convmixer", hidden_size=16, depth=2, kernel_size=4, num_labels=2)
    with pytest.raises(ValueError, match=r"needs square filters of odd size .*got 4×4"):
        AutoModelForImageClassification.from_config(config, mimetic_init=True)
    AutoModelForImageClassification.from_config(config)  # without the init, any kernel is fine


# ------------------------------------------------------------------------------------------------------- transfer
def test_covariance_transfer_reproduces_the_source_statistics_at_another_depth():
    torch.manual_seed(0)
    source = AutoModelForImageClassification.from_config(ConvMixerConfig(hidden_size=512, depth=2, kernel_size=3, num_labels=2))
    shapes = [torch.tensor([[0, 1, 0], [1, 4, 1], [0, 1, 0]]), torch.tensor([[1, 1, 1], [1, 1, 1], [1, 1, 1]])]
    with torch.no_grad():  # give each source layer filters with a known structure: shape × random amplitude
        for layer, shape in zip(source.convmixer.layers, shapes):
            layer.dwconv.weight.copy_(shape.float() * torch.randn(512, 1, 1, 1))
    target = AutoModelForImageClassification.from_config(ConvMixerConfig(hidden_size=4096, depth=3, kernel_size=3, num_labels=2))
    transfer_filter_covariance(source, target)
    middle = 0.5 * (torch.outer(shapes[0].flatten(), shapes[0].flatten()) + torch.outer(shapes[1].flatten(), shapes[1].flatten()))
    for layer, expected in zip(target.convmixer.layers, [None, middle, None]):
        _, covariance = empirical_covariance(layer.dwconv.weight.detach()[:, 0])
        if expected is not None:  # the middle layer sits halfway between the two source layers
            torch.testing.assert_close(covariance.reshape(9, 9).float(), expected.float(), atol=0.5, rtol=0.15)
    first = empirical_covariance(target.convmixer.layers[0].dwconv.weight.detach()[:, 0])[1].reshape(9, 9)
    assert first[4, 4].item() == pytest.approx(16, rel=0.1) and abs(first[0, 0].item()) < 0.1
    other = AutoModelForImageClassification.from_config(ConvMixerConfig(hidden_size=8, depth=2, kernel_size=5, num_labels=2))
    with pytest.raises(ValueError, match=r"filter sizes differ: source 3×3, target 5×5"):
        transfer_filter_covariance(source, other)


# ------------------------------------------------------------------------------------------- ConvMixer the model
def test_convmixer_forward_shapes_and_round_trip(tmp_path):
    config = ConvMixerConfig(hidden_size=16, depth=2, kernel_size=5, patch_size=2, num_labels=3)
    model = AutoModelForImageClassification.from_config(config, mimetic_init=True)
    output = model(pixel_values=torch.randn(2, 3, 12, 12), output_hidden_states=True)
    assert output.logits.shape == (2, 3) and len(output.hidden_states) == 3
    assert output.hidden_states[-1].shape == (2, 16, 6, 6)
    base = AutoModel.from_config(config)
    assert type(base).__name__ == "ConvMixerModel" and base(torch.randn(1, 3, 8, 8)).pooler_output.shape == (1, 16)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path)
    assert loaded.config.mimetic_config["initialized"] == {"conv": [0, 1]}
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    with pytest.raises(ValueError, match=r"ConvMixerConfig.kernel_size must be an integer >= 1, got 0"):
        ConvMixerConfig(kernel_size=0)


def test_the_script_trains_a_convmixer_and_a_pipeline_uses_it(tmp_path):
    folder = write_imagefolder(tmp_path / "images")
    output = tmp_path / "out"
    argv = [*IMAGE_TINY, "--model_type", "convmixer", "--kernel_size", "3", "--train_dir", str(folder), "--output_dir",
            str(output), "--max_steps", "2", "--save_strategy", "no", "--eval_strategy", "no", "--mimetic_init",
            "--freeze_filters", "true"]  # fmt: skip
    results = train_image_classification.main(argv)
    assert 0.0 <= results["eval_accuracy"] <= 1.0
    classify = pipeline("image-classification", model=str(output), device="cpu")
    predictions = classify(str(next(folder.rglob("*.png"))))
    assert {p["label"] for p in predictions} <= {"cat", "dog"} and len(predictions) == 2
    config = AutoConfig.from_pretrained(output)
    assert config.model_type == "convmixer" and config.mimetic_config["freeze_filters"] is True
    # Covariance transfer from that run (a ConvMixerForImageClassification folder, head included). With lr 0 the
    # saved filters are the transferred init: the source's scale (frozen covariance filters, centre variance ½),
    # not the default init's (uniform, variance 1/27 for 3×3 filters).
    transferred = tmp_path / "transferred"
    train_image_classification.main([*argv[: argv.index("--output_dir")], "--output_dir", str(transferred),
                                     "--max_steps", "1", "--save_strategy", "no", "--eval_strategy", "no",
                                     "--learning_rate", "0", "--filter_covariance_from", str(output)])  # fmt: skip
    filters = lambda folder: AutoModelForImageClassification.from_pretrained(folder).convmixer.layers[0].dwconv.weight  # noqa: E731
    source, new = filters(output).detach(), filters(transferred).detach()
    assert not torch.equal(source, new)
    assert new[:, 0, 1, 1].std().item() == pytest.approx(source[:, 0, 1, 1].std().item(), rel=0.35)
    assert new[:, 0, 1, 1].std().item() > 2 * math.sqrt(1 / 27)
