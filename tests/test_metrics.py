"""Tests of hf_mimetic.tasks.metrics on crafted predictions, stub models and tiny real models."""

from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace

import datasets
import pytest
import torch
from torch import nn

from hf_mimetic.tasks import (
    IGNORE_INDEX,
    TaskCollator,
    TaskConfig,
    from_zoology,
    make_eval_dataset,
    zoology_multiquery_ar,
)
from hf_mimetic.tasks.metrics import (
    argmax_logits,
    compute_metrics,
    evaluate_greedy,
    evaluate_lengths,
    evaluate_teacher_forced,
    greedy_generate,
    split_prompt_answer,
    teacher_forced_metrics,
)

# Two rows of aligned labels: row 0 scores tokens 2..4, row 1 tokens 1..2.
LABELS = torch.tensor([[-100, -100, 5, 6, 7], [-100, 3, 4, -100, -100]])


def perfect_predictions(labels: torch.Tensor, filler: int = 0) -> torch.Tensor:
    """Predictions whose entry t is the label of t + 1 (filler where nothing is scored)."""
    preds = torch.full_like(labels, filler)
    nxt = labels[:, 1:]
    preds[:, :-1] = torch.where(nxt != IGNORE_INDEX, nxt, torch.full_like(nxt, filler))
    return preds


def num_scored(labels: torch.Tensor) -> int:
    return int((labels[:, 1:] != IGNORE_INDEX).sum())


# ------------------------------------------------------------------ teacher forcing
def test_perfect_predictions_score_one() -> None:
    m = teacher_forced_metrics(perfect_predictions(LABELS), LABELS)
    assert m["token_accuracy"] == 1.0 and m["exact_match"] == 1.0
    assert m["num_tokens"] == num_scored(LABELS) and m["num_sequences"] == 2


def test_one_wrong_token_costs_one_token_and_its_row() -> None:
    preds = perfect_predictions(LABELS)
    preds[0, 2] += 1  # the guess for token 3 of row 0
    m = teacher_forced_metrics(preds, LABELS)
    n = num_scored(LABELS)
    assert m["token_accuracy"] == pytest.approx((n - 1) / n)
    assert m["exact_match"] == 0.5  # only row 1 is entirely right


def test_exact_match_only_counts_fully_correct_rows() -> None:
    preds = perfect_predictions(LABELS)
    preds[0, 1] += 1
    preds[1, 1] += 1
    m = teacher_forced_metrics(preds, LABELS)
    assert m["exact_match"] == 0.0
    assert m["token_accuracy"] == pytest.approx((num_scored(LABELS) - 2) / num_scored(LABELS))


def test_ignored_positions_do_not_matter() -> None:
    base = teacher_forced_metrics(perfect_predictions(LABELS), LABELS)
    noisy = perfect_predictions(LABELS, filler=9)  # other values where the next label is -100
    noisy[:, -1] = 42  # the last guess has no token to predict
    assert teacher_forced_metrics(noisy, LABELS) == base


def test_rows_without_labels_are_left_out_and_empty_is_nan() -> None:
    labels = torch.cat([LABELS, torch.full((1, 5), IGNORE_INDEX)])
    m = teacher_forced_metrics(perfect_predictions(labels), labels)
    assert m["exact_match"] == 1.0 and m["num_sequences"] == 2
    empty = teacher_forced_metrics(torch.zeros(1, 4, dtype=torch.long), torch.full((1, 4), IGNORE_INDEX))
    assert math.isnan(empty["token_accuracy"]) and math.isnan(empty["exact_match"])


def test_logits_numpy_and_1d_inputs_agree_with_ids() -> None:
    preds = perfect_predictions(LABELS)
    preds[1, 0] = 8
    logits = torch.nn.functional.one_hot(preds, 16).float()
    ref = teacher_forced_metrics(preds, LABELS)
    assert teacher_forced_metrics(logits, LABELS) == ref
    assert teacher_forced_metrics(preds.numpy(), LABELS.numpy()) == ref
    row = teacher_forced_metrics(preds[1], LABELS[1])
    assert row == teacher_forced_metrics(preds[1:], LABELS[1:])


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="same shape"):
        teacher_forced_metrics(torch.zeros(2, 4, dtype=torch.long), LABELS)


def test_shifted_labels_zoology_style() -> None:
    inputs, zlabels = zoology_multiquery_ar(vocab_size=64, num_examples=6, input_seq_len=16, num_kv_pairs=3, seed=2)
    preds = torch.where(zlabels != IGNORE_INDEX, zlabels, torch.zeros_like(zlabels))  # guess at t = label at t
    preds[0, (zlabels[0] != IGNORE_INDEX).nonzero()[0, 0]] = 1  # one wrong answer in row 0
    shifted = teacher_forced_metrics(preds, zlabels, labels_shifted=True)
    n = int((zlabels != IGNORE_INDEX).sum())
    assert shifted["token_accuracy"] == pytest.approx((n - 1) / n)
    assert shifted["exact_match"] == pytest.approx(5 / 6)
    # The aligned form from from_zoology gives the same numbers with the default shift.
    _, aligned = from_zoology(inputs, zlabels)
    padded = torch.cat([preds, torch.zeros(6, 1, dtype=torch.long)], dim=1)
    assert teacher_forced_metrics(padded, aligned) == shifted


def test_compute_metrics_with_eval_prediction_and_argmax() -> None:
    from transformers import EvalPrediction

    preds = perfect_predictions(LABELS)
    preds[0, 3] = 0
    logits = torch.nn.functional.one_hot(preds, 16).float()
    ids = argmax_logits((logits, torch.zeros(1)), LABELS)  # models may return (logits, cache, ...)
    assert torch.equal(ids, preds)
    got = compute_metrics(EvalPrediction(predictions=ids.numpy(), label_ids=LABELS.numpy()))
    ref = teacher_forced_metrics(preds, LABELS)
    assert got == {"token_accuracy": ref["token_accuracy"], "exact_match": ref["exact_match"]}
    assert compute_metrics(EvalPrediction(predictions=logits.numpy(), label_ids=LABELS.numpy())) == got


# ------------------------------------------------------------------ stub models
class RuleLM(nn.Module):
    """Stub causal LM: the logits at t are one-hot on ``rule(prefix up to t)``."""

    def __init__(self, vocab_size: int, rule: Callable[[list[int]], int]) -> None:
        super().__init__()
        self.vocab_size, self.rule = vocab_size, rule
        self.calls = 0

    def forward(self, input_ids: torch.Tensor, **_: object) -> SimpleNamespace:
        self.calls += 1
        nxt = [[self.rule(row[: t + 1]) for t in range(len(row))] for row in input_ids.tolist()]
        return SimpleNamespace(logits=nn.functional.one_hot(torch.tensor(nxt), self.vocab_size).float())


def answer_rule(cfg: TaskConfig, target: Callable[[list[int]], list[int]],
                wrong_at: int | None = None, wrong_if: Callable[[list[int]], bool] = lambda p: False) -> RuleLM:
    """Oracle for prompt → answer tasks, optionally wrong at answer index ``wrong_at``.

    The rule looks only at the prompt and the position, so a wrong token never
    changes what the model emits afterwards.
    """

    def rule(prefix: list[int]) -> int:
        if cfg.sep_token_id not in prefix:
            return 0
        sep = prefix.index(cfg.sep_token_id)
        prompt = prefix[int(cfg.use_bos): sep]
        answer = target(prompt) + [cfg.eos_token_id]
        j = len(prefix) - 1 - sep
        if j >= len(answer):
            return cfg.pad_token_id
        if j == wrong_at and wrong_if(prompt):
            return (answer[j] + 1) % cfg.vocab_size
        return answer[j]

    return RuleLM(cfg.total_vocab_size, rule)


def mqar_rule(cfg: TaskConfig) -> RuleLM:
    """Oracle for native MQAR: after SEP, answer each query with its key's value."""

    def rule(prefix: list[int]) -> int:
        if cfg.sep_token_id not in prefix:
            return 0
        sep = prefix.index(cfg.sep_token_id)
        ctx = prefix[:sep]
        kv = dict(zip(ctx[0::2], ctx[1::2]))
        return kv.get(prefix[-1], 0) if (len(prefix) - 1 - sep) % 2 == 1 else 0

    return RuleLM(cfg.total_vocab_size, rule)


TARGETS: dict[str, Callable[[list[int]], list[int]]] = {
    "copy": lambda p: list(p), "stack_copy": lambda p: p[::-1], "sort": sorted,
}


@pytest.mark.parametrize("task", sorted(TARGETS))
@pytest.mark.parametrize("use_bos", [False, True])
def test_greedy_oracle_scores_one(task: str, use_bos: bool) -> None:
    cfg = TaskConfig(task=task, vocab_size=20, max_len=6, use_bos=use_bos)
    ds = make_eval_dataset(cfg, 6, 7)
    model = answer_rule(cfg, TARGETS[task])
    res = evaluate_greedy(model, ds, batch_size=3, return_predictions=True)
    assert res["exact_match"] == 1.0 and res["token_accuracy"] == 1.0
    assert res["num_sequences"] == 7 and res["num_tokens"] == 7 * (6 + 1)
    assert res["predictions"] == [ex["input_ids"][ex["prompt_length"]:] for ex in ds]
    tf = evaluate_teacher_forced(model, ds, batch_size=4)
    assert tf["token_accuracy"] == 1.0 and tf["exact_match"] == 1.0


def test_greedy_counts_errors_per_token_and_per_row() -> None:
    cfg = TaskConfig(task="copy", vocab_size=20, min_len=2, max_len=8, seed=9)
    # Two lengths, so examples are grouped into separate generate batches.
    ds = datasets.concatenate_datasets([make_eval_dataset(cfg, 5, 6), make_eval_dataset(cfg, 8, 5)])

    def is_even(prompt: list[int]) -> bool:
        return prompt[0] % 2 == 0

    model = answer_rule(cfg, TARGETS["copy"], wrong_at=1, wrong_if=is_even)
    res = evaluate_greedy(model, ds, batch_size=4)
    bad = sum(is_even(ex["input_ids"][: ex["length"]]) for ex in ds)
    tokens = sum(ex["length"] + 1 for ex in ds)
    assert 0 < bad < len(ds)  # the data exercise both cases
    assert res["exact_match"] == pytest.approx((len(ds) - bad) / len(ds))
    assert res["token_accuracy"] == pytest.approx((tokens - bad) / tokens)
    assert res["num_tokens"] == tokens


def test_greedy_uses_model_outputs_not_the_target() -> None:
    # An echo model repeats its last input token: right only where the answer is constant.
    cfg = TaskConfig(task="copy", vocab_size=20, max_len=3)
    examples = [{"input_ids": [4, 4, 21, 4, 4, 22], "labels": [-100, -100, -100, 4, 4, 22]}]
    echo = RuleLM(cfg.total_vocab_size, lambda prefix: prefix[-1])
    res = evaluate_greedy(echo, examples, return_predictions=True)
    assert res["predictions"] == [[21, 21, 21]]  # echoes SEP forever: never sees the true answer
    assert res["token_accuracy"] == 0.0 and res["exact_match"] == 0.0


def test_mqar_teacher_forced_and_greedy_rejects_interleaved_answers() -> None:
    cfg = TaskConfig(task="mqar", vocab_size=40, min_len=2, max_len=6)
    ds = make_eval_dataset(cfg, 6, 5)
    tf = evaluate_teacher_forced(mqar_rule(cfg), ds, batch_size=2, pad_token_id=cfg.pad_token_id)
    assert tf["token_accuracy"] == 1.0 and tf["num_tokens"] == 5 * 6
    with pytest.raises(ValueError, match="contiguous.*evaluate_teacher_forced"):
        evaluate_greedy(mqar_rule(cfg), ds)


def test_teacher_forced_counts_wrong_answers() -> None:
    cfg = TaskConfig(task="mqar", vocab_size=40, min_len=3, max_len=3, seed=5)
    ds = make_eval_dataset(cfg, 3, 8)
    oracle = mqar_rule(cfg)
    broken = RuleLM(oracle.vocab_size, lambda prefix: 0 if prefix[-1] % 2 else oracle.rule(prefix))
    res = evaluate_teacher_forced(broken, ds)
    queries = [q for ex in ds for q in ex["input_ids"][2 * 3 + 1:: 2]]
    odd = sum(q % 2 for q in queries)
    assert res["token_accuracy"] == pytest.approx(1 - odd / len(queries))


def test_split_prompt_answer_errors() -> None:
    assert split_prompt_answer([1, 2, 3, 9, 9], [-100, -100, 3, -100, -100]) == ([1, 2], [3])
    with pytest.raises(ValueError, match="no labelled token"):
        split_prompt_answer([1, 2], [-100, -100])
    with pytest.raises(ValueError, match="prompt would be empty"):
        split_prompt_answer([1, 2], [1, 2])
    with pytest.raises(ValueError, match="2 tokens but labels has 1"):
        split_prompt_answer([1, 2], [1])


def test_evaluate_lengths_reports_each_length() -> None:
    cfg = TaskConfig(task="stack_copy", vocab_size=20, min_len=1, max_len=4)
    model = answer_rule(cfg, TARGETS["stack_copy"])
    res = evaluate_lengths(model, cfg, [4, 8, 16], num_examples=3)
    assert sorted(res) == [4, 8, 16]
    assert all(v == 1.0 for r in res.values() for v in r.values())
    assert set(res[4]) == {"tf_token_accuracy", "tf_exact_match", "greedy_exact_match", "greedy_token_accuracy"}


def test_stub_model_mode_is_restored() -> None:
    cfg = TaskConfig(task="copy", vocab_size=20, max_len=3)
    model = answer_rule(cfg, TARGETS["copy"]).train()
    evaluate_greedy(model, make_eval_dataset(cfg, 3, 2))
    assert model.training


# ------------------------------------------------------------------ tiny real models
def tiny_gpt2(vocab_size: int, positions: int = 64) -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=vocab_size, n_embd=16, n_layer=1, n_head=2, n_positions=positions))


def tiny_mamba(vocab_size: int) -> nn.Module:
    from transformers import MambaConfig, MambaForCausalLM

    torch.manual_seed(0)
    return MambaForCausalLM(MambaConfig(vocab_size=vocab_size, hidden_size=16, num_hidden_layers=1, state_size=4))


def tiny_mamba2(vocab_size: int) -> nn.Module:
    from transformers import Mamba2Config, Mamba2ForCausalLM

    torch.manual_seed(0)
    cfg = Mamba2Config(vocab_size=vocab_size, hidden_size=16, num_hidden_layers=1, state_size=4, num_heads=4,
                       head_dim=8, n_groups=1, expand=2, chunk_size=8)
    return Mamba2ForCausalLM(cfg)


@pytest.mark.parametrize("make_model", [tiny_gpt2, tiny_mamba, tiny_mamba2], ids=["gpt2", "mamba", "mamba2"])
def test_generate_path_matches_plain_greedy_loop(make_model: Callable[[int], nn.Module]) -> None:
    cfg = TaskConfig(task="copy", vocab_size=12, max_len=6, seed=1)
    model = make_model(cfg.total_vocab_size)
    ds = datasets.concatenate_datasets([make_eval_dataset(cfg, 4, 3), make_eval_dataset(cfg, 6, 3)])
    loop = evaluate_greedy(model, ds, batch_size=2, use_generate=False, return_predictions=True)
    # Make the model's default EOS a token it actually emits early: generation must not stop there.
    first = loop["predictions"][0][0]
    model.generation_config.eos_token_id = first
    model.config.eos_token_id = first
    cached = evaluate_greedy(model, ds, batch_size=2, use_generate=True, return_predictions=True)
    assert cached == loop
    assert all(len(p) == ex["length"] + 1 for p, ex in zip(cached["predictions"], ds))


def test_greedy_generate_shape_checks() -> None:
    with pytest.raises(ValueError, match=r"\(batch, length\)"):
        greedy_generate(tiny_gpt2(8), torch.tensor([1, 2, 3]), 2)


def test_zoology_tensors_evaluate_like_zoology() -> None:
    # Zoology's accuracy: argmax of the logits on `inputs`, compared with its pre-shifted labels.
    inputs, zlabels = zoology_multiquery_ar(vocab_size=32, num_examples=4, input_seq_len=16, num_kv_pairs=3, seed=0)
    model = tiny_gpt2(32)
    with torch.no_grad():
        zoology_style = teacher_forced_metrics(model(input_ids=inputs).logits, zlabels, labels_shifted=True)
    ids, aligned = from_zoology(inputs, zlabels)
    examples = [{"input_ids": a, "labels": b} for a, b in zip(ids.tolist(), aligned.tolist())]
    assert evaluate_teacher_forced(model, examples, batch_size=3) == zoology_style


def test_trainer_evaluate_matches_plain_evaluation(tmp_path) -> None:
    from transformers import Trainer, TrainingArguments

    cfg = TaskConfig(task="copy", vocab_size=12, min_len=2, max_len=6, seed=4)
    # Mixed lengths: the Trainer pads predictions and labels across batches with -100.
    ds = datasets.concatenate_datasets([make_eval_dataset(cfg, 6, 3), make_eval_dataset(cfg, 2, 4)])
    model = tiny_gpt2(cfg.total_vocab_size)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=3, report_to=[], use_cpu=True)
    trainer = Trainer(model=model, args=args, eval_dataset=ds, data_collator=TaskCollator.from_config(cfg),
                      compute_metrics=compute_metrics, preprocess_logits_for_metrics=argmax_logits)
    got = trainer.evaluate()
    ref = evaluate_teacher_forced(model, ds, pad_token_id=cfg.pad_token_id)
    assert got["eval_token_accuracy"] == pytest.approx(ref["token_accuracy"])
    assert got["eval_exact_match"] == pytest.approx(ref["exact_match"])
