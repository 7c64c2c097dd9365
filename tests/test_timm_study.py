"""experiments/timm_vit.py (issue 32) in a few steps on random images, and the study runner's paired baseline."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("timm")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import timm_vit  # noqa: E402
from _runner import Study, paired_table  # noqa: E402

TINY = {"model_name": "vit_tiny_patch16_224", "img_size": 8, "patch_size": 4, "depth": 1, "embed_dim": 16,
        "num_heads": 2, "num_classes": 3}  # fmt: skip


def random_splits(n: int = 24) -> timm_vit.Splits:
    generator = torch.Generator().manual_seed(0)
    return {name: (torch.randn(n, 3, 8, 8, generator=generator), torch.randint(0, 3, (n,), generator=generator))
            for name in ("train", "validation", "test")}  # fmt: skip


def test_default_is_timms_own_init_and_mimetic_is_not():
    import timm

    torch.manual_seed(0)
    own = timm.create_model(**TINY).state_dict()
    torch.manual_seed(0)
    default = timm_vit.build(TINY, None).state_dict()
    torch.manual_seed(0)
    mimetic = timm_vit.build(TINY, {})
    assert all(torch.equal(own[k], default[k]) for k in own)
    assert mimetic.pretrained_cfg["mimetic_config"]["preset"] == "vision"
    assert not torch.equal(mimetic.state_dict()["blocks.0.attn.qkv.weight"], own["blocks.0.attn.qkv.weight"])
    assert not torch.equal(mimetic.state_dict()["pos_embed"], own["pos_embed"])


def test_a_cell_returns_the_runners_record():
    recipe = timm_vit.TimmRun(TINY, max_steps=4, batch_size=8, eval_every=2, log_every=2)
    record = timm_vit.train(recipe, {}, 1e-3, 0, random_splits())
    assert [h["step"] for h in record["history"]] == [2, 4]
    assert [h["step"] for h in record["train_history"]] == [2, 4]
    assert set(record["results"]) == {"eval_accuracy", "eval_loss", "test_accuracy", "test_loss"}
    assert record["results"]["eval_accuracy"] == record["history"][-1]["eval_accuracy"]
    assert 0.0 <= record["results"]["test_accuracy"] <= 1.0
    # The seed fixes the run: the same cell twice gives the same losses.
    again = timm_vit.train(recipe, {}, 1e-3, 0, random_splits())
    assert again["train_history"] == record["train_history"]


def test_paired_table_subtracts_the_studys_baseline():
    study = Study(run=None, variants={"covariance": {}, "mean": {"mlp_mean": 0.1}}, learning_rates=[1e-3],
                  select="acc", columns=["acc"], curves={}, baseline="covariance")  # fmt: skip
    groups = {("covariance", 1e-3): [{"seed": s, "results": {"acc": 0.5}} for s in (0, 1)],
              ("mean", 1e-3): [{"seed": 0, "results": {"acc": 0.6}}, {"seed": 1, "results": {"acc": 0.4}}]}  # fmt: skip
    lines = paired_table(study, groups, {"covariance": 1e-3, "mean": 1e-3}, ["acc"])
    assert "variant − covariance" in lines[1]
    assert lines[-1] == "| mean | +0.0000 [-0.100, +0.100], 1/2 |"
