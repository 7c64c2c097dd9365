"""The pure maths: factor constructions, noise, position tables and SSM rules, without transformers."""

from __future__ import annotations

import math

import pytest
import torch

from hf_mimetic.maths.attention import (
    attention_noise,
    expected_qk_diagonal,
    qk_factors,
    randomized_svd,
    vo_factors,
)
from hf_mimetic.maths.positions import sinusoidal_1d, sinusoidal_2d
from hf_mimetic.maths.ssm import DELTA_ONE_BIAS, bc_draw_std, correlated_readout, identity_conv_kernel


def diag_and_offdiag_std(products: torch.Tensor) -> tuple[float, float]:
    diag = products.diagonal(dim1=-2, dim2=-1)
    off = products - torch.diag_embed(diag)
    d = products.shape[-1]
    return diag.mean().item(), (off.pow(2).sum((-2, -1)) / (d * d - d)).sqrt().mean().item()


@pytest.mark.parametrize("distribution", ["normal", "uniform"])
def test_noise_has_variance_one_over_d(distribution):
    torch.manual_seed(0)
    z = attention_noise(8, 128, 128, distribution=distribution)
    assert z.mean().abs() < 3e-3
    assert z.var().item() == pytest.approx(1 / 128, rel=0.02)
    if distribution == "uniform":
        assert z.abs().max() <= math.sqrt(3 / 128)


def test_exact_qk_is_the_best_rank_k_approximation_of_the_target():
    d, k, heads, alpha, beta = 48, 8, 3, 0.7, 0.7
    torch.manual_seed(1)
    target = alpha * attention_noise(heads, d, d) + beta * torch.eye(d)
    torch.manual_seed(1)  # qk_factors draws the same noise first
    wq, wk = qk_factors(heads, d, k, alpha, beta, svd="exact")
    assert wq.shape == wk.shape == (heads, d, k)
    u, s, vh = torch.linalg.svd(target)
    best = u[..., :k] @ torch.diag_embed(s[..., :k]) @ vh[..., :k, :]
    torch.testing.assert_close(wq @ wk.mT, best, atol=1e-5, rtol=1e-4)
    # Balanced factors: W_Q and W_K share the singular values √σ.
    torch.testing.assert_close(torch.linalg.svdvals(wq), s[..., :k].sqrt(), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("d,k,alpha,beta,tolerance", [(192, 64, 0.7, 0.7, 0.04), (384, 64, 0.7, 0.7, 0.08), (256, 32, 0.2, 0.5, 0.08)])
def test_randomized_qk_statistics_match_the_exact_construction(d, k, alpha, beta, tolerance):
    torch.manual_seed(0)
    exact = diag_and_offdiag_std(torch.matmul(*_pair(qk_factors(6, d, k, alpha, beta, svd="exact"))))
    torch.manual_seed(1)
    fast = diag_and_offdiag_std(torch.matmul(*_pair(qk_factors(6, d, k, alpha, beta, svd="randomized"))))
    assert fast[0] == pytest.approx(exact[0], rel=tolerance)
    assert fast[1] == pytest.approx(exact[1], rel=tolerance)
    # The truncation lowers the diagonal below β but keeps it above that of a random rank-k projection of β·I.
    assert beta * k / d < exact[0] < beta


def _pair(factors):
    wq, wk = factors
    return wq, wk.mT


def test_randomized_svd_recovers_a_low_rank_matrix():
    torch.manual_seed(0)
    a = torch.randn(2, 60, 5) @ torch.randn(2, 5, 40)
    u, s, v = randomized_svd(a, rank=5)
    torch.testing.assert_close(u @ torch.diag_embed(s) @ v.mT, a, atol=1e-4, rtol=1e-4)


def test_qk_with_alpha_zero_gives_each_head_its_own_basis():
    torch.manual_seed(0)
    d, k, beta = 64, 16, 0.5
    wq, wk = qk_factors(4, d, k, 0.0, beta)
    torch.testing.assert_close(wq, wk)
    products = wq @ wk.mT
    # β times an orthogonal projection of rank k: eigenvalues β (k times) and 0.
    eig = torch.linalg.eigvalsh(products)
    torch.testing.assert_close(eig[:, -k:], torch.full((4, k), beta), atol=1e-5, rtol=0)
    torch.testing.assert_close(eig[:, :-k], torch.zeros(4, d - k), atol=1e-5, rtol=0)
    assert not torch.allclose(products[0], products[1], atol=1e-3), "heads must not share a basis"


@pytest.mark.parametrize("sign", [-1, 1])
def test_vo_product_is_exactly_the_target(sign):
    d, alpha, beta = 64, 0.4, 0.4
    torch.manual_seed(3)
    target = alpha * attention_noise(d, d) + sign * beta * torch.eye(d)
    torch.manual_seed(3)
    wv, wo = vo_factors(d, alpha, beta, sign=sign)
    torch.testing.assert_close(wv @ wo, target, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(torch.linalg.svdvals(wv), torch.linalg.svdvals(wo), atol=1e-5, rtol=1e-4)
    assert (wv @ wo).diagonal().mean().item() == pytest.approx(sign * beta, abs=0.05)


def test_vo_rejects_a_bad_sign():
    with pytest.raises(ValueError, match="vo_sign must be -1 or \\+1, got 0"):
        vo_factors(8, 0.4, 0.4, sign=0)


def test_expected_qk_diagonal_lies_between_its_bounds():
    value = expected_qk_diagonal(192, 64, 0.7, 0.7)
    assert 0.7 * 64 / 192 < value < 0.7


def test_sinusoidal_1d_follows_vaswani_and_is_shift_invariant():
    table = sinusoidal_1d(50, 16)
    t, i = 7, 3
    omega = 10000 ** (-2 * i / 16)
    assert table[t, 2 * i].item() == pytest.approx(math.sin(t * omega), abs=1e-6)
    assert table[t, 2 * i + 1].item() == pytest.approx(math.cos(t * omega), abs=1e-6)
    gram = table @ table.T  # P Pᵀ depends only on the distance between positions
    torch.testing.assert_close(gram.diagonal(offset=3)[:-1], gram.diagonal(offset=3)[1:], atol=1e-4, rtol=0)
    assert sinusoidal_1d(5, 7).shape == (5, 7)


def test_sinusoidal_2d_encodes_row_then_column():
    table = sinusoidal_2d(3, 4, 16).view(3, 4, 16)
    rows, cols = sinusoidal_1d(3, 8), sinusoidal_1d(4, 8)
    torch.testing.assert_close(table[:, :, :8], rows[:, None, :].expand(3, 4, 8))
    torch.testing.assert_close(table[:, :, 8:], cols[None, :, :].expand(3, 4, 8))


def test_delta_bias_gives_delta_one():
    assert torch.nn.functional.softplus(torch.tensor(DELTA_ONE_BIAS)).item() == pytest.approx(1.0, abs=1e-7)


def test_identity_conv_reproduces_its_input():
    x = torch.randn(2, 6, 11)
    kernel = identity_conv_kernel(6, 4)
    y = torch.nn.functional.conv1d(x, kernel, padding=3, groups=6)[..., :11]  # transformers' causal conv
    torch.testing.assert_close(y, x)


def test_bc_draw_std_gives_the_target_diagonal():
    torch.manual_seed(0)
    n, d, target = 32, 2000, 0.5
    std = bc_draw_std(n, target)
    w_b, w_c = torch.randn(n, d) * std, torch.randn(n, d) * std
    diag = (correlated_readout(w_b, w_c) * w_b).sum(0)
    assert diag.mean().item() == pytest.approx(target, rel=0.05)
    with pytest.raises(ValueError, match="must be > 0, got 0"):
        bc_draw_std(n, 0)
