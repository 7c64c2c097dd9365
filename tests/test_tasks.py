"""Tests of hf_mimetic.tasks: formats, loss masks, seeding, datasets, collator, zoology I/O."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hf_mimetic.tasks import (
    IGNORE_INDEX,
    ZOOLOGY_FILLER_ID,
    TaskCollator,
    TaskConfig,
    example_rng,
    format_mqar,
    format_prompt_answer,
    format_zoology_mqar,
    from_zoology,
    make_eval_dataset,
    make_example,
    make_train_dataset,
    make_train_example,
    mqar,
    sample_example,
    to_zoology,
    zoology_gap_probabilities,
    zoology_multiquery_ar,
)

COPY_LIKE = ["copy", "stack_copy", "sort"]


def split(ex: dict) -> tuple[list[int], list[int], list[int]]:
    """(prompt data tokens, answer tokens without EOS, labels) of a copy-like example."""
    ids, labels = ex["input_ids"], ex["labels"]
    n = ex["length"]
    return ids[ex["prompt_length"] - 1 - n: ex["prompt_length"] - 1], ids[ex["prompt_length"]:-1], labels


# ------------------------------------------------------------------ config validation
@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"task": "reverse"}, r"unknown task 'reverse'.*copy.*stack_copy.*mqar.*sort"),
        ({"min_len": 5, "max_len": 3}, r"max_len=3 .*>= 5.*min_len=5"),
        ({"min_len": 0}, r"min_len=0 .*>= 1"),
        ({"vocab_size": 1}, r"vocab_size=1 .*>= 2"),
        ({"seed": -1}, r"seed=-1 .*>= 0"),
        ({"task": "sort", "vocab_size": 10, "max_len": 20}, r"length=20 .*\[1, 10\].*vocab_size=10"),
        ({"task": "mqar", "vocab_size": 10, "max_len": 6}, r"length=6 .*\[1, 5\]"),
        ({"task": "mqar", "min_len": 2, "mqar_num_queries": 3}, r"mqar_num_queries=3 .*\[1, 2\]"),
        ({"sep_token_id": 3}, r"sep_token_id=3 .*collide with data tokens \[0, 512\)"),
        ({"sep_token_id": 600, "eos_token_id": 600}, r"distinct"),
        ({"mqar_format": "hazy"}, r"unknown mqar_format 'hazy'.*native.*zoology"),
        ({"task": "copy", "mqar_format": "zoology"}, r"needs task='mqar'"),
        ({"task": "mqar", "mqar_format": "zoology", "vocab_size": 64, "max_len": 3, "mqar_seq_len": 15},
         r"mqar_seq_len=15 must be even"),
        ({"task": "mqar", "mqar_format": "zoology", "vocab_size": 64, "max_len": 4, "mqar_seq_len": 12},
         r"mqar_seq_len=12 .*\[16, 63\]"),
        ({"task": "mqar", "mqar_format": "zoology", "vocab_size": 64, "max_len": 16}, r"length=16 .*\[1, 15\]"),
        ({"task": "mqar", "power_a": 0.0}, r"power_a=0.0 .*> 0"),
        ({"max_len": 2.5}, r"max_len must be an int"),
    ],
)
def test_bad_config_raises_value_error_naming_value_and_range(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        TaskConfig(**kwargs)


def test_eval_length_is_validated_against_task_feasibility_not_max_len() -> None:
    cfg = TaskConfig(task="sort", vocab_size=16, max_len=4)
    assert len(make_eval_dataset(cfg, 16, 2)) == 2  # 4x max_len is fine while it fits the vocab
    with pytest.raises(ValueError, match=r"length=17 .*\[1, 16\]"):
        make_eval_dataset(cfg, 17, 2)
    with pytest.raises(ValueError, match=r"num_examples=0"):
        make_eval_dataset(cfg, 4, 0)


def test_special_tokens_default_after_data_tokens_and_are_configurable() -> None:
    cfg = TaskConfig(vocab_size=20, use_bos=True)
    assert (cfg.pad_token_id, cfg.sep_token_id, cfg.eos_token_id, cfg.bos_token_id) == (20, 21, 22, 23)
    assert cfg.total_vocab_size == 24
    custom = TaskConfig(vocab_size=20, pad_token_id=30, sep_token_id=25, eos_token_id=26)
    assert not custom.use_bos and custom.total_vocab_size == 31
    assert TaskConfig(vocab_size=20, bos_token_id=40).use_bos  # setting the id turns BOS on


def test_config_round_trips_through_asdict() -> None:
    cfg = TaskConfig(task="mqar", vocab_size=30, max_len=5, use_bos=True, seed=3)
    assert TaskConfig(**dataclasses.asdict(cfg)) == cfg


# ------------------------------------------------------------------ formats and masks
@pytest.mark.parametrize("task", COPY_LIKE)
@pytest.mark.parametrize("use_bos", [False, True])
def test_copy_like_format_and_loss_mask(task: str, use_bos: bool) -> None:
    cfg = TaskConfig(task=task, vocab_size=40, max_len=12, use_bos=use_bos, seed=1)
    for i in range(20):
        n = 1 + i % 12
        ex = make_example(cfg, n, i)
        ids, labels = ex["input_ids"], ex["labels"]
        prompt, answer, _ = split(ex)
        assert len(ids) == len(labels) == cfg.sequence_length(n) == 2 * n + 2 + use_bos
        assert ex["prompt_length"] == n + 1 + use_bos and ex["length"] == n
        assert ids[: int(use_bos)] == ([cfg.bos_token_id] if use_bos else [])
        assert ids[ex["prompt_length"] - 1] == cfg.sep_token_id and ids[-1] == cfg.eos_token_id
        assert all(0 <= t < cfg.vocab_size for t in prompt + answer)
        # Loss only on the pasted part and the EOS; aligned with input_ids there.
        assert labels[: ex["prompt_length"]] == [IGNORE_INDEX] * ex["prompt_length"]
        assert labels[ex["prompt_length"]:] == ids[ex["prompt_length"]:]
        if task == "copy":
            assert answer == prompt
        elif task == "stack_copy":
            assert answer == prompt[::-1]
        else:
            assert answer == sorted(prompt) and len(set(prompt)) == n  # without replacement


def test_sort_can_use_the_whole_vocabulary() -> None:
    cfg = TaskConfig(task="sort", vocab_size=8, max_len=8)
    _, answer, _ = split(make_example(cfg, 8, 0))
    assert answer == list(range(8))


def test_format_prompt_answer_layout() -> None:
    cfg = TaskConfig(vocab_size=10, use_bos=True)
    ex = format_prompt_answer([7, 3], [3, 7], cfg)
    bos, sep, eos = cfg.bos_token_id, cfg.sep_token_id, cfg.eos_token_id
    assert ex["input_ids"] == [bos, 7, 3, sep, 3, 7, eos]
    assert ex["labels"] == [IGNORE_INDEX] * 4 + [3, 7, eos]


@pytest.mark.parametrize("num_queries", [None, 2])
def test_native_mqar_invariants(num_queries: int | None) -> None:
    cfg = TaskConfig(task="mqar", vocab_size=32, min_len=2, max_len=8, mqar_num_queries=num_queries, seed=4)
    half = cfg.vocab_size // 2
    for i in range(20):
        n = 2 + i % 7
        ex = make_example(cfg, n, i)
        ids, labels = ex["input_ids"], ex["labels"]
        keys, values = ids[0: 2 * n: 2], ids[1: 2 * n: 2]
        assert ids[2 * n] == cfg.sep_token_id
        assert len(set(keys)) == n and all(0 <= k < half for k in keys)  # each key once: no overwriting
        assert all(half <= v < cfg.vocab_size for v in values)
        kv = dict(zip(keys, values))
        queries, answers = ids[2 * n + 1:: 2], ids[2 * n + 2:: 2]
        assert len(queries) == mqar.num_queries(cfg, n) and len(set(queries)) == len(queries)
        assert answers == [kv[q] for q in queries]
        # Loss exactly on the answers, each label equal to its key's value.
        scored = [t for t, lab in enumerate(labels) if lab != IGNORE_INDEX]
        assert scored == list(range(2 * n + 2, len(ids), 2))
        assert [labels[t] for t in scored] == [kv[ids[t - 1]] for t in scored]
        assert ex["prompt_length"] == scored[0] and len(ids) == cfg.sequence_length(n)


def test_format_mqar_rejects_repeated_keys() -> None:
    cfg = TaskConfig(task="mqar", vocab_size=10, max_len=2)
    with pytest.raises(ValueError, match="distinct"):
        format_mqar([1, 1], [5, 6], [0], cfg)


# ------------------------------------------------------------------ seeding
@pytest.mark.parametrize("task", ["copy", "stack_copy", "mqar", "sort"])
def test_same_seed_same_examples_different_seed_different(task: str) -> None:
    cfg = TaskConfig(task=task, vocab_size=64, max_len=16, seed=11)
    a = make_eval_dataset(cfg, 16, 8)
    b = make_eval_dataset(cfg, 16, 8)
    c = make_eval_dataset(dataclasses.replace(cfg, seed=12), 16, 8)
    assert a["input_ids"] == b["input_ids"]
    assert a["input_ids"] != c["input_ids"]


def test_example_i_does_not_depend_on_examples_before_it() -> None:
    cfg = TaskConfig(task="copy", vocab_size=64, max_len=16, seed=5)
    big, small = make_eval_dataset(cfg, 10, 12), make_eval_dataset(cfg, 10, 4)
    assert big[:4] == small[:4]
    assert big[9] == make_example(cfg, 10, 9)  # random access without generating 0..8


def test_splits_and_lengths_use_distinct_streams() -> None:
    cfg = TaskConfig(task="copy", vocab_size=64, max_len=16)
    assert make_example(cfg, 8, 0, split="eval") != make_example(cfg, 8, 0, split="train")
    with pytest.raises(ValueError, match="unknown split 'test'"):
        example_rng(0, "test", 8, 0)

    def draw(length: int) -> list[int]:
        return example_rng(0, "eval", length, 0).integers(0, 1 << 30, size=4).tolist()

    assert draw(8) != draw(16)


# ------------------------------------------------------------------ datasets
def test_eval_dataset_has_fixed_length_at_L_2L_4L() -> None:
    cfg = TaskConfig(task="copy", vocab_size=26, min_len=1, max_len=8)
    for length in (8, 16, 32):
        ds = make_eval_dataset(cfg, length, 5)
        assert set(ds.column_names) == {"input_ids", "labels", "prompt_length", "length"}
        assert set(ds["length"]) == {length}
        assert {len(ids) for ids in ds["input_ids"]} == {cfg.sequence_length(length)}


def test_train_dataset_lengths_uniform_range_and_reproducible() -> None:
    cfg = TaskConfig(task="stack_copy", vocab_size=26, min_len=3, max_len=6, seed=2)
    first = list(make_train_dataset(cfg).take(60))
    again = list(make_train_dataset(cfg).take(60))
    assert first == again
    assert {ex["length"] for ex in first} == {3, 4, 5, 6}
    assert first[7] == make_train_example(cfg, 7)
    assert first[0] != make_example(cfg, first[0]["length"], 0)  # train never repeats the eval stream


def test_train_dataset_finite_and_sharded_covers_each_index_once() -> None:
    cfg = TaskConfig(task="sort", vocab_size=26, min_len=2, max_len=5, seed=3)
    plain = list(make_train_dataset(cfg, num_examples=9))
    sharded = list(make_train_dataset(cfg, num_examples=9, num_shards=3))
    assert len(plain) == 9 and plain == [make_train_example(cfg, i) for i in range(9)]
    assert sorted(tuple(ex["input_ids"]) for ex in sharded) == sorted(tuple(ex["input_ids"]) for ex in plain)


# ------------------------------------------------------------------ collator
def test_collator_right_pads_and_masks() -> None:
    cfg = TaskConfig(task="copy", vocab_size=26, max_len=8)
    exs = [make_example(cfg, n, 0) for n in (2, 5)]
    batch = TaskCollator.from_config(cfg)(exs)
    assert set(batch) == {"input_ids", "labels", "attention_mask"}
    assert all(t.dtype == torch.long for t in batch.values())
    short, long_ = exs
    width = len(long_["input_ids"])
    assert batch["input_ids"].shape == (2, width)
    pad = width - len(short["input_ids"])
    assert batch["input_ids"][0].tolist() == short["input_ids"] + [cfg.pad_token_id] * pad
    assert batch["labels"][0].tolist() == short["labels"] + [IGNORE_INDEX] * pad
    assert batch["attention_mask"].tolist() == [[1] * len(short["input_ids"]) + [0] * pad, [1] * width]
    assert batch["labels"][1].tolist() == long_["labels"]


def test_collator_options_and_errors() -> None:
    collate = TaskCollator(pad_token_id=0, return_attention_mask=False, pad_to_multiple_of=4)
    batch = collate([{"input_ids": [1, 2, 3], "labels": [-100, 2, 3], "length": 1}])
    assert set(batch) == {"input_ids", "labels"} and batch["input_ids"].shape == (1, 4)
    with pytest.raises(ValueError, match="3 tokens but labels has 2"):
        collate([{"input_ids": [1, 2, 3], "labels": [2, 3]}])
    with pytest.raises(ValueError, match="empty"):
        collate([])


# ------------------------------------------------------------------ zoology format
# Written out by hand from zoology's multiquery_ar rules, V = 12, 2 pairs, L = 8:
# context "2 8 4 7" (keys 2, 4 in [1, 6), values 8, 7 in [6, 12)); query region of
# L - C = 4 positions, gaps in [0, 2); key 4 at gap 0 (offset 0), key 2 at gap 1
# (offset 2). Full sequence (L + 1 tokens): 2 8 4 7 | 4 0 2 0 0; the value is the
# label right after its queried key. Zoology returns seq[:-1] and labels[1:].
HAND_SEQ = [2, 8, 4, 7, 4, 0, 2, 0, 0]
HAND_FULL_LABELS = [-100, -100, -100, -100, -100, 7, -100, 8, -100]
HAND_INPUTS = [2, 8, 4, 7, 4, 0, 2, 0]
HAND_LABELS = [-100, -100, -100, -100, 7, -100, 8, -100]


def test_zoology_writer_matches_hand_written_example() -> None:
    ex = format_zoology_mqar(keys=[2, 4], values=[8, 7], gaps=[1, 0], input_seq_len=8)
    assert ex["input_ids"] == HAND_SEQ and ex["labels"] == HAND_FULL_LABELS
    inputs, labels = to_zoology(ex["input_ids"], ex["labels"])
    assert inputs.tolist() == [HAND_INPUTS] and labels.tolist() == [HAND_LABELS]


def test_zoology_reader_matches_hand_written_example_and_round_trips() -> None:
    ids, labels = from_zoology(torch.tensor([HAND_INPUTS]), np.array([HAND_LABELS]))
    assert ids.tolist() == [HAND_SEQ] and labels.tolist() == [HAND_FULL_LABELS]
    back = to_zoology(ids, labels)
    assert back[0].tolist() == [HAND_INPUTS] and back[1].tolist() == [HAND_LABELS]
    with pytest.raises(ValueError, match="same shape"):
        from_zoology([[1, 2, 3]], [[-100, 2]])


def test_zoology_writer_rejects_gaps_outside_query_region() -> None:
    with pytest.raises(ValueError, match=r"gaps must lie in \[0, 2\)"):
        format_zoology_mqar([2, 4], [8, 7], [0, 2], input_seq_len=8)


def check_zoology_rules(inputs: torch.Tensor, labels: torch.Tensor, vocab_size: int, num_kv_pairs: int,
                        random_non_queries: bool) -> None:
    """Assert zoology's multiquery_ar rules on (inputs, labels) of shape (B, L)."""
    half, context = vocab_size // 2, 2 * num_kv_pairs
    assert inputs.shape == labels.shape and inputs.shape[1] % 2 == 0
    for x, y in zip(inputs.tolist(), labels.tolist()):
        keys, values = x[0:context:2], x[1:context:2]
        assert len(set(keys)) == num_kv_pairs and all(1 <= k < half for k in keys)
        assert len(set(values)) == num_kv_pairs and all(half <= v < vocab_size for v in values)
        kv = dict(zip(keys, values))
        scored = [t for t, lab in enumerate(y) if lab != IGNORE_INDEX]
        assert len(scored) == num_kv_pairs  # every key is queried once
        assert all(t >= context and (t - context) % 2 == 0 for t in scored)  # even offsets
        assert sorted(x[t] for t in scored) == sorted(keys)
        assert all(y[t] == kv[x[t]] for t in scored)  # label = the queried key's value
        fillers = [tok for t, tok in enumerate(x[context:], context) if t not in scored]
        if not random_non_queries:
            assert set(fillers) <= {ZOOLOGY_FILLER_ID}
        assert all(0 <= tok < vocab_size for tok in fillers)


@pytest.mark.parametrize("random_non_queries", [False, True])
def test_zoology_generator_follows_the_rules(random_non_queries: bool) -> None:
    inputs, labels = zoology_multiquery_ar(vocab_size=128, num_examples=20, input_seq_len=64, num_kv_pairs=8,
                                           random_non_queries=random_non_queries, seed=1)
    assert inputs.shape == labels.shape == (20, 64) and inputs.dtype == labels.dtype == torch.long
    check_zoology_rules(inputs, labels, 128, 8, random_non_queries)
    again = zoology_multiquery_ar(vocab_size=128, num_examples=20, input_seq_len=64, num_kv_pairs=8,
                                  random_non_queries=random_non_queries, seed=1)
    assert torch.equal(inputs, again[0]) and torch.equal(labels, again[1])


def test_zoology_random_non_queries_only_replaces_filler() -> None:
    kwargs = {"vocab_size": 128, "num_examples": 10, "input_seq_len": 32, "num_kv_pairs": 4, "seed": 7}
    plain, labels = zoology_multiquery_ar(random_non_queries=False, **kwargs)
    noisy, noisy_labels = zoology_multiquery_ar(random_non_queries=True, **kwargs)
    assert torch.equal(labels, noisy_labels)
    kept = plain != ZOOLOGY_FILLER_ID
    assert torch.equal(plain[kept], noisy[kept])
    assert (noisy[~kept] != ZOOLOGY_FILLER_ID).any()


def test_zoology_power_law_prefers_short_gaps() -> None:
    p = zoology_gap_probabilities(10, 0.01)
    assert np.isclose(p.sum(), 1.0) and np.all(np.diff(p) < 0)
    assert np.allclose(zoology_gap_probabilities(10, 1.0), 0.1)  # power_a = 1: uniform

    def mean_first_query_offset(power_a: float) -> float:
        _, labels = zoology_multiquery_ar(vocab_size=256, num_examples=40, input_seq_len=128, num_kv_pairs=4,
                                          power_a=power_a, random_non_queries=False, seed=0)
        return float((labels != IGNORE_INDEX).float().argmax(dim=1).float().mean())

    assert mean_first_query_offset(0.01) < mean_first_query_offset(1.0)


def test_zoology_dataset_mode_matches_tensor_writer() -> None:
    cfg = TaskConfig(task="mqar", mqar_format="zoology", vocab_size=64, min_len=2, max_len=4, mqar_seq_len=16, seed=3)
    ds = make_eval_dataset(cfg, 4, 5)
    assert {len(ids) for ids in ds["input_ids"]} == {17}
    inputs, labels = zoology_multiquery_ar(vocab_size=64, num_examples=5, input_seq_len=16, num_kv_pairs=4, seed=3)
    ours = to_zoology(ds["input_ids"], ds["labels"])
    assert torch.equal(ours[0], inputs) and torch.equal(ours[1], labels)
    train = list(make_train_dataset(cfg).take(20))
    assert {ex["length"] for ex in train} <= {2, 3, 4} and {len(ex["input_ids"]) for ex in train} == {17}
    z = to_zoology([train[0]["input_ids"]], [train[0]["labels"]])
    check_zoology_rules(z[0], z[1], 64, train[0]["length"], random_non_queries=True)


def test_sample_example_uses_only_the_given_rng() -> None:
    cfg = TaskConfig(task="mqar", vocab_size=64, max_len=8)
    a = sample_example(cfg, 6, np.random.default_rng(123))
    b = sample_example(cfg, 6, np.random.default_rng(123))
    assert a == b
