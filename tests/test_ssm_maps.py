"""Mamba's attention maps: M (thesis eq. 3.34) reproduces the recurrence and the mixers' own scans."""

from __future__ import annotations

import pytest
import torch
from conftest import build, gpt2_config, mamba2_config, mamba_config
from transformers.models.mamba import modeling_mamba
from transformers.models.mamba2 import modeling_mamba2

from hf_mimetic.inspect.ssm_maps import attention_maps, capture_scan_inputs
from hf_mimetic.maths.ssm import ssm_attention_matrix


def recurrent_scan(x, delta, a, b, c):
    """The selective scan step by step: h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t x_t, y_t = C_t · h_t."""
    batch, length, heads, channels = x.shape
    a = a if a.dim() == 2 else a[:, None].expand(-1, b.shape[-1])
    h = torch.zeros(batch, heads, channels, a.shape[1], dtype=torch.float64)
    ys = []
    for t in range(length):
        a_bar = torch.exp(delta[:, t, :, None] * a)[:, :, None]  # (batch, heads, 1, N)
        h = a_bar * h + (delta[:, t, :, None, None] * x[:, t, :, :, None]) * b[:, t, :, None, :]
        ys.append((h * c[:, t, :, None, :]).sum(-1))
    return torch.stack(ys, dim=1)


@pytest.mark.parametrize("per_state_a", [True, False], ids=["mamba-A(H,N)", "mamba2-A(H)"])
def test_matrix_reproduces_the_recurrence(per_state_a):
    torch.manual_seed(0)
    batch, length, heads, channels, state = 2, 9, 3, 2, 4
    x = torch.randn(batch, length, heads, channels, dtype=torch.float64)
    delta = torch.rand(batch, length, heads, dtype=torch.float64) + 0.1
    a = -torch.rand(heads, state, dtype=torch.float64) if per_state_a else -torch.rand(heads, dtype=torch.float64)
    shared = 1 if per_state_a else heads  # Mamba 1 shares B, C across channels
    b, c = torch.randn(batch, length, shared, state), torch.randn(batch, length, shared, state)
    # A tiny block bound forces the blocked path to split the channels.
    m = ssm_attention_matrix(delta, a, b, c, max_block_elements=1)
    assert m.shape == (batch, heads, length, length)
    assert torch.all(m.triu(diagonal=1) == 0)
    y = torch.einsum("bhij,bjhp->bihp", m.double(), x)
    torch.testing.assert_close(y, recurrent_scan(x, delta, a, b.double(), c.double()), atol=1e-5, rtol=1e-5)


def record_pure_scan(monkeypatch, module, name: str) -> list[torch.Tensor]:
    """Wrap transformers' scan so that each call also records its output without the D skip and the gate."""
    original, outputs = getattr(module, name), []

    def scan(*args, **kwargs):
        outputs.append(original(*args, **{**kwargs, "D": None, "z": None}))
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, scan)
    return outputs


CASES = {
    "mamba": (mamba_config, modeling_mamba, "mamba_selective_scan", lambda y: y.transpose(1, 2)[..., None]),
    "mamba2": (lambda **kw: mamba2_config(chunk_size=16, **kw), modeling_mamba2, "mamba2_chunk_scan", lambda y: y),
}


@pytest.mark.parametrize("mimetic", [False, True], ids=["default", "mimetic"])
@pytest.mark.parametrize("family", sorted(CASES))
def test_m_times_x_is_the_mixers_scan_output(family, mimetic, monkeypatch):
    make_config, module, scan_name, to_bthp = CASES[family]
    model = build(family, config=make_config(num_hidden_layers=2), mimetic_init=mimetic)
    input_ids = torch.randint(0, 32, (2, 40))  # longer than the Mamba 2 chunk, so the inter-chunk path counts
    outputs = record_pure_scan(monkeypatch, module, scan_name)
    captured = capture_scan_inputs(model, input_ids)
    assert len(captured) == len(outputs) == 2
    for inputs, expected in zip(captured, outputs):
        actual = inputs.scan_output()
        scale = expected.abs().max().item()
        torch.testing.assert_close(actual, to_bthp(expected).float(), atol=1e-4 * scale, rtol=1e-4)


def test_attention_maps_average_channels_per_layer():
    model = build("mamba2", config=mamba2_config(num_hidden_layers=2), mimetic_init=True)
    input_ids = torch.randint(0, 32, (1, 12))
    maps = attention_maps(model, input_ids)
    assert maps.shape == (2, 1, 12, 12)
    first_layer = capture_scan_inputs(model, input_ids)[0].matrix()
    torch.testing.assert_close(maps[0], first_layer.mean(dim=1))
    assert model.training  # build() returns a model in train mode, and the capture restores it


def test_attention_maps_reject_models_without_a_mamba_mixer():
    with pytest.raises(ValueError, match="GPT2LMHeadModel has no SSM mixer that hf_mimetic recognises"):
        attention_maps(build("gpt2", config=gpt2_config()), torch.zeros(1, 4, dtype=torch.long))
