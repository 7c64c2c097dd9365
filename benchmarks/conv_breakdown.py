"""Where the covariance init's construction time goes, for ConvMixer-768/32 (docs/RESULTS.md, "Cost of construction").

    python benchmarks/conv_breakdown.py

Builds the model four ways, interleaved (21 repeats; the median over repeats of build / default within a repeat, and
the fastest build of each way against the fastest default): the default; mimetic init with nothing to draw
(``conv_covariance=False, freeze_filters=True``: the hook and the plan only); the covariance init as a first build in
a process pays it (the cache of covariance roots cleared); the covariance init built again (a sweep, another seed: the
roots cached). Then times the covariance maths of the 32 layers alone, outside any build: Σ (eq. 3.10), the
eigendecomposition its PSD projection needs (per layer, and as the init does it: all layers at once, in
mirror-symmetric blocks), the normal draws and the product, against the uniform draw the default makes for the same
filters. Last, the time spent in those calls inside first builds, with the roots batched (the init) and with one per
layer (``DepthwiseConv.prepare`` disabled): what the batching is for.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import time

import torch
from transformers import AutoModelForImageClassification, PreTrainedModel

import hf_mimetic  # noqa: F401  (installs the hook)
import hf_mimetic.layouts.depthwise_conv as depthwise_conv
from hf_mimetic import ConvMixerConfig, hook
from hf_mimetic.layouts.depthwise_conv import DepthwiseConv
from hf_mimetic.maths.conv import clear_roots, construction_roots, filter_covariance, psd_root, sigma_schedule
from hf_mimetic.plan import Plan

DEPTH, WIDTH, KERNEL = 32, 768, 7


def best_ms(step, repeats: int = 7) -> float:
    step()
    return 1e3 * min(timed(step) for _ in range(repeats))


def timed(step) -> float:
    start = time.perf_counter()
    result = step()
    seconds = time.perf_counter() - start
    del result  # freeing a model is not part of building it
    return seconds


def main() -> None:
    config = ConvMixerConfig(hidden_size=WIDTH, depth=DEPTH, kernel_size=KERNEL, patch_size=7, num_labels=1000)
    mimetic = {"mimetic_init": True}
    builds = {
        "default": ({}, False),
        "hook and plan only": ({**mimetic, "mimetic_config": {"conv_covariance": False, "freeze_filters": True}}, False),
        "covariance init, first build": (mimetic, True),
        "covariance init, built again": (mimetic, False),
    }  # fmt: skip
    seconds: dict[str, list[float]] = {name: [] for name in builds}
    for repeat in range(21):
        for name, (kwargs, cold) in builds.items() if repeat % 2 else reversed(builds.items()):
            gc.collect()
            if cold:
                clear_roots()
            seconds[name].append(timed(lambda: AutoModelForImageClassification.from_config(config, **kwargs)))
    # The fastest of 21 builds is what the build costs without the VM's interruptions; the median ratio within a
    # repeat is what a user sees on a busy machine.
    fastest = min(seconds["default"])
    print("| build | median ms | fastest ms | median ratio | fastest / fastest default |\n|---|---:|---:|---:|---:|")
    for name, values in seconds.items():
        ratio = statistics.median(v / d for v, d in zip(values, seconds["default"]))
        print(f"| {name} | {1e3 * statistics.median(values):.0f} | {1e3 * min(values):.0f} | {ratio:.3f} | "
              f"{min(values) / fastest:.3f} |")

    # The library's own time in each build: inside the hook, minus transformers' init that the hook calls.
    print("\nTime inside hf_mimetic's hook per build, transformers' own init excluded (median of 15; the timers' "
          "own cost is in the default's row):\n\n| build | ms |\n|---|---:|")
    for name, (kwargs, cold) in builds.items():
        spent = []
        for _ in range(15):
            if cold:
                clear_roots()
            gc.collect()
            with hook_timing() as total:
                AutoModelForImageClassification.from_config(config, **kwargs)
            spent.append(total["hook"] - total["native"])
        print(f"| {name} | {1e3 * statistics.median(spent):.1f} |")

    sigmas = [sigma_schedule(i / (DEPTH - 1), 0.5, 0.5, 3.0) for i in range(DEPTH)]
    covariances = [filter_covariance(KERNEL, s).reshape(KERNEL**2, KERNEL**2) for s in sigmas]
    roots = [psd_root(c) for c in covariances]
    rank = roots[0].shape[1]
    noise = torch.randn(WIDTH, rank)
    weight = torch.empty(WIDTH, 1, KERNEL, KERNEL)
    parts = {
        "Σ (eq. 3.10), one call per layer": lambda: [filter_covariance(KERNEL, s) for s in sigmas],
        "eigh (PSD projection), one call per layer": lambda: [psd_root(c) for c in covariances],
        "Σ and eigh as the init computes them (all layers at once; eigh in mirror-symmetric blocks)": lambda: (clear_roots(), construction_roots(KERNEL, sigmas)),
        f"normal draws (rank {rank} of {KERNEL**2})": lambda: [torch.randn(WIDTH, r.shape[1]) for r in roots],
        "product": lambda: [noise @ r.mT.float() for r in roots],
        "the default's uniform draw (skipped)": lambda: [weight.uniform_(-0.1, 0.1) for _ in sigmas],
    }
    print(f"\nThe maths of {DEPTH} layers alone, best of 7:\n\n| part | ms |\n|---|---:|")
    for name, step in parts.items():
        print(f"| {name} | {best_ms(step):.1f} |")

    print("\nInside first builds (median of 15), the time spent in the calls, with the roots batched when the plan is "
          "made and with one per layer:\n\n| roots | Σ and eigh ms | draws and product ms |\n|---|---:|---:|")
    for name, prepare in (("batched (the init)", DepthwiseConv.prepare), ("one per layer", lambda *args: None)):
        spent = {"construction_roots": [], "sample_filters": []}
        with patched(DepthwiseConv, "prepare", prepare):
            for _ in range(15):
                clear_roots()
                gc.collect()
                with timing(depthwise_conv, spent):
                    AutoModelForImageClassification.from_config(config, **mimetic)
        roots_ms, sampling_ms = (1e3 * statistics.median(spent[f]) for f in spent)
        print(f"| {name} | {roots_ms:.1f} | {sampling_ms:.1f} |")


    model = AutoModelForImageClassification.from_config(config)
    print(f"\nMaking the plan of the head model (find the layers, resolve the recipe; roots cached; two per head "
          f"model, the base model's and its own), best of 7: {best_ms(lambda: Plan(model, None)):.2f} ms")


@contextlib.contextmanager
def patched(owner, name: str, value):
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


def timer(totals: dict[str, float], name: str, function):
    """``function``, adding the seconds each call takes to ``totals[name]``."""

    def timed_call(*args, **kwargs):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        totals[name] += time.perf_counter() - start
        return result

    return timed_call


@contextlib.contextmanager
def hook_timing():
    """Seconds spent in ``PreTrainedModel._initialize_weights`` (the hook) and in the native one it wraps."""
    total = {"hook": 0.0, "native": 0.0}
    native_name = hook._NATIVE + "_initialize_weights"

    with (patched(PreTrainedModel, native_name, timer(total, "native", PreTrainedModel.__dict__[native_name])),
          patched(PreTrainedModel, "_initialize_weights", timer(total, "hook", PreTrainedModel.__dict__["_initialize_weights"]))):
        yield total


@contextlib.contextmanager
def timing(module, spent: dict[str, list[float]]):
    """Add the seconds spent in each function of ``spent`` (names in ``module``) during the block to its list."""
    totals = dict.fromkeys(spent, 0.0)

    with contextlib.ExitStack() as stack:
        for name in spent:
            stack.enter_context(patched(module, name, timer(totals, name, getattr(module, name))))
        yield
    for name, total in totals.items():
        spent[name].append(total)


if __name__ == "__main__":
    main()
