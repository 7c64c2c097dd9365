"""Fast Mamba 1 selective scan (hf_mimetic.ops.selective_scan) against the references.

References: a tiny naive loop written here (the Mamba recurrence h_t = Ā_t h_{t-1} + B̄_t x_t, y_t = C_t h_t),
and transformers' own torch ``mamba_selective_scan`` (what ``MambaMixer`` runs without mamba-ssm).

Tolerance: errors are measured as max|actual − expected| / max|expected| (element-wise relative error is
meaningless for entries that cancel to ~0). float32: 1e-5. Summation order differs from the references (blocked
scan, per-block reductions for dA), so agreement is limited by float32 rounding of sums over up to T·batch terms;
measured ≤ 2e-6 at T=1024 with Ā≈1, where the float32 naive loop itself is 1.6e-6 away from float64.
float64: 1e-12. bfloat16 (inputs only; both compute in float32): 2e-2, i.e. a few bf16 ulps.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import MambaConfig, MambaForCausalLM
from transformers.models.mamba import modeling_mamba

from hf_mimetic.ops import selective_scan as ss

TOL = {torch.float32: 1e-5, torch.float64: 1e-12, torch.bfloat16: 2e-2}
needs_torch_path = pytest.mark.skipif(ss.mamba_kernels_available(), reason="mamba-ssm installed: scan not patched")


@pytest.fixture(autouse=True)
def _restore_patch_state(monkeypatch):
    """Each test starts from transformers' original scan and leaves the module as it found it."""
    monkeypatch.delenv(ss.ENV_VAR, raising=False)
    saved = modeling_mamba.mamba_selective_scan
    ss.disable_fast_mamba_scan()
    yield
    modeling_mamba.mamba_selective_scan = saved


@pytest.fixture
def fast_calls(monkeypatch):
    """Records the keyword arguments of every call that reaches the fast scan through the dispatcher."""
    calls = []
    fast = ss.mamba_selective_scan_fast

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return fast(*args, **kwargs)

    monkeypatch.setattr(ss, "mamba_selective_scan_fast", spy)
    return calls


def rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    expected = expected.double()
    return ((actual.double() - expected).abs().max() / expected.abs().max().clamp_min(1e-300)).item()


def assert_all_close(actual, expected, tol: float, names=None) -> None:
    for i, (a, e) in enumerate(zip(actual, expected)):
        name = names[i] if names else i
        if e is None:
            assert a is None or not a.abs().max().item(), name
            continue
        assert a.shape == e.shape and a.dtype == e.dtype, (name, a.shape, e.shape, a.dtype, e.dtype)
        assert torch.isfinite(a).all(), name
        assert rel_err(a, e) <= tol, (name, rel_err(a, e))


def naive_scan(u, delta, A, B, C, h0=None):
    """h_t = exp(Δ_t A) ⊙ h_{t-1} + (Δ_t u_t) ⊗ B_t ;  y_t = Σ_n C_t[n] h_t[:, n]."""
    h = u.new_zeros(u.shape[0], u.shape[1], A.shape[1]) if h0 is None else h0
    ys = []
    for t in range(u.shape[-1]):
        h = torch.exp(delta[:, :, t, None] * A) * h + (delta[:, :, t] * u[:, :, t])[..., None] * B[:, None, :, t]
        ys.append((h * C[:, None, :, t]).sum(-1))
    return torch.stack(ys, -1), h


def scan_inputs(b, E, N, T, dtype, regime="default", seed=0):
    """Random (u, Δ, A, B, C, h0). regime: default (A=-n), mimetic (A_log−8: Ā≈1), large (A·Δ ≫ 1: Ā underflows)."""
    g = torch.Generator().manual_seed(seed)
    shift, dt_shift = {"default": (0.0, -1.0), "mimetic": (-8.0, 0.5), "large": (3.0, 3.0)}[regime]
    A_log = torch.log(torch.arange(1, N + 1, dtype=torch.float64)).expand(E, N) + shift
    A = -torch.exp(A_log + 0.1 * torch.randn(E, N, generator=g, dtype=torch.float64))
    u = torch.randn(b, E, T, generator=g, dtype=torch.float64)
    delta = F.softplus(torch.randn(b, E, T, generator=g, dtype=torch.float64) + dt_shift)
    B, C = (torch.randn(b, N, T, generator=g, dtype=torch.float64) for _ in range(2))
    h0 = torch.randn(b, E, N, generator=g, dtype=torch.float64)
    return [t.to(dtype).requires_grad_() for t in (u, delta, A, B, C, h0)]


# ---------------------------------------------------------------- core scan vs the naive loop


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "b, E, N, T, block, regime",
    [
        (2, 3, 4, 1, None, "default"),
        (2, 3, 4, 37, 8, "default"),  # T not a multiple of the block
        (3, 5, 2, 64, 1, "mimetic"),  # one step per block
        (2, 4, 3, 50, None, "large"),  # Ā underflows to 0
        (1, 4, 3, 1024, None, "mimetic"),  # long sequence, Ā ≈ 1
        (1, 4, 3, 1024, 48, "default"),
    ],
)
@pytest.mark.parametrize("with_h0", [False, True])
def test_core_matches_naive_loop(b, E, N, T, block, regime, dtype, with_h0):
    u, delta, A, B, C, h0 = scan_inputs(b, E, N, T, dtype, regime)
    h0 = h0 if with_h0 else None
    inputs = [u, delta, A, B, C] + ([h0] if with_h0 else [])
    y, h = ss.selective_scan_core(u, delta, A, B, C, initial_state=h0, block_size=block)
    y_ref, h_ref = naive_scan(u, delta, A, B, C, h0)
    assert_all_close([y, h], [y_ref, h_ref], TOL[dtype], ["y", "last_state"])
    gy, gh = torch.randn_like(y), torch.randn_like(h)
    grads = torch.autograd.grad((y * gy).sum() + (h * gh).sum(), inputs)
    grads_ref = torch.autograd.grad((y_ref * gy).sum() + (h_ref * gh).sum(), inputs)
    assert_all_close(grads, grads_ref, TOL[dtype], ["u", "delta", "A", "B", "C", "h0"])


def test_core_partial_grads_and_no_grad():
    u, delta, A, B, C, _ = scan_inputs(2, 3, 4, 20, torch.float32)
    # Only y used (last-state cotangent is None) and only some inputs need grad.
    y = ss.selective_scan_core(u.detach(), delta, A.detach(), B, C.detach(), block_size=6)[0]
    g_delta, g_B = torch.autograd.grad(y.square().sum(), [delta, B])
    y_ref = naive_scan(u.detach(), delta, A.detach(), B, C.detach())[0]
    assert_all_close([g_delta, g_B], torch.autograd.grad(y_ref.square().sum(), [delta, B]), TOL[torch.float32])
    with torch.no_grad():
        assert rel_err(ss.selective_scan_core(u, delta, A, B, C)[0], y_ref) <= TOL[torch.float32]


def test_core_bfloat16_computes_in_float32():
    u, delta, A, B, C, _ = scan_inputs(2, 3, 4, 30, torch.bfloat16, "mimetic")
    y, h = ss.selective_scan_core(u, delta, A, B, C)
    assert y.dtype == h.dtype == torch.float32
    y_ref, h_ref = naive_scan(*(t.float() for t in (u, delta, A, B, C)))
    assert_all_close([y, h], [y_ref, h_ref], TOL[torch.float32])


# ---------------------------------------------------------------- drop-in vs transformers' reference scan


@pytest.mark.parametrize(
    "T, regime, dtype",
    [
        (T, regime, dtype)
        for T, regime in [(1, "default"), (37, "mimetic"), (1024, "mimetic"), (40, "large")]
        for dtype in (torch.float32, torch.float64, torch.bfloat16)
        if not (T == 1024 and dtype == torch.bfloat16)  # bf16 round-off over 1024 steps says nothing more
    ],
)
def test_drop_in_matches_transformers_reference(T, regime, dtype):
    b, E, N = (1, 4, 3) if T == 1024 else (2, 6, 4)
    u, _, A, B, C, _ = scan_inputs(b, E, N, T, dtype, regime)
    g = torch.Generator().manual_seed(1)
    # MambaMixer passes A and D (and the dt bias) in float32, everything else in the model dtype.
    dt_bias = {"default": -1.0, "mimetic": 0.5, "large": 3.0}[regime]
    dt = (0.5 * torch.randn(b, E, T, generator=g)).to(dtype).requires_grad_()
    z = torch.randn(b, E, T, generator=g).to(dtype).requires_grad_()
    D = torch.randn(E, generator=g).requires_grad_()
    delta_bias = torch.full((E,), dt_bias).requires_grad_()
    A = A.detach().float().requires_grad_()
    inputs = [u, dt, A, B, C, D, z, delta_bias]
    kwargs = {"D": D, "z": z, "delta_bias": delta_bias, "delta_softplus": True, "return_last_state": True}
    reference = modeling_mamba.mamba_selective_scan  # the autouse fixture disabled the patch
    assert not hasattr(reference, ss._MARKER)
    out, state = ss.mamba_selective_scan_fast(u, dt, A, B, C, **kwargs)
    out_ref, state_ref = reference(u, dt, A, B, C, **kwargs)
    tol = TOL[dtype]
    assert_all_close([out, state], [out_ref, state_ref], tol, ["out", "state"])
    g_out = torch.randn(out.shape, generator=g).to(out.dtype)
    grads = torch.autograd.grad((out * g_out).sum() + state.sum(), inputs)
    grads_ref = torch.autograd.grad((out_ref * g_out).sum() + state_ref.sum(), inputs)
    assert_all_close(grads, grads_ref, tol, ["x", "dt", "A", "B", "C", "D", "z", "delta_bias"])


# ---------------------------------------------------------------- whole model, patched vs unpatched


def tiny_mamba(dtype=torch.float32, mimetic=False, seed=0) -> MambaForCausalLM:
    torch.manual_seed(seed)
    config = MambaConfig(vocab_size=40, hidden_size=16, state_size=8, num_hidden_layers=2, expand=2, conv_kernel=4)
    model = MambaForCausalLM(config).to(dtype)
    if mimetic:
        with torch.no_grad():
            for layer in model.backbone.layers:
                layer.mixer.A_log -= 8.0  # A ≈ −3e-4·n, Ā ≈ 1 (the mimetic regime)
                layer.mixer.dt_proj.bias.fill_(0.5413)  # softplus⁻¹(1): Δ ≈ 1
    return model


def loss_and_grads(model, ids):
    model.zero_grad(set_to_none=True)
    logits = model(ids).logits
    loss = F.cross_entropy(logits.flatten(0, 1), ids.flatten())  # (not shifted, so that T = 1 works too)
    loss.backward()
    return [logits.detach(), loss.detach()], {n: p.grad.clone() for n, p in model.named_parameters()}


@needs_torch_path
@pytest.mark.parametrize("dtype, mimetic, T", [(torch.float32, False, 45), (torch.float32, True, 45),
                                               (torch.float64, True, 45), (torch.float32, False, 1)])  # fmt: skip
def test_model_outputs_and_parameter_grads_match(dtype, mimetic, T, fast_calls):
    model = tiny_mamba(dtype, mimetic).train()
    ids = torch.randint(0, 40, (3, T), generator=torch.Generator().manual_seed(0))
    with ss.fast_mamba_scan() as active:
        assert active
        outputs, grads = loss_and_grads(model, ids)
    assert len(fast_calls) == 2  # one per layer: the fast path really ran
    outputs_ref, grads_ref = loss_and_grads(model, ids)
    assert len(fast_calls) == 2
    assert_all_close(outputs, outputs_ref, TOL[dtype], ["logits", "loss"])
    assert grads.keys() == grads_ref.keys()
    assert_all_close(list(grads.values()), list(grads_ref.values()), TOL[dtype], list(grads))


@needs_torch_path
def test_generate_matches_reference(fast_calls):
    model = tiny_mamba(mimetic=True, seed=1).eval()
    prompt = torch.randint(0, 40, (2, 9), generator=torch.Generator().manual_seed(1))
    kwargs = {"max_new_tokens": 6, "do_sample": False, "output_scores": True, "return_dict_in_generate": True}
    with ss.fast_mamba_scan():
        fast = model.generate(prompt, **kwargs)
    assert len(fast_calls) == 2 and all(c["return_last_state"] for c in fast_calls)  # prefill only
    ref = model.generate(prompt, **kwargs)
    assert torch.equal(fast.sequences, ref.sequences)
    assert_all_close(fast.scores, ref.scores, TOL[torch.float32])


@needs_torch_path
def test_cached_decoding_matches_reference_and_full_forward(fast_calls):
    """Prefill with a cache (fast scan must return the final state), then single-token steps with the cache."""
    model = tiny_mamba(seed=2).eval()
    ids = torch.randint(0, 40, (2, 12), generator=torch.Generator().manual_seed(2))

    def decode():
        out = model(ids[:, :8], use_cache=True)
        logits, cache = [out.logits[:, -1]], out.cache_params
        for t in range(8, 12):
            out = model(ids[:, t : t + 1], cache_params=cache, use_cache=True)
            logits.append(out.logits[:, -1])
        states = [cache.layers[i].recurrent_states[0].clone() for i in range(len(model.backbone.layers))]
        return logits, states

    with torch.no_grad():
        with ss.fast_mamba_scan():
            logits, states = decode()
            full = model(ids).logits[:, 7:]
        # Prefill and full forward (2 layers each, with final state); decoding steps use the one-step update.
        assert len(fast_calls) == 4 and all(c["return_last_state"] for c in fast_calls)
        logits_ref, states_ref = decode()
    assert_all_close(logits, logits_ref, TOL[torch.float32])
    assert_all_close(states, states_ref, TOL[torch.float32])
    assert_all_close(logits, list(full.unbind(1)), 1e-5)  # cache path == recomputing the whole prefix


# ---------------------------------------------------------------- enable / disable / env var


@needs_torch_path
def test_enable_disable_idempotent():
    original = modeling_mamba.mamba_selective_scan
    assert not ss.is_fast_mamba_scan_enabled()
    assert ss.enable_fast_mamba_scan() is True
    patched = modeling_mamba.mamba_selective_scan
    assert patched is not original and ss.is_fast_mamba_scan_enabled()
    assert ss.enable_fast_mamba_scan() is True
    assert modeling_mamba.mamba_selective_scan is patched  # not wrapped twice
    assert ss.disable_fast_mamba_scan() is True
    assert modeling_mamba.mamba_selective_scan is original
    assert ss.disable_fast_mamba_scan() is False
    with ss.fast_mamba_scan():
        assert ss.is_fast_mamba_scan_enabled()
        with ss.fast_mamba_scan(False) as active:
            assert not active and modeling_mamba.mamba_selective_scan is original
        assert ss.is_fast_mamba_scan_enabled()
    assert modeling_mamba.mamba_selective_scan is original


@needs_torch_path
def test_env_var_turns_it_off(monkeypatch, fast_calls):
    model = tiny_mamba()
    ids = torch.randint(0, 40, (1, 5))
    calls = fast_calls
    monkeypatch.setenv(ss.ENV_VAR, "0")
    assert ss.enable_fast_mamba_scan() is False
    assert not hasattr(modeling_mamba.mamba_selective_scan, ss._MARKER)
    monkeypatch.delenv(ss.ENV_VAR)
    assert ss.enable_fast_mamba_scan() is True
    model(ids)
    assert len(calls) == 2
    monkeypatch.setenv(ss.ENV_VAR, "off")  # an installed patch defers to transformers at call time
    assert not ss.is_fast_mamba_scan_enabled()
    model(ids)
    assert len(calls) == 2


def test_not_patched_when_mamba_kernels_available(monkeypatch):
    monkeypatch.setattr(ss, "mamba_kernels_available", lambda: True)
    assert ss.enable_fast_mamba_scan() is False
    assert not hasattr(modeling_mamba.mamba_selective_scan, ss._MARKER)
