"""Training from scratch on several processes: DDP, FSDP2 (through accelerate) and DeepSpeed ZeRO-3.

The multi-process tests start two CPU ranks with torchrun (gloo) running tests/distributed_worker.py, and compare
what each rank wrote with a build in this process. `accelerate launch --cpu --num_processes 2` starts one process
here, and accelerate turns FSDP on only for accelerators, so the FSDP2 test calls accelerate's own
``fsdp2_prepare_model`` from the worker; the `accelerate launch` runs of the configs need GPUs (marked ``gpu``).
"""

from __future__ import annotations

import copy
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import CONFIGS, build

from hf_mimetic.integrations.deepspeed import gathered_with, reaches_deeper
from hf_mimetic.plan import Plan, find_targets

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).parent / "distributed_worker.py"
TOLERANCE = dict(rtol=0, atol=1e-5)  # ranks run one thread each: float sums may differ from this process's


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args: str, cwd: Path, processes: int = 2) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
               "--master_addr", "127.0.0.1", "--master_port", str(free_port()), *args]  # fmt: skip
    result = subprocess.run(command, cwd=cwd, timeout=600, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return result


def emptied(model: torch.nn.Module, keep: list[torch.nn.Parameter]) -> None:
    """Every parameter of ``model`` but ``keep`` becomes an empty tensor, as ZeRO-3 leaves it outside a gather."""
    kept = {id(p) for p in keep}
    for param in model.parameters():
        if id(param) not in kept:
            param.data = torch.empty(0, dtype=param.dtype)


# ---------------------------------------------------------------------------------------------------------- CPU only


def test_the_plan_needs_no_weight_values(family):
    """Under ZeRO-3 the plan is made while almost every parameter is an empty shard: targets, layers, checks and the
    resolved recipe come from the modules' structure alone."""
    model = build(family)
    reference = Plan(model, None)
    emptied(model, keep=[])
    plan = Plan(model, None)
    assert [(t.name, t.layer, t.depth) for t in plan.targets] == [(t.name, t.layer, t.depth) for t in reference.targets]
    assert plan.record() == reference.record()


def test_each_layout_touches_every_parameter_it_reads_or_writes(family):
    """What ZeRO-3 needs of ``Layout.touched``: a target initialised while every other parameter of the model is an
    empty shard writes exactly what it writes in a whole model."""
    original = build(family)
    recipe = Plan(original, None).recipe
    for index, target in enumerate(Plan(original, None).selected()):
        whole, partitioned = copy.deepcopy(original), copy.deepcopy(original)
        results = []
        for model in (whole, partitioned):
            module = model.get_submodule(target.name)
            if model is partitioned:
                emptied(model, keep=target.layout.touched(module))
            torch.manual_seed(index)
            with torch.no_grad():
                target.layout.initialize(module, recipe.kinds[target.layout.kind], model, depth=target.depth)
            results.append({id(p): p.detach().clone() for p in target.layout.touched(module)})
        names = {id(p): n for n, p in whole.get_submodule(target.name).named_parameters()}
        for (key, expected), actual in zip(results[0].items(), results[1].values()):
            assert torch.equal(expected, actual), f"{family} {target.name}: {names.get(key)}"
        changed = [n for n, p in whole.named_parameters() if not torch.equal(p, original.get_parameter(n))]
        touched = {id(p) for p in target.layout.touched(whole.get_submodule(target.name))}
        assert changed and all(id(whole.get_parameter(n)) in touched for n in changed), (target.name, changed)


def test_only_layers_below_the_gathered_modules_are_left_to_finish():
    """BERT's attention writes grandchildren (self.query, output.dense): ZeRO-3 leaves it to ``finish``; a Llama
    attention's projections are its children, gathered with it."""
    deferred = lambda model_type: sorted({type(t.module).__name__ for t in find_targets(build(model_type))[0] if reaches_deeper(t)})  # noqa: E731
    assert deferred("bert") == ["BertAttention"]
    assert deferred("roberta") == ["RobertaAttention"]
    for model_type in ("llama", "gpt2", "vit", "mamba2", "convnext", "modernbert"):
        assert deferred(model_type) == [], model_type
    attention = build("llama").model.layers[0].self_attn
    assert {id(p) for p in attention.q_proj.parameters()} <= gathered_with(attention)


def test_the_accelerate_configs_ask_for_fsdp2_and_partitioned_zero3():
    from accelerate.commands.config.config_args import ClusterConfig

    fsdp = ClusterConfig.from_yaml_file(str(ROOT / "configs" / "accelerate" / "fsdp.yaml"))
    assert fsdp.distributed_type == "FSDP" and fsdp.fsdp_config["fsdp_version"] == 2
    assert fsdp.fsdp_config["fsdp_cpu_ram_efficient_loading"] is True
    zero3 = ClusterConfig.from_yaml_file(str(ROOT / "configs" / "accelerate" / "deepspeed_zero3.yaml"))
    assert zero3.distributed_type == "DEEPSPEED" and zero3.deepspeed_config["zero_stage"] == 3
    assert zero3.deepspeed_config["zero3_init_flag"] is True  # built partitioned: the route ZeRO-3's init takes


# ------------------------------------------------------------------------------------------- two CPU processes (gloo)


def test_a_script_trains_with_two_processes(tmp_path):
    """torchrun runs the scripts as DDP on the CPU with --use_cpu true (without it, each process trains alone)."""
    from test_train_synthetic import FAST, TINY

    out = tmp_path / "run"
    torchrun(str(ROOT / "scripts" / "train_synthetic.py"), *TINY["mamba2"], *FAST, "--use_cpu", "true",
             "--output_dir", str(out), "--mimetic_init", cwd=tmp_path)  # fmt: skip
    arguments = torch.load(out / "training_args.bin", weights_only=False)
    assert (arguments.world_size, arguments.parallel_mode.value) == (2, "distributed")
    assert json.loads((out / "config.json").read_text())["mimetic_config"]["preset"] == "ssm"
    assert "L16_tf_token_accuracy" in json.loads((out / "all_results.json").read_text())


def test_ddp_and_fsdp2_ranks_hold_the_single_process_weights(tmp_path):
    """DDP: every rank builds the model from the same seed, and the ranks agree exactly (and with one process, to
    float tolerance). FSDP2 (accelerate's preparation) keeps every rank's weights, or with cpu_ram_efficient_loading
    broadcasts rank 0's into the others' shards: either way the gathered weights are the single-process build's."""
    model_types = ["llama", "gpt2", "mamba2"]  # BERT and FSDP2: see the README (accelerate cannot shard it)
    torchrun(str(WORKER), "ddp,fsdp2", str(tmp_path), *model_types, cwd=tmp_path)
    ranks = [torch.load(tmp_path / f"ddp-rank{r}.pt") for r in (0, 1)]
    gathered = torch.load(tmp_path / "fsdp2-rank0.pt")
    for model_type in model_types:
        reference = build(model_type, seed=0, mimetic_init=True).state_dict()
        assert ranks[0][model_type].keys() == ranks[1][model_type].keys() == reference.keys()
        for name, tensor in reference.items():
            assert torch.equal(ranks[0][model_type][name], ranks[1][model_type][name]), (model_type, name)
            torch.testing.assert_close(ranks[0][model_type][name], tensor, **TOLERANCE, msg=f"{model_type} {name}")
        for key in (model_type, f"{model_type} efficient"):
            assert gathered[key].keys() == reference.keys(), key
            for name, tensor in reference.items():
                torch.testing.assert_close(gathered[key][name], tensor, **TOLERANCE, msg=f"FSDP2 {key} {name}")


def test_zero3_gives_every_family_its_structure(tmp_path):
    """DeepSpeed ZeRO-3 on two CPU ranks: every registered model type built with from_config(..., mimetic_init=True)
    inside deepspeed.zero.Init has the structure tests/test_registry.py checks, read back inside GatheredParameters;
    both ranks hold the same weights, the resolved recipe and the frozen table."""
    pytest.importorskip("deepspeed")
    model_types = sorted(CONFIGS)
    torchrun(str(WORKER), "zero3", str(tmp_path), *model_types, cwd=tmp_path)
    results = [json.loads((tmp_path / f"zero3-rank{r}.json").read_text()) for r in (0, 1)]
    failed = {t: r["error"] for t, r in results[0].items() if t != "frozen" and not r["ok"]}
    assert not failed, failed
    assert results[0] == results[1]  # recipes resolved alike (the hook runs on rank 0 only)
    assert results[1]["frozen"] == ["transformer.wpe.weight"]
    states = [torch.load(tmp_path / f"zero3-rank{r}.pt") for r in (0, 1)]
    for model_type in model_types:
        for name, tensor in states[0][model_type].items():
            assert torch.equal(tensor, states[1][model_type][name]), (model_type, name)


ZERO3_ENVIRONMENT = {  # what `accelerate launch --config_file configs/accelerate/deepspeed_zero3.yaml` sets
    "ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3", "ACCELERATE_DEEPSPEED_ZERO3_INIT": "true",
    "ACCELERATE_DEEPSPEED_ZERO3_SAVE_16BIT_MODEL": "true", "ACCELERATE_GRADIENT_ACCUMULATION_STEPS": "1",
    "ACCELERATE_GRADIENT_CLIPPING": "1.0", "ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE": "none",
    "ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE": "none", "ACCELERATE_MIXED_PRECISION": "no",
}  # fmt: skip


def test_a_script_trains_bert_from_scratch_under_zero3(tmp_path, monkeypatch):
    """scripts/train_language_model.py on two CPU ranks under ZeRO-3 (accelerate's DeepSpeed settings, the model built
    partitioned): BERT, whose attention is written after the build, trains, and the saved model (learning rate 0:
    the init itself) has the mimetic structure."""
    pytest.importorskip("deepspeed")
    from test_registry import check_structure
    from test_train_language_model import TINY, write_text_files
    from transformers import AutoModelForMaskedLM

    train, validation = write_text_files(tmp_path / "data")
    for key, value in ZERO3_ENVIRONMENT.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "run"
    torchrun(str(WORKER), "script", str(tmp_path), "--model_type", "bert", "--train_file", str(train),
             "--validation_file", str(validation), "--tokenizer", "char", *TINY, "--max_steps", "2",
             "--learning_rate", "0", "--output_dir", str(out), "--mimetic_init", cwd=tmp_path)  # fmt: skip
    arguments = torch.load(out / "training_args.bin", weights_only=False)
    assert arguments.world_size == 2 and arguments.deepspeed_plugin.zero_stage == 3
    check_structure(AutoModelForMaskedLM.from_pretrained(out))


# ---------------------------------------------------------------------------------------------------------- GPU only


def launch(config: str, tmp_path: Path, *extra: str) -> dict:
    from test_train_synthetic import FAST, TINY

    out = tmp_path / config
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ROOT / "configs" / "accelerate" / config),
               "--num_processes", "2", "--main_process_port", str(free_port()), *extra,
               str(ROOT / "scripts" / "train_synthetic.py"), *TINY["gpt2"], *FAST, "--output_dir", str(out), "--mimetic_init"]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, timeout=600, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-6000:]
    return json.loads((out / "all_results.json").read_text())


two_gpus = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")


@pytest.mark.gpu
@two_gpus
@pytest.mark.parametrize("efficient", ["true", "false"])
def test_fsdp2_config_trains_from_scratch(tmp_path, efficient):
    assert "L16_tf_token_accuracy" in launch("fsdp.yaml", tmp_path, "--fsdp_cpu_ram_efficient_loading", efficient)


@pytest.mark.gpu
@two_gpus
def test_deepspeed_zero3_config_trains_from_scratch(tmp_path):
    pytest.importorskip("deepspeed")
    assert "L16_tf_token_accuracy" in launch("deepspeed_zero3.yaml", tmp_path)
