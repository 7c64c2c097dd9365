"""Construction time with and without mimetic init, side by side in one run.

    python benchmarks/bench_init.py                       # ViT-Tiny, ViT-B/16, GPT-2 small, Mamba-130M
    python benchmarks/bench_init.py --models llama-gqa bert-base jamba-small   # the families of issue 13
    python benchmarks/bench_init.py --models convmixer-768-32 convnext-tiny     # the conv init (issue 14: ≤ 1.1×)
    python benchmarks/bench_init.py --models gpt2-xl      # 1.5B parameters: ~12 GB of RAM for the two builds
    python benchmarks/bench_init.py --scaling             # extra seconds per layer as d grows (GPT-2 blocks)
    python benchmarks/bench_init.py --models llama-1b vit-b16 vit-l16 mamba2-1.3b --repeats 3 --memory   # issue 33
    python benchmarks/bench_init.py --models llama-8b llama-1b mamba2-1.3b --device cuda --dtype bfloat16   # on a GPU

The LLM shapes (issue 33) are the published configurations' sizes: Llama 3.2 1B, Llama 3.1 8B, Mamba 2 1.3B, ViT-L/16.
``--device cuda`` builds under ``torch.device("cuda")`` (the mimetic maths then runs there too) and synchronises
before reading the clock; ``--memory`` adds each build's peak memory: on CPU the resident set of a fresh process per
build (``ru_maxrss``), on a GPU ``torch.cuda.max_memory_allocated``. On CPU the 8B shape needs ~32 GB in float32 (and
~16 GB in bfloat16) per build: run it on a GPU.

Each repeat builds the default and the mimetic model back to back (alternating which goes first); the table reports
the median seconds of each and the median over repeats of the ratio mimetic / default within a repeat (a shared VM's
drift cancels within a pair), with the smallest and largest of those ratios: how much one run of the table can be
trusted. Only the ratio is meant to transfer between machines.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import subprocess
import sys
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
    Mamba2Config,
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
    # Issue 33's LLM shapes: Llama 3.2 1B and Llama 3.1 8B (grouped-query attention, head size 64 and 128), Mamba 2
    # 1.3B (state 128, heads of 64) and ViT-L/16 at 224 px.
    "llama-1b": (AutoModelForCausalLM, lambda: LlamaConfig(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32,
                                                             num_key_value_heads=8, head_dim=64, intermediate_size=8192,
                                                             vocab_size=128256, tie_word_embeddings=True)),
    "llama-8b": (AutoModelForCausalLM, lambda: LlamaConfig(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                                                             num_key_value_heads=8, head_dim=128, intermediate_size=14336,
                                                             vocab_size=128256)),
    "mamba2-1.3b": (AutoModelForCausalLM, lambda: Mamba2Config(hidden_size=2048, num_hidden_layers=48, state_size=128,
                                                                 head_dim=64, num_heads=64, expand=2, n_groups=1,
                                                                 vocab_size=50280)),
    "vit-l16": (AutoModelForImageClassification, lambda: ViTConfig(hidden_size=1024, num_hidden_layers=24,
                                                                    num_attention_heads=16, intermediate_size=4096,
                                                                    num_labels=1000)),
}
DEFAULT_MODELS = ["vit-tiny", "vit-b16", "gpt2", "mamba-130m"]


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def build_seconds(auto, config, device: str = "cpu", dtype: torch.dtype | None = None, **kwargs) -> float:
    gc.collect()  # also frees stock Mamba 2's reference cycle on CUDA (≈ 2.8 GB per 1.3B model otherwise)
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    clear_roots()  # every build pays the conv construction's eigendecompositions, as a first one does
    _synchronize(device)
    start = time.perf_counter()
    with torch.device(device):
        model = auto.from_config(config, dtype=dtype, **kwargs)
    _synchronize(device)
    seconds = time.perf_counter() - start
    del model
    return seconds


def measure(auto, make_config, repeats: int, device: str = "cpu", dtype=None, **mimetic) -> tuple[float, float, list[float]]:
    """Median seconds (default, mimetic) and the ratios mimetic / default within each repeat, sorted; the first
    build of each kind is a discarded warm-up."""
    config = make_config()
    build_seconds(auto, config, device, dtype)
    build_seconds(auto, config, device, dtype, mimetic_init=True, **mimetic)
    default, with_init = [], []
    for repeat in range(repeats):
        order = [(default, {}), (with_init, {"mimetic_init": True, **mimetic})]
        for times, kwargs in order if repeat % 2 == 0 else order[::-1]:
            times.append(build_seconds(auto, config, device, dtype, **kwargs))
    return statistics.median(default), statistics.median(with_init), sorted(m / d for d, m in zip(default, with_init))


def peak_memory(name: str, mimetic: bool, device: str, dtype_name: str, mimetic_kwargs: dict) -> float:
    """Peak memory in GB of one build: a fresh process's maximum resident set on CPU (the interpreter and torch
    included), ``max_memory_allocated`` on a GPU."""
    command = [sys.executable, __file__, "--peak-of", name, "--device", device, "--dtype", dtype_name,
               "--peak-kwargs", json.dumps({"mimetic_init": True, **mimetic_kwargs} if mimetic else {})]  # fmt: skip
    return float(subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])


def _peak_of(name: str, device: str, dtype: torch.dtype | None, kwargs: dict) -> None:
    auto, make_config = MODELS[name]
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    build_seconds(auto, make_config(), device, dtype, **kwargs)
    if device.startswith("cuda"):
        print(torch.cuda.max_memory_allocated(device) / 1e9)
    else:
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6)  # kB on Linux


def scaling_table(repeats: int) -> str:
    """Extra seconds per attention layer as the width grows: GPT-2 blocks (heads of 64, 4 layers, tiny vocab) with
    the vision preset (α1 > 0, so every head needs a rank-k SVD: the expensive case). Layers are independent, so
    the cost is linear in depth."""
    lines = ["| d | heads | default s/layer | mimetic extra s/layer | ratio |", "|---:|---:|---:|---:|---:|"]
    for d in (256, 512, 1024, 1600):
        make = lambda d=d: GPT2Config(n_embd=d, n_layer=4, n_head=d // 64, vocab_size=256, n_positions=256)
        default, with_init, ratios = measure(AutoModelForCausalLM, make, repeats, mimetic_config={"preset": "vision"})
        ratio = statistics.median(ratios)
        lines.append(f"| {d} | {d // 64} | {default / 4:.4f} | {(with_init - default) / 4:.4f} | {ratio:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=DEFAULT_MODELS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--qk-svd", choices=["auto", "randomized", "exact"], default="auto")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N: where the models are built")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--memory", action="store_true", help="also measure each build's peak memory (fresh processes)")
    parser.add_argument("--scaling", action="store_true", help="also print the per-layer cost as d grows")
    parser.add_argument("--peak-of", help=argparse.SUPPRESS)  # one build in this process, print its peak memory
    parser.add_argument("--peak-kwargs", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    if args.peak_of:
        return _peak_of(args.peak_of, args.device, dtype, json.loads(args.peak_kwargs))
    where = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else f"{torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {args.device} ({where}), {args.dtype}, qk_svd={args.qk_svd}, {args.repeats} repeats\n")
    memory_columns = " default peak GB | mimetic peak GB |" if args.memory else ""
    print(f"| model | params | default s | mimetic s | ratio | ratios min–max |{memory_columns}")
    print("|---|---:|---:|---:|---:|---:|" + "---:|" * (2 if args.memory else 0))
    for name in args.models:
        auto, make_config = MODELS[name]
        with torch.device("meta"):
            params = sum(p.numel() for p in auto.from_config(make_config()).parameters())
        # qk_svd is an attention option; SSM and conv models take their preset unchanged.
        mimetic = {} if name.startswith(("mamba", "conv")) else {"mimetic_config": {"qk_svd": args.qk_svd}}
        default, with_init, ratios = measure(auto, make_config, args.repeats, args.device, dtype, **mimetic)
        row = (f"| {name} | {params / 1e6:.0f}M | {default:.2f} | {with_init:.2f} | {statistics.median(ratios):.2f} | "
               f"{ratios[0]:.2f}–{ratios[-1]:.2f} |")  # fmt: skip
        if args.memory:
            peaks = [peak_memory(name, m, args.device, args.dtype, mimetic) for m in (False, True)]
            row += f" {peaks[0]:.2f} | {peaks[1]:.2f} |"
        print(row, flush=True)
    if args.scaling:
        print("\n" + scaling_table(args.repeats))


if __name__ == "__main__":
    main()
