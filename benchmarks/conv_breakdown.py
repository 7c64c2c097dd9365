"""Where the covariance init's construction time goes, for ConvMixer-768/32 (docs/RESULTS.md §1).

    python benchmarks/conv_breakdown.py

Builds the model three ways, interleaved (median of 11): the default; mimetic init with nothing to draw
(``conv_covariance=False, freeze_filters=True``: the hook and the plan only); the covariance init. Then times the
covariance maths of the 32 layers alone, outside any build: Σ (eq. 3.10), the eigendecomposition its PSD projection
needs, the normal draws and the product, against the uniform draw the default makes for the same filters.
"""

from __future__ import annotations

import gc
import statistics
import time

import torch
from transformers import AutoModelForImageClassification

import hf_mimetic  # noqa: F401  (installs the hook)
from hf_mimetic import ConvMixerConfig
from hf_mimetic.maths.conv import filter_covariance, sigma_schedule

DEPTH, WIDTH, KERNEL = 32, 768, 7


def best_ms(step, repeats: int = 7) -> float:
    step()
    return 1e3 * min(timed(step) for _ in range(repeats))


def timed(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def main() -> None:
    config = ConvMixerConfig(hidden_size=WIDTH, depth=DEPTH, kernel_size=KERNEL, patch_size=7, num_labels=1000)
    builds = {
        "default": {},
        "hook and plan only": {"mimetic_init": True, "mimetic_config": {"conv_covariance": False, "freeze_filters": True}},
        "covariance init": {"mimetic_init": True},
    }  # fmt: skip
    seconds: dict[str, list[float]] = {name: [] for name in builds}
    for repeat in range(11):
        for name, kwargs in builds.items() if repeat % 2 else reversed(builds.items()):
            gc.collect()
            seconds[name].append(timed(lambda: AutoModelForImageClassification.from_config(config, **kwargs)))
    base = statistics.median(seconds["default"])
    print("| build | ms | ratio |\n|---|---:|---:|")
    for name, values in seconds.items():
        print(f"| {name} | {1e3 * statistics.median(values):.0f} | {statistics.median(values) / base:.3f} |")

    sigmas = [sigma_schedule(i / (DEPTH - 1), 0.5, 0.5, 3.0) for i in range(DEPTH)]
    covariances = [filter_covariance(KERNEL, s).reshape(KERNEL**2, KERNEL**2) for s in sigmas]
    decompositions = [torch.linalg.eigh(c) for c in covariances]
    roots = [(v * w.clamp_min(0).sqrt()).float() for w, v in decompositions]
    noise = torch.randn(KERNEL**2, WIDTH)
    weight = torch.empty(WIDTH, 1, KERNEL, KERNEL)
    parts = {
        "Σ (eq. 3.10)": lambda: [filter_covariance(KERNEL, s) for s in sigmas],
        "eigh (PSD projection)": lambda: [torch.linalg.eigh(c) for c in covariances],
        "normal draws": lambda: [torch.randn(KERNEL**2, WIDTH) for _ in sigmas],
        "product": lambda: [r @ noise for r in roots],
        "the default's uniform draw (skipped)": lambda: [weight.uniform_(-0.1, 0.1) for _ in sigmas],
    }
    print(f"\nThe maths of {DEPTH} layers alone, best of 7:\n\n| part | ms |\n|---|---:|")
    for name, step in parts.items():
        print(f"| {name} | {best_ms(step):.1f} |")


if __name__ == "__main__":
    main()
