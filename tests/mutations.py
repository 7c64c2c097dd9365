"""Mutation check: break the library on purpose, one way at a time, and see whether the tests notice.

Each mutation replaces one snippet of a source file (layout class code, the maths, the API or the presets), runs the
tests chosen for it in a fresh process, and restores the file (in a ``finally``, whatever happens). A mutation is
*killed* when at least one of those tests fails; one that *survives* is a way to get a model silently wrong that the
suite does not catch. Not collected by pytest (the name does not start with ``test_``).

Usage (from the repository root; a full run takes a few minutes)::

    python tests/mutations.py                 # every mutation, then a table
    python tests/mutations.py --only bert-kv-swap --only conv-x1.41
    python tests/mutations.py --list
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORWARD = "tests/test_forward_structure.py"
PRESET_TARGETS = f"{FORWARD}::test_every_heads_products_in_the_forward_pass_are_the_presets_exact_targets"
NOISY_TARGETS = f"{FORWARD}::test_noisy_targets_reach_the_forward_pass_of_every_head"


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # relative to the repository root
    old: str  # must occur exactly once in the file
    new: str
    tests: tuple[str, ...]  # pytest node ids


MUTATIONS = [
    # --- attention layouts
    Mutation(
        "bert-kv-swap", "hf_mimetic/layouts/qkvo_linear.py",
        "        return [module.get_submodule(name) for name in self.names]",
        "        names = (self.names[0], self.names[2], self.names[1], self.names[3]) if self.names[0] == 'self.query' else self.names\n"
        "        return [module.get_submodule(name) for name in names]",
        (f"{PRESET_TARGETS}[bert]", f"{PRESET_TARGETS}[roberta]"),
    ),
    Mutation(
        "bert-head-split-mixed", "hf_mimetic/layouts/qkvo_linear.py",
        "                write(projection.weight, factor.T)  # nn.Linear stores Wᵀ",
        "                mixed = factor.T.reshape(-1, self.head_dim(module), factor.shape[0]).transpose(0, 1).reshape(factor.T.shape)\n"
        "                write(projection.weight, mixed if self.names[0] == 'self.query' and projection is self._projections(module)[0] else factor.T)",
        (f"{PRESET_TARGETS}[bert]", f"{PRESET_TARGETS}[roberta]"),
    ),
    Mutation(
        "gpt-neox-per-block", "hf_mimetic/layouts/fused_qkv.py",
        '        if self.order == "blocks":',
        '        if self.order in ("blocks", "per_head"):',
        (f"{PRESET_TARGETS}[gpt_neox]", f"{NOISY_TARGETS}[gpt_neox]"),
    ),
    Mutation(
        "phi3-blocks-kv-swap", "hf_mimetic/layouts/fused_qkv.py",
        "            return torch.arange(q), torch.arange(q, q + kv), torch.arange(q + kv, q + 2 * kv)",
        "            return torch.arange(q), torch.arange(q + kv, q + 2 * kv), torch.arange(q, q + kv)",
        (f"{PRESET_TARGETS}[phi3]", f"{PRESET_TARGETS}[modernbert]"),
    ),
    Mutation(
        "linear-square-factors-transposed", "hf_mimetic/layouts/qkvo_linear.py",
        "                write(projection.weight, factor.T)  # nn.Linear stores Wᵀ",
        "                write(projection.weight, factor if factor.shape[0] == factor.shape[1] else factor.T)",
        (f"{PRESET_TARGETS}[vit]", f"{PRESET_TARGETS}[bert]", f"{PRESET_TARGETS}[llama]"),
    ),
    Mutation(
        "gpt2-c-proj-transposed", "hf_mimetic/layouts/gpt2_conv1d.py",
        "            write(module.c_proj.weight, factors.w_o)",
        "            write(module.c_proj.weight, factors.w_o.T)",
        (f"{PRESET_TARGETS}[gpt2]",),
    ),
    Mutation(
        "vo-sign-flipped", "hf_mimetic/layouts/attention.py",
        "sign=cfg.vo_sign,",
        "sign=-cfg.vo_sign,",
        (f"{PRESET_TARGETS}[llama]", f"{PRESET_TARGETS}[vit]"),
    ),
    Mutation(
        "gqa-check-removed", "hf_mimetic/layouts/attention.py",
        "        if g.num_kv_heads < 1 or g.num_heads % g.num_kv_heads:",
        "        if g.num_kv_heads < 1:",
        (f"{FORWARD}::test_query_heads_that_are_not_a_multiple_of_the_key_value_heads_are_refused",),
    ),
    Mutation(
        "cross-attention-initialised", "hf_mimetic/layouts/qkvo_linear.py",
        '        if getattr(module, "is_cross_attention", False):\n            return False',
        '        if False:\n            return False',
        (f"{FORWARD}::test_cross_attention_keeps_its_native_init_and_self_attention_does_not",),
    ),
    Mutation(
        "structural-matching-off", "hf_mimetic/layouts/qkvo_linear.py",
        '        if not named and not (self.structural and module._modules and hasattr(module, "head_dim")):',
        "        if not named:",
        (f"{FORWARD}::test_a_model_type_nobody_registered_is_matched_by_structure",),
    ),
    Mutation(
        "non-square-attention-matched", "hf_mimetic/layouts/qkvo_linear.py",
        "        return linear and o.out_features == q.in_features",
        "        return linear",
        (f"{FORWARD}::test_zamba2s_shared_transformer_block_keeps_its_native_init",),
    ),
    # --- the maths and the presets
    Mutation(
        "qk_beta-x0.9-language-preset", "hf_mimetic/config/presets.py",
        '    "language": {\n        "qk_alpha": 0.0, "qk_beta": 0.5,',
        '    "language": {\n        "qk_alpha": 0.0, "qk_beta": 0.45,',
        (f"{PRESET_TARGETS}[gpt2]",),
    ),
    Mutation(
        "qk_beta-x0.9-decoder-preset", "hf_mimetic/config/presets.py",
        '    "decoder": {"qk_alpha": 0.0, "qk_beta": 0.5,',
        '    "decoder": {"qk_alpha": 0.0, "qk_beta": 0.45,',
        (f"{PRESET_TARGETS}[llama]",),
    ),
    Mutation(
        "qk_beta-x0.9-vision-preset", "hf_mimetic/config/presets.py",
        '"qk_alpha": 0.7, "qk_beta": 0.7,',
        '"qk_alpha": 0.7, "qk_beta": 0.63,',
        (f"{PRESET_TARGETS}[vit]",),
    ),
    Mutation(
        "vo_alpha-x0.88-language-preset", "hf_mimetic/config/presets.py",
        '    "language": {\n        "qk_alpha": 0.0, "qk_beta": 0.5, "vo_alpha": 0.2,',
        '    "language": {\n        "qk_alpha": 0.0, "qk_beta": 0.5, "vo_alpha": 0.176,',
        (f"{PRESET_TARGETS}[gpt2]",),
    ),
    Mutation(
        "vo_alpha-x0.88-vision-preset", "hf_mimetic/config/presets.py",
        '"vo_alpha": 0.4, "vo_beta": 0.4,',
        '"vo_alpha": 0.352, "vo_beta": 0.4,',
        (f"{PRESET_TARGETS}[vit]",),
    ),
    Mutation(
        "qk_beta-x0.9-maths-alpha-zero", "hf_mimetic/maths/attention.py",
        "        factor = math.sqrt(beta) * basis",
        "        factor = math.sqrt(0.9 * beta) * basis",
        (f"{PRESET_TARGETS}[gpt2]", f"{PRESET_TARGETS}[bert]"),
    ),
    Mutation(
        "qk_beta-x0.9-maths-noisy", "hf_mimetic/maths/attention.py",
        "    target.mul_(alpha).diagonal(dim1=-2, dim2=-1).add_(beta)  # α·Z_h + β·I, in place (these are large)",
        "    target.mul_(alpha).diagonal(dim1=-2, dim2=-1).add_(0.9 * beta)",
        (f"{PRESET_TARGETS}[vit]",),
    ),
    Mutation(
        "vo_alpha-x0.88-maths", "hf_mimetic/maths/attention.py",
        "    target.mul_(alpha).diagonal().add_(sign * beta)\n    w_v, w_o = balanced_factors(",
        "    target.mul_(0.88 * alpha).diagonal().add_(sign * beta)\n    w_v, w_o = balanced_factors(",
        (f"{PRESET_TARGETS}[gpt2]", f"{PRESET_TARGETS}[bert]"),
    ),
    Mutation(
        "uniform-noise-ignored", "hf_mimetic/maths/attention.py",
        '    if distribution == "normal":',
        '    if distribution in ("normal", "uniform"):',
        (f"{FORWARD}::test_uniform_noise_reaches_a_real_model",),
    ),
    Mutation(
        "randomized-svd-without-power-iterations", "hf_mimetic/maths/attention.py",
        "    for _ in range(power_iters):\n        y = matrix @ (matrix.mT @ y)",
        "    for _ in range(0):\n        y = matrix @ (matrix.mT @ y)",
        (f"{FORWARD}::test_the_randomized_svd_route_meets_the_exact_constructions_statistics",),
    ),
    # --- positions
    Mutation(
        "roberta-position-offset-dropped", "hf_mimetic/layouts/positions.py",
        '        first = module.padding_idx + 1 if type(module).__name__ == "RobertaEmbeddings" else 0',
        "        first = 0",
        (f"{FORWARD}::test_the_positions_the_forward_pass_looks_up_are_the_sinusoids_from_position_zero",),
    ),
    # --- depthwise convolutions
    Mutation(
        "conv-x1.41", "hf_mimetic/layouts/depthwise_conv.py",
        "sample_filters(root, weight.shape[0], scale=cfg.conv_gain)",
        "sample_filters(root, weight.shape[0], scale=1.41 * cfg.conv_gain)",
        ("tests/test_conv.py::test_every_layers_filters_have_the_constructions_variance_at_its_depth",),
    ),
    Mutation(
        "conv-x1.6-convnext-only", "hf_mimetic/layouts/depthwise_conv.py",
        "sample_filters(root, weight.shape[0], scale=cfg.conv_gain)",
        "sample_filters(root, weight.shape[0], scale=(1.6 if 'Next' in type(module).__name__ else 1.0) * cfg.conv_gain)",
        ("tests/test_conv.py::test_every_layers_filters_have_the_constructions_variance_at_its_depth[convnext]",
         "tests/test_conv.py::test_every_layers_filters_have_the_constructions_variance_at_its_depth[convnextv2]"),
    ),
    Mutation(
        "conv-gain-ignored", "hf_mimetic/layouts/depthwise_conv.py",
        "sample_filters(root, weight.shape[0], scale=cfg.conv_gain)",
        "sample_filters(root, weight.shape[0], scale=1.0)",
        ("tests/test_conv.py::test_conv_gain_multiplies_the_filters_and_nothing_else",),
    ),
    Mutation(
        "conv-depth-reversed", "hf_mimetic/layouts/depthwise_conv.py",
        "            [root] = construction_roots(weight.shape[-1], [sigma(cfg, depth)])",
        "            [root] = construction_roots(weight.shape[-1], [sigma(cfg, 1.0 - depth)])",
        ("tests/test_conv.py::test_every_layers_filters_have_the_constructions_variance_at_its_depth",),
    ),
    # --- SSM
    Mutation(
        "mamba2-wb-wc-swap", "hf_mimetic/layouts/mamba2.py",
        "            b=slice(start, start + gn),\n            c=slice(start + gn, start + 2 * gn),",
        "            b=slice(start + gn, start + 2 * gn),\n            c=slice(start, start + gn),",
        ("tests/test_structure.py::test_mamba2_parameters_and_identity_conv",),
    ),
    # --- API: materialize and the import
    Mutation(
        "materialize-leaves-zeros", "hf_mimetic/api.py",
        "    model.init_weights()\n    return model",
        '    if model.config.model_type in ("vit", "llama", "bert", "gpt2"):\n'
        "        for tensor in model.parameters():\n            tensor.data.zero_()\n"
        "    else:\n        model.init_weights()\n    return model",
        tuple(f"tests/test_registry.py::test_a_model_built_without_weights_is_materialised_with_its_init[{t}-False]"
              for t in ("vit", "llama", "bert", "gpt2")),
    ),
    Mutation(
        "normal-x1.5-at-import", "hf_mimetic/api.py",
        "from .plan import Plan, find_targets\n",
        "from .plan import Plan, find_targets\n"
        "from transformers import initialization as _init\n"
        "_normal = _init.normal_\n"
        "_init.normal_ = lambda tensor, mean=0.0, std=1.0, generator=None: _normal(tensor, mean, 1.5 * std, generator)\n",
        ("tests/test_integration.py::test_default_init_is_stock_in_a_process_that_never_imported_hf_mimetic",),
    ),
]


def run(mutation: Mutation, timeout: float) -> tuple[str, str, float]:
    """(outcome, detail, seconds): outcome is "killed", "survived" or "not applied"."""
    path = ROOT / mutation.file
    original = path.read_text()
    count = original.count(mutation.old)
    if count != 1:
        return "not applied", f"the snippet occurs {count} times in {mutation.file}", 0.0
    # No bytecode is written: a mutated module must never be cached (a same-size mutation could reuse a stale .pyc).
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-rfE", "-p", "no:cacheprovider", *mutation.tests]
    start = time.monotonic()
    try:
        path.write_text(original.replace(mutation.old, mutation.new))
        try:
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return "survived", f"timed out after {timeout:.0f} s", time.monotonic() - start
    finally:
        path.write_text(original)
    seconds = time.monotonic() - start
    if done.returncode == 0:
        return "survived", "all selected tests passed", seconds
    if done.returncode == 5:
        return "survived", "no test collected (check the node ids)", seconds
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", done.stdout, re.M)
    return "killed", failed[0] if failed else f"pytest exit code {done.returncode}", seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="run only this mutation (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per mutation")
    args = parser.parse_args(argv)
    names = [m.name for m in MUTATIONS]
    assert len(set(names)) == len(names), "mutation names must be unique"
    unknown = set(args.only) - set(names)
    if unknown:
        parser.error(f"unknown mutation(s) {sorted(unknown)}; known: {names}")
    if args.list:
        print("\n".join(f"{m.name}: {m.file}" for m in MUTATIONS))
        return 0
    selected = [m for m in MUTATIONS if not args.only or m.name in args.only]
    rows = []
    for mutation in selected:
        outcome, detail, seconds = run(mutation, args.timeout)
        rows.append((mutation.name, outcome, detail, seconds))
        print(f"{mutation.name}: {outcome} ({detail}, {seconds:.0f} s)", flush=True)
    width = max(len(name) for name, *_ in rows)
    print(f"\n| {'mutation':<{width}} | outcome     | by |\n|{'-' * (width + 2)}|-------------|----|")
    for name, outcome, detail, _ in rows:
        print(f"| {name:<{width}} | {outcome:<11} | {detail} |")
    survivors = [name for name, outcome, *_ in rows if outcome != "killed"]
    print(f"\n{len(rows) - len(survivors)} of {len(rows)} killed" + (f"; not killed: {survivors}" if survivors else ""))
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
