"""The lazily drawn QK noise (issue 33) against the dense randomized route it replaced: statistics of
W_Q^h W_K^hᵀ (α1 = β1 = 0.7, heads of 64) and seconds per layer.

    python benchmarks/bench_lazy_noise.py
    OMP_NUM_THREADS=1 python benchmarks/bench_lazy_noise.py

Both routes run the same sketch on the same distribution; only where Z is drawn differs (benchmarks/README.md).
"""

import statistics
import time

import torch

from hf_mimetic.maths.attention import attention_noise, diagonal_statistics, randomized_svd, revealed_randomized_svd


def dense(heads, d, k):
    target = attention_noise(heads, d, d)
    target.mul_(0.7).diagonal(dim1=-2, dim2=-1).add_(0.7)
    return randomized_svd(target, k)


def lazy(heads, d, k):
    return revealed_randomized_svd(heads, d, d, 0.7, 0.7, k)[:3]


def main() -> None:
    print(f"{torch.get_num_threads()} threads")
    print("| d | heads | dense diag | lazy diag | dense off-std | lazy off-std | dense s | lazy s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for d in (768, 1024, 2048):
        heads, k, row = d // 64, 64, []
        for route in (dense, lazy):
            torch.manual_seed(0)
            u, s, v = route(heads, d, k)
            root = s.sqrt().unsqueeze(-2)
            row.append(diagonal_statistics((u * root) @ (v * root).mT))
        seconds = {dense: [], lazy: []}
        for _ in range(3):
            for route in (dense, lazy):
                start = time.perf_counter()
                route(heads, d, k)
                seconds[route].append(time.perf_counter() - start)
        (dd, do), (ld, lo) = row
        dense_s, lazy_s = statistics.median(seconds[dense]), statistics.median(seconds[lazy])
        print(f"| {d} | {heads} | {dd:.4f} | {ld:.4f} | {do:.4f} | {lo:.4f} | {dense_s:.3f} | {lazy_s:.3f} |", flush=True)


if __name__ == "__main__":
    main()
