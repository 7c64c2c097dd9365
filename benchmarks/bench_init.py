"""Construction time with and without mimetic init, side by side in one run.

    python benchmarks/bench_init.py                       # ViT-Tiny, ViT-B/16, GPT-2 small, Mamba-130M
    python benchmarks/bench_init.py --models llama-gqa bert-base jamba-small   # the families of issue 13
    python benchmarks/bench_init.py --models convmixer-768-32 convnext-tiny     # the conv init (issue 14: ≤ 1.1×)
    python benchmarks/bench_init.py --models gpt2-xl      # 1.5B parameters: ~12 GB of RAM for the two builds
    python benchmarks/bench_init.py --scaling             # extra seconds per layer as d grows (GPT-2 blocks)

Each repeat builds the default and the mimetic model back to back (alternating which goes first); the table reports
the median seconds of each and the median over repeats of the ratio mimetic / default within a repeat (a shared VM's
drift cancels within a pair), with the middle half of those ratios (first to third quartile): how much one run of
the table can be trusted. Only the ratio is meant to transfer between machines.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForImageClassification,
    AutoModelForMaskedLM,
    BertConfig,
    ConvNextConfig,
    GPT2Config,
    JambaConfig,
    LlamaConfig,
    MambaConfig,
    ViTConfig,
)

import hf_mimetic  # noqa: F401  (installs the hook)
from hf_mimetic import ConvMixerConfig
from hf_mimetic.maths.conv import clear_roots

MODELS = {
    # The thesis's CIFAR-10 model (§3.2.4).
    "vit-tiny": (AutoModelForImageClassification, lambda: ViTConfig(hidden_size=192, num_hidden_layers=12, num_attention_heads=3, intermediate_size=768, image_size=32, patch_size=2, num_labels=10)),
    "vit-b16": (AutoModelForImageClassification, lambda: ViTConfig(num_labels=1000)),
    "gpt2": (AutoModelForCausalLM, GPT2Config),
    "mamba-130m": (AutoModelForCausalLM, lambda: MambaConfig(hidden_size=768, num_hidden_layers=24, state_size=16, vocab_size=50280)),
    "gpt2-xl": (AutoModelForCausalLM, lambda: GPT2Config(n_embd=1600, n_layer=48, n_head=25)),
    # A 12-layer Llama of GPT-2 small's width with grouped-query attention (12 query heads, 4 key/value heads).
    "llama-gqa": (AutoModelForCausalLM, lambda: LlamaConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                                              num_key_value_heads=4, intermediate_size=2048, vocab_size=32000)),
    "bert-base": (AutoModelForMaskedLM, BertConfig),
    # The thesis's ImageNet ConvMixer-768/32 (§2: 7×7 patches, 7×7 filters) and ConvNeXt-T (transformers' default).
    "convmixer-768-32": (AutoModelForImageClassification, lambda: ConvMixerConfig(hidden_size=768, depth=32, kernel_size=7,
                                                                                 patch_size=7, num_labels=1000)),
    "convnext-tiny": (AutoModelForImageClassification, lambda: ConvNextConfig(num_labels=1000)),
    # A Jamba-shaped hybrid at GPT-2 small's width: Mamba layers, attention every 4th layer, 8 experts every 2nd.
    "jamba-small": (AutoModelForCausalLM, lambda: JambaConfig(hidden_size=768, num_hidden_layers=8, num_attention_heads=12,
                                                                num_key_value_heads=4, intermediate_size=2048, vocab_size=32000)),
}
DEFAULT_MODELS = ["vit-tiny", "vit-b16", "gpt2", "mamba-130m"]


def build_seconds(auto, config, **kwargs) -> float:
    gc.collect()
    clear_roots()  # every build pays the conv construction's eigendecompositions, as a first one does
    start = time.perf_counter()
    model = auto.from_config(config, **kwargs)
    seconds = time.perf_counter() - start
    del model
    return seconds


def measure(auto, make_config, repeats: int, **mimetic) -> tuple[float, float, list[float]]:
    """Median seconds (default, mimetic) and the quartiles of the ratio within a repeat (the median is the middle
    one); the first build of each kind is a discarded warm-up."""
    config = make_config()
    build_seconds(auto, config)
    build_seconds(auto, config, mimetic_init=True, **mimetic)
    default, with_init = [], []
    for repeat in range(repeats):
        order = [(default, {}), (with_init, {"mimetic_init": True, **mimetic})]
        for times, kwargs in order if repeat % 2 == 0 else order[::-1]:
            times.append(build_seconds(auto, config, **kwargs))
    ratios = [m / d for d, m in zip(default, with_init)]
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    return statistics.median(default), statistics.median(with_init), quartiles


def scaling_table(repeats: int) -> str:
    """Extra seconds per attention layer as the width grows: GPT-2 blocks (heads of 64, 4 layers, tiny vocab) with
    the vision preset (α1 > 0, so every head needs a rank-k SVD: the expensive case). Layers are independent, so
    the cost is linear in depth."""
    lines = ["| d | heads | default s/layer | mimetic extra s/layer | ratio |", "|---:|---:|---:|---:|---:|"]
    for d in (256, 512, 1024, 1600):
        make = lambda d=d: GPT2Config(n_embd=d, n_layer=4, n_head=d // 64, vocab_size=256, n_positions=256)
        default, with_init, (_, ratio, _) = measure(AutoModelForCausalLM, make, repeats, mimetic_config={"preset": "vision"})
        lines.append(f"| {d} | {d // 64} | {default / 4:.4f} | {(with_init - default) / 4:.4f} | {ratio:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=DEFAULT_MODELS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--qk-svd", choices=["auto", "randomized", "exact"], default="auto")
    parser.add_argument("--scaling", action="store_true", help="also print the per-layer cost as d grows")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, qk_svd={args.qk_svd}\n")
    print("| model | params | default s | mimetic s | ratio | ratio's middle half |\n|---|---:|---:|---:|---:|---:|")
    for name in args.models:
        auto, make_config = MODELS[name]
        with torch.device("meta"):
            params = sum(p.numel() for p in auto.from_config(make_config()).parameters())
        # qk_svd is an attention option; SSM and conv models take their preset unchanged.
        mimetic = {} if name.startswith(("mamba", "conv")) else {"mimetic_config": {"qk_svd": args.qk_svd}}
        default, with_init, (low, ratio, high) = measure(auto, make_config, args.repeats, **mimetic)
        print(f"| {name} | {params / 1e6:.0f}M | {default:.2f} | {with_init:.2f} | {ratio:.2f} | {low:.2f}–{high:.2f} |",
              flush=True)  # fmt: skip
    if args.scaling:
        print("\n" + scaling_table(args.repeats))


if __name__ == "__main__":
    main()
