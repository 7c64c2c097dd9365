"""Accuracy and speed of the QK factor constructions: exact (eigh) vs randomized (rank-k+10 sketch).

    python benchmarks/bench_qk_svd.py

For each shape, the mean diagonal and off-diagonal std of W_Q^h W_K^hᵀ (averaged over heads) and the time to build
one layer's factors, both constructions side by side; "auto" (the default) picks exact when k ≥ d/4.
"""

from __future__ import annotations

import time

import torch

from hf_mimetic.maths.attention import qk_factors

SHAPES = [(192, 64, 3), (384, 64, 6), (768, 64, 12), (1024, 64, 16), (1600, 64, 25)]


def stats(wq: torch.Tensor, wk: torch.Tensor) -> tuple[float, float]:
    products = wq @ wk.mT
    diag = products.diagonal(dim1=-2, dim2=-1)
    d = products.shape[-1]
    off = (products.pow(2).sum((-2, -1)) - diag.pow(2).sum(-1)) / (d * d - d)
    return diag.mean().item(), off.sqrt().mean().item()


def main(alpha: float = 0.7, beta: float = 0.7) -> None:
    print(f"α1 = {alpha}, β1 = {beta}; torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| d | k | heads | exact diag | randomized diag | rel. diff | exact off-std | randomized off-std | exact s/layer | randomized s/layer |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for d, k, heads in SHAPES:
        row = {}
        for method in ("exact", "randomized"):
            torch.manual_seed(0)
            qk_factors(heads, d, k, alpha, beta, svd=method)  # warm-up
            seconds = []
            for _ in range(3):
                start = time.perf_counter()
                wq, wk = qk_factors(heads, d, k, alpha, beta, svd=method)
                seconds.append(time.perf_counter() - start)
            row[method] = (*stats(wq, wk), sorted(seconds)[1])  # median of 3
        (ed, eo, et), (rd, ro, rt) = row["exact"], row["randomized"]
        print(f"| {d} | {k} | {heads} | {ed:.4f} | {rd:.4f} | {rd / ed - 1:+.1%} | {eo:.4f} | {ro:.4f} | {et:.3f} | {rt:.3f} |", flush=True)


if __name__ == "__main__":
    main()
