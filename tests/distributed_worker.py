"""One rank of a distributed test: tests/test_distributed.py starts two with torchrun (gloo, on the CPU).

    python -m torch.distributed.run --nproc_per_node 2 tests/distributed_worker.py MODE[,MODE] OUT_DIR [MODEL_TYPE ...]

Modes (each rank writes ``OUT_DIR/<mode>-rank<r>.pt`` or ``.json``; the test compares them):

* ``ddp``: every rank builds each model type with mimetic init from the same seed (what DDP and the scripts do) and
  saves its state dict.
* ``zero3``: DeepSpeed ZeRO-3 on the CPU (gloo): each model type is built with ``from_config(..., mimetic_init=True)``
  inside ``deepspeed.zero.Init``; its weights are gathered, the structure is checked as tests/test_registry.py checks
  it (each model type's outcome is written, errors included), and every rank saves the gathered state dicts.
* ``fsdp2``: FSDP2 on the CPU (gloo), sharded by accelerate's own ``fsdp2_prepare_model`` (without, then with
  ``cpu_ram_efficient_loading``) after every rank built the model; a forward and backward pass run, and rank 0 saves
  the gathered full state dicts (keys ``"<model type>"`` and ``"<model type> efficient"``).
* ``script``: scripts/train_language_model.py with the arguments that follow OUT_DIR (in place of model types).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from conftest import build  # noqa: E402  (also imports hf_mimetic: the hook)

SEED = 0


def rank_and_world() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def init_gloo() -> None:
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("gloo")


def ddp(out: Path, model_types: list[str]) -> None:
    rank, _ = rank_and_world()
    init_gloo()
    states = {t: build(t, seed=SEED, mimetic_init=True).state_dict() for t in model_types}
    torch.save(states, out / f"ddp-rank{rank}.pt")
    torch.distributed.barrier()


def without_shm_kernel() -> None:
    """DeepSpeed JIT-compiles a shared-memory all-reduce kernel for the CPU on first use (4 minutes on 2 cores, then
    cached); without the kernel, gloo does the collectives."""
    import deepspeed.ops

    deepspeed.ops.__compatible_ops__ = {}


def zero3(out: Path, model_types: list[str]) -> None:
    import deepspeed
    from test_registry import check_structure
    from transformers.integrations import HfDeepSpeedConfig

    rank, _ = rank_and_world()
    without_shm_kernel()
    deepspeed.init_distributed(dist_backend="gloo")
    # Kept alive while the models are built: transformers reads ZeRO-3 from it (is_deepspeed_zero3_enabled).
    ds_config = HfDeepSpeedConfig({"train_micro_batch_size_per_gpu": 1, "zero_optimization": {"stage": 3}})
    results, states = {}, {}
    for model_type in model_types:
        try:
            model = build(model_type, seed=SEED, mimetic_init=True)
            params = list(model.parameters())
            assert all(p.numel() == 0 for p in params), "ZeRO-3 did not partition the model"
            with deepspeed.zero.GatheredParameters(params):
                check_structure(model)
                states[model_type] = {k: v.clone() for k, v in model.state_dict().items()}
            results[model_type] = {"ok": True, "recipe": model.config.mimetic_config}
        except Exception as error:  # reported per model type, so that one failure does not hide the others
            results[model_type] = {"ok": False, "error": "".join(traceback.format_exception_only(error)).strip()}
    # Settings applied on every rank (initialize_weights_zero3 calls the hook on rank 0 only).
    frozen = build("gpt2", seed=SEED, mimetic_init=True, mimetic_config={"freeze_position_embeddings": True})
    results["frozen"] = sorted(name for name, p in frozen.named_parameters() if not p.requires_grad)
    del ds_config
    (out / f"zero3-rank{rank}.json").write_text(json.dumps(results, indent=1))
    torch.save(states, out / f"zero3-rank{rank}.pt")


def fsdp2(out: Path, model_types: list[str]) -> None:
    """accelerate's own FSDP2 preparation (``fsdp2_prepare_model``), called directly: accelerate turns FSDP on only
    for accelerators (on the CPU its state stays MULTI_CPU), but the function itself runs on the CPU with gloo."""
    from types import SimpleNamespace

    from accelerate import FullyShardedDataParallelPlugin
    from accelerate.utils.fsdp_utils import fsdp2_prepare_model
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    from torch.distributed.device_mesh import init_device_mesh

    rank, world = rank_and_world()
    init_gloo()
    states = {}
    for efficient in (False, True):
        for model_type in model_types:
            # Every rank builds the model, as the scripts do. With cpu_ram_efficient_loading rank 0's weights must
            # win: the other ranks draw from another seed, so that only the broadcast can make the shards agree.
            model = build(model_type, seed=SEED if rank == 0 or not efficient else SEED + rank, mimetic_init=True)
            plugin = FullyShardedDataParallelPlugin(
                fsdp_version=2, auto_wrap_policy="transformer_based_wrap", cpu_ram_efficient_loading=efficient,
                transformer_cls_names_to_wrap=sorted(model._no_split_modules),
            )  # fmt: skip
            # A new mesh per model: sharding a second model on the first one's mesh fails in torch 2.14 ("Cannot
            # concatenate overlapping meshes").
            mesh = init_device_mesh("cpu", (world,), mesh_dim_names=("dp_shard",))
            accelerator = SimpleNamespace(
                state=SimpleNamespace(fsdp_plugin=plugin), torch_device_mesh=mesh,
                parallelism_config=SimpleNamespace(fsdp_dim_names=("dp_shard",)), is_main_process=rank == 0,
                mixed_precision="no", device=torch.device("cpu"),
            )  # fmt: skip
            model = fsdp2_prepare_model(accelerator, model)
            ids = torch.randint(0, model.config.vocab_size, (2, 8), generator=torch.Generator().manual_seed(rank))
            model(input_ids=ids, labels=ids).loss.backward()  # the sharded model runs
            full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
            states[f"{model_type}{' efficient' if efficient else ''}"] = {k: v.clone() for k, v in full.items()}
    torch.save(states, out / f"fsdp2-rank{rank}.pt")  # full state dicts on rank 0 only (cpu_offload gathers there)
    torch.distributed.barrier()


def script(out: Path, argv: list[str]) -> None:
    """scripts/train_language_model.py's ``main`` with ``argv``, under whatever the environment sets (the test sets
    accelerate's DeepSpeed variables, as ``accelerate launch`` with configs/accelerate/deepspeed_zero3.yaml does)."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "scripts"))
    import train_language_model

    if os.environ.get("ACCELERATE_USE_DEEPSPEED") == "true":
        without_shm_kernel()
    train_language_model.main(argv)


if __name__ == "__main__":
    modes, out, *types = sys.argv[1:]
    for mode in modes.split(","):  # several modes in one launch save a start of torch on each rank
        {"ddp": ddp, "zero3": zero3, "fsdp2": fsdp2, "script": script}[mode](Path(out), types)
