"""Training-step time of Mamba 1 on CPU: transformers' reference scan vs hf_mimetic's fast scan, and Mamba 2.

One forward + backward of ``MambaForCausalLM`` (LM loss on random tokens) per step, for each sequence length,
with transformers' torch fallback scan ("reference") and with ``hf_mimetic.ops.selective_scan`` ("fast") on the
same weights and batch, next to a same-size ``Mamba2ForCausalLM`` on its torch (SSD chunked) path.

The reference backward is O(T²) (see the module docstring of ``hf_mimetic.ops.selective_scan``), so it is only
*measured* up to ``--ref-max-length``; longer lengths get an estimate from a fit ``t = a·T + b·T²`` through the
measured points, labelled "extrapolated" in the table.

Example (the command used for docs/RESULTS.md, "The fast Mamba 1 scan")::

    python benchmarks/bench_mamba_scan.py --lengths 128,256,1024 --steps 3 --ref-max-length 256
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch
import transformers
from transformers import Mamba2Config, Mamba2ForCausalLM, MambaConfig, MambaForCausalLM

from hf_mimetic.ops.selective_scan import fast_mamba_scan, mamba_kernels_available


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hidden", type=int, default=128, help="hidden size (d_model)")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--state", type=int, default=32, help="SSM state size N")
    p.add_argument("--expand", type=int, default=2)
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lengths", type=str, default="128,256,1024", help="comma-separated sequence lengths")
    p.add_argument("--steps", type=int, default=3, help="timed steps per (model, length); median reported")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps before timing (fast and Mamba 2)")
    p.add_argument("--ref-steps", type=int, default=1, help="timed steps of the reference (no warmup)")
    p.add_argument("--ref-max-length", type=int, default=256, help="measure the reference only up to this T")
    p.add_argument("--no-ref", action="store_true", help="skip the reference entirely")
    p.add_argument("--mamba2-head-dim", type=int, default=64)
    p.add_argument("--mamba2-chunk", type=int, default=256, help="Mamba 2 SSD chunk size (transformers default)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def time_steps(step: Callable[[], torch.Tensor], steps: int, warmup: int) -> tuple[float, torch.Tensor]:
    """Median seconds per call of ``step`` over ``steps`` timed calls after ``warmup`` untimed ones; last logits."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        logits = step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), logits


def train_step(model: torch.nn.Module, ids: torch.Tensor) -> Callable[[], torch.Tensor]:
    """One forward + backward with the LM loss (no optimizer step, weights stay fixed); returns the logits."""

    def step() -> torch.Tensor:
        model.zero_grad(set_to_none=True)
        out = model(ids, labels=ids)
        out.loss.backward()
        return out.logits.detach()

    return step


def fit_reference(measured: dict[int, float], length: int) -> float:
    """Estimate the reference time at ``length`` from ``t = a·T + b·T²``, a, b ≥ 0, fitted to the measured times.

    The reference forward is linear in T and its backward quadratic; with one point (or a fit that would make a
    coefficient negative) the estimate is the pure quadratic through the longest measured length.
    """
    lengths = sorted(measured)
    longest = lengths[-1]
    quadratic_only = measured[longest] * (length / longest) ** 2
    if len(lengths) == 1:
        return quadratic_only
    X = torch.tensor([[float(t), float(t) ** 2] for t in lengths], dtype=torch.float64)
    y = torch.tensor([measured[t] for t in lengths], dtype=torch.float64)
    a, b = torch.linalg.lstsq(X, y[:, None]).solution[:, 0].tolist()
    return a * length + b * length**2 if a >= 0 and b >= 0 else quadratic_only


def fmt(x: float) -> str:
    """3 significant-ish digits: 0.123, 12.3, 1234."""
    return f"{x:.3f}" if x < 1 else f"{x:.1f}" if x < 100 else f"{x:.0f}"


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    lengths = [int(x) for x in args.lengths.split(",")]
    if mamba_kernels_available():
        print("WARNING: mamba-ssm is installed; this benchmark is about the CPU fallback.")

    torch.manual_seed(args.seed)
    m1 = MambaForCausalLM(
        MambaConfig(
            vocab_size=args.vocab, hidden_size=args.hidden, state_size=args.state,
            num_hidden_layers=args.layers, expand=args.expand,
        )
    ).train()  # fmt: skip
    heads = args.expand * args.hidden // args.mamba2_head_dim
    m2 = Mamba2ForCausalLM(
        Mamba2Config(
            vocab_size=args.vocab, hidden_size=args.hidden, state_size=args.state, num_hidden_layers=args.layers,
            expand=args.expand, head_dim=args.mamba2_head_dim, num_heads=heads, n_groups=1,
            chunk_size=args.mamba2_chunk,
        )
    ).train()  # fmt: skip
    n1 = sum(p.numel() for p in m1.parameters())
    n2 = sum(p.numel() for p in m2.parameters())

    print(f"# Mamba 1 selective scan on CPU — {time.strftime('%Y-%m-%d %H:%M')}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), transformers {transformers.__version__}, "
        f"load avg at start {os.getloadavg()[0]:.2f}"
    )
    print(
        f"Mamba 1: hidden {args.hidden}, {args.layers} layers, state {args.state}, expand {args.expand} "
        f"({n1 / 1e6:.2f}M params); Mamba 2: same + head_dim {args.mamba2_head_dim} ({heads} heads), "
        f"chunk {args.mamba2_chunk} ({n2 / 1e6:.2f}M params); batch {args.batch}, vocab {args.vocab}; "
        f"fwd+bwd seconds per step, median of {args.steps} after {args.warmup} warmup "
        f"(reference: {args.ref_steps} step, no warmup)\n"
    )

    gen = torch.Generator().manual_seed(args.seed)
    rows, measured_ref = [], {}
    for T in lengths:
        ids = torch.randint(0, args.vocab, (args.batch, T), generator=gen)
        with fast_mamba_scan(True) as active:
            assert active, "fast scan could not be enabled"
            t_fast, logits_fast = time_steps(train_step(m1, ids), args.steps, args.warmup)
        t_m2, _ = time_steps(train_step(m2, ids), args.steps, args.warmup)
        ref_note, logits_diff = "", ""
        if not args.no_ref and T <= args.ref_max_length:
            with fast_mamba_scan(False):
                t_ref, logits_ref = time_steps(train_step(m1, ids), args.ref_steps, 0)
            measured_ref[T] = t_ref
            err = (logits_fast - logits_ref).abs().max() / logits_ref.abs().max()
            logits_diff = f"{err.item():.1e}"
        elif not args.no_ref and measured_ref:
            t_ref, ref_note = fit_reference(measured_ref, T), " (extrapolated)"
        else:
            t_ref = float("nan")
        rows.append((T, t_ref, ref_note, t_fast, t_m2, logits_diff))
        print(f"T={T}: reference {t_ref:.2f}s{ref_note}, fast {t_fast:.3f}s, Mamba 2 {t_m2:.3f}s", flush=True)

    print(f"\nload avg at end {os.getloadavg()[0]:.2f}\n")
    print("| T | Mamba 1 reference (s) | Mamba 1 fast (s) | reference / fast | Mamba 2 torch (s) | fast / Mamba 2 "
          "| logits max rel. diff fast vs ref |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for T, t_ref, note, t_fast, t_m2, logits_diff in rows:
        approx = "~" if note else ""
        ref = "skipped" if math.isnan(t_ref) else f"{approx}{fmt(t_ref)}{note}"
        ratio = "—" if math.isnan(t_ref) else f"{approx}{fmt(t_ref / t_fast)}×"
        print(f"| {T} | {ref} | {fmt(t_fast)} | {ratio} | {fmt(t_m2)} | {t_fast / t_m2:.2f}× | {logits_diff or '—'} |")


if __name__ == "__main__":
    main()
