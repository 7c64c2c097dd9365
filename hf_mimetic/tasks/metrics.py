"""Evaluation of causal LMs on the synthetic tasks of :mod:`hf_mimetic.tasks`.

Two kinds of metric:

* **Teacher-forced** (:func:`teacher_forced_metrics`, :func:`compute_metrics`,
  :func:`evaluate_teacher_forced`): the model sees the true sequence; the prediction
  at position ``t - 1`` (argmax of its logits) is compared to ``labels[t]`` on every
  position whose label is not ``-100``. ``token_accuracy`` is the fraction of such
  tokens predicted right; ``exact_match`` the fraction of sequences (with at least one
  labelled token) whose labelled tokens are *all* right. This is the usual MQAR metric.
* **Greedy decoding** (:func:`evaluate_greedy`): the model sees only the prompt and
  generates the answer itself (argmax at every step, with the KV/SSM cache of
  ``model.generate``), as a copy must be judged: one early mistake is never corrected
  by the teacher.

Labels follow the aligned ``transformers`` convention described in
:mod:`hf_mimetic.tasks`; zoology's pre-shifted labels are accepted with
``labels_shifted=True`` or converted with :func:`hf_mimetic.tasks.from_zoology`.

Example (with the HF Trainer; only the argmax is kept, never the full logits):
    >>> from transformers import Trainer  # doctest: +SKIP
    >>> trainer = Trainer(model=model, args=args, eval_dataset=eval_ds,  # doctest: +SKIP
    ...                   data_collator=TaskCollator.from_config(cfg),
    ...                   compute_metrics=compute_metrics,
    ...                   preprocess_logits_for_metrics=argmax_logits)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .base import IGNORE_INDEX, TaskConfig
from .data import TaskCollator, make_eval_dataset


# ------------------------------------------------------------------ utilities
def _to_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, tuple):
        # Trainer hands over a tuple when the model returns several outputs; logits come first.
        x = x[0]
    return x.detach().cpu() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def _logits_of(output: Any) -> torch.Tensor:
    """Logits from a model output: a ModelOutput, a tuple (logits first) or a tensor."""
    if isinstance(output, torch.Tensor):
        return output
    if hasattr(output, "logits"):
        return output.logits
    return output[0]


def _model_device(model: torch.nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:  # parameter-free stubs
        return torch.device("cpu")


def argmax_logits(logits: Any, labels: Any = None) -> torch.Tensor:
    """``preprocess_logits_for_metrics`` for the Trainer: keep ``argmax(-1)`` only.

    The Trainer would otherwise gather ``(N, T, vocab)`` logits for the whole eval set.

    Example:
        >>> argmax_logits(torch.tensor([[[0.1, 0.9], [2.0, -1.0]]])).tolist()
        [[1, 0]]
    """
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    return logits.argmax(dim=-1)


# ------------------------------------------------------------ teacher forcing
def _teacher_forced_counts(predictions: Any, labels: Any, labels_shifted: bool) -> tuple[int, int, int, int]:
    """(correct tokens, labelled tokens, exactly-right rows, rows with a label)."""
    preds, labs = _to_tensor(predictions), _to_tensor(labels)
    if labs.dim() == 1:
        preds, labs = preds.unsqueeze(0), labs.unsqueeze(0)
    if preds.dim() == labs.dim() + 1:  # logits → token ids
        preds = preds.argmax(dim=-1)
    if preds.shape != labs.shape:
        raise ValueError(f"predictions {tuple(preds.shape)} and labels {tuple(labs.shape)} must have the same shape")
    if not labels_shifted:
        # Aligned convention: the prediction made at t - 1 is the guess for token t.
        preds, labs = preds[:, :-1], labs[:, 1:]
    mask = labs != IGNORE_INDEX
    correct = (preds.long() == labs.long()) & mask
    has_label = mask.any(dim=1)
    row_ok = (correct == mask).all(dim=1) & has_label
    return int(correct.sum()), int(mask.sum()), int(row_ok.sum()), int(has_label.sum())


def _ratios(correct: int, tokens: int, exact: int, rows: int) -> dict[str, float]:
    nan = float("nan")  # no labelled token: an undefined score rather than a fake 0 or 1
    return {"token_accuracy": correct / tokens if tokens else nan,
            "exact_match": exact / rows if rows else nan,
            "num_tokens": float(tokens), "num_sequences": float(rows)}


def teacher_forced_metrics(predictions: Any, labels: Any, *, labels_shifted: bool = False) -> dict[str, float]:
    """Token accuracy and exact-string accuracy of teacher-forced predictions.

    Args:
        predictions: ``(B, T)`` predicted ids or ``(B, T, V)`` logits (tensor or array);
            entry ``t`` is the model's guess for token ``t + 1``.
        labels: ``(B, T)`` labels, ``-100`` where nothing is scored.
        labels_shifted: ``False`` (default) for aligned labels (``transformers``
            convention: compare ``predictions[:, t-1]`` with ``labels[:, t]``);
            ``True`` for pre-shifted labels such as zoology's (compare at the same ``t``).

    Returns:
        ``token_accuracy``, ``exact_match`` (rows with no label are left out),
        ``num_tokens``, ``num_sequences``. Ratios are NaN when nothing is labelled.

    Example:
        >>> labels = torch.tensor([[-100, -100, 5, 6]])
        >>> preds = torch.tensor([[0, 5, 6, 0]])  # the guesses at t=1,2 are for tokens 2,3
        >>> teacher_forced_metrics(preds, labels)["exact_match"]
        1.0
    """
    return _ratios(*_teacher_forced_counts(predictions, labels, labels_shifted))


def compute_metrics(eval_pred: Any) -> dict[str, float]:
    """``compute_metrics`` for the HF Trainer (takes an ``EvalPrediction``).

    Works with raw logits or, better, with :func:`argmax_logits` as
    ``preprocess_logits_for_metrics``. Positions the Trainer padded are ``-100`` in
    the labels and are ignored.
    """
    metrics = teacher_forced_metrics(eval_pred.predictions, eval_pred.label_ids)
    return {"token_accuracy": metrics["token_accuracy"], "exact_match": metrics["exact_match"]}


def _batches(examples: Iterable[Mapping[str, Any]], batch_size: int) -> Iterable[list[Mapping[str, Any]]]:
    batch: list[Mapping[str, Any]] = []
    for ex in examples:
        batch.append(ex)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


@torch.no_grad()
def evaluate_teacher_forced(model: torch.nn.Module, examples: Iterable[Mapping[str, Any]], *,
                            batch_size: int = 32, pad_token_id: int = 0) -> dict[str, float]:
    """Teacher-forced metrics of ``model`` on ``examples`` (a dataset or list of dicts).

    Batches are right-padded; a causal model never looks at later positions, so the
    pads (value ``pad_token_id``, label ``-100``) cannot change any scored prediction.

    Example:
        >>> evaluate_teacher_forced(model, make_eval_dataset(cfg, 64, 256))  # doctest: +SKIP
        {'token_accuracy': 0.97, 'exact_match': 0.5, 'num_tokens': 16640.0, 'num_sequences': 256.0}
    """
    collate = TaskCollator(pad_token_id=pad_token_id, return_attention_mask=False)
    device, was_training = _model_device(model), model.training
    model.eval()
    totals = np.zeros(4, dtype=np.int64)
    try:
        for batch in _batches(examples, batch_size):
            inputs = collate(batch)
            logits = _logits_of(model(input_ids=inputs["input_ids"].to(device)))
            totals += _teacher_forced_counts(logits.argmax(-1), inputs["labels"], labels_shifted=False)
    finally:
        model.train(was_training)
    return _ratios(*map(int, totals))


# ------------------------------------------------------------ greedy decoding
def split_prompt_answer(input_ids: Sequence[int], labels: Sequence[int]) -> tuple[list[int], list[int]]:
    """Split an example into the prompt and the answer to generate, using its labels.

    The answer is the contiguous block of labelled positions (trailing ``-100`` from
    padding is allowed); the prompt is everything before it. Targets come from
    ``labels``.

    Example:
        >>> split_prompt_answer([4, 5, 11, 4, 5, 12], [-100, -100, -100, 4, 5, 12])
        ([4, 5, 11], [4, 5, 12])
    """
    ids, labs = [int(t) for t in input_ids], [int(t) for t in labels]
    if len(ids) != len(labs):
        raise ValueError(f"input_ids has {len(ids)} tokens but labels has {len(labs)}")
    where = [i for i, t in enumerate(labs) if t != IGNORE_INDEX]
    if not where:
        raise ValueError("example has no labelled token, so there is no answer to generate")
    start, end = where[0], where[-1] + 1
    if len(where) != end - start:
        raise ValueError(
            "labelled positions are not one contiguous answer block (e.g. native MQAR interleaves "
            "queries and answers): use evaluate_teacher_forced for such tasks"
        )
    if start == 0:
        raise ValueError("the first token is labelled, so the prompt would be empty")
    return ids[:start], labs[start:end]


@torch.no_grad()
def greedy_generate(model: torch.nn.Module, prompt_ids: torch.Tensor, max_new_tokens: int, *,
                    use_generate: bool | None = None) -> torch.Tensor:
    """Greedily generate exactly ``max_new_tokens`` tokens after equal-length prompts.

    Uses ``model.generate(do_sample=False)`` (KV or SSM cache) when the model has it,
    otherwise a plain loop that re-runs the forward on the whole prefix (for stubs).
    EOS does not stop generation: the answer length is known, and stopping would
    replace later tokens by padding.

    Args:
        model: any causal LM whose forward takes ``input_ids`` and returns logits.
        prompt_ids: ``(B, P)`` prompts, all of the same length (no padding, so that
            models which ignore ``attention_mask``, like Mamba, stay exact).
        max_new_tokens: number of tokens to generate.
        use_generate: force (``True``) or avoid (``False``) ``model.generate``.

    Returns:
        ``(B, max_new_tokens)`` generated ids on the CPU (``-1`` where a model stopped early).

    Example:
        >>> greedy_generate(model, torch.tensor([[4, 5, 11]]), 3)  # doctest: +SKIP
        tensor([[ 4,  5, 12]])
    """
    if prompt_ids.dim() != 2:
        raise ValueError(f"prompt_ids must be (batch, length), got shape {tuple(prompt_ids.shape)}")
    if use_generate is None:
        use_generate = callable(getattr(model, "generate", None))
    device, was_training = _model_device(model), model.training
    model.eval()
    ids = prompt_ids.long().to(device)
    try:
        if use_generate:
            gen_cfg = getattr(model, "generation_config", None)
            pad = getattr(gen_cfg, "pad_token_id", None)
            # eos_token_id=None must be a keyword: inside a GenerationConfig a None is
            # overwritten by the model's default EOS.
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 num_beams=1, max_new_tokens=max_new_tokens, eos_token_id=None,
                                 pad_token_id=0 if pad is None else pad)
            new = out[:, ids.shape[1]:].cpu()
        else:
            for _ in range(max_new_tokens):
                nxt = _logits_of(model(input_ids=ids))[:, -1].argmax(-1, keepdim=True)
                ids = torch.cat([ids, nxt.to(ids.device)], dim=1)
            new = ids[:, prompt_ids.shape[1]:].cpu()
    finally:
        model.train(was_training)
    if new.shape[1] < max_new_tokens:
        new = torch.cat([new, new.new_full((new.shape[0], max_new_tokens - new.shape[1]), -1)], dim=1)
    return new[:, :max_new_tokens]


def evaluate_greedy(model: torch.nn.Module, examples: Iterable[Mapping[str, Any]], *, batch_size: int = 32,
                    use_generate: bool | None = None, return_predictions: bool = False) -> dict[str, Any]:
    """Greedy-decoding exact match and token accuracy for prompt → answer tasks.

    For each example the prompt (``x1 .. xn SEP`` for copy) is fed to the model,
    which generates as many tokens as the answer has (``n + 1`` with the EOS); the
    result is compared position by position with the target. Examples are batched
    by (prompt length, answer length), so no padding is ever needed.

    Args:
        model: causal LM (``*ForCausalLM``: Mamba, Mamba2, GPT-2, …) or a stub whose
            forward returns logits.
        examples: a ``datasets.Dataset`` or dicts with ``input_ids`` and ``labels``.
        batch_size: prompts per ``generate`` call.
        use_generate: see :func:`greedy_generate`.
        return_predictions: also return the generated answers, in example order.

    Returns:
        ``exact_match`` (fraction of answers generated without any error),
        ``token_accuracy`` (fraction of answer tokens right), ``num_sequences``,
        ``num_tokens`` and, if asked, ``predictions``.

    Example:
        >>> ds = make_eval_dataset(TaskConfig(task="copy", vocab_size=26, max_len=32), 64, 100)
        >>> evaluate_greedy(model, ds)  # doctest: +SKIP
        {'exact_match': 0.93, 'token_accuracy': 0.99, 'num_sequences': 100.0, 'num_tokens': 6500.0}
    """
    pairs = [split_prompt_answer(ex["input_ids"], ex["labels"]) for ex in examples]
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, (prompt, answer) in enumerate(pairs):
        groups[(len(prompt), len(answer))].append(i)
    predictions: list[list[int]] = [[] for _ in pairs]
    correct_tokens = exact = 0
    for (_, answer_len), members in groups.items():
        for start in range(0, len(members), batch_size):
            chunk = members[start:start + batch_size]
            prompts = torch.tensor([pairs[i][0] for i in chunk])
            targets = torch.tensor([pairs[i][1] for i in chunk])
            generated = greedy_generate(model, prompts, answer_len, use_generate=use_generate)
            hits = generated == targets
            correct_tokens += int(hits.sum())
            exact += int(hits.all(dim=1).sum())
            for i, row in zip(chunk, generated.tolist()):
                predictions[i] = row
    num_tokens = sum(len(a) for _, a in pairs)
    nan = float("nan")
    result: dict[str, Any] = {"exact_match": exact / len(pairs) if pairs else nan,
                              "token_accuracy": correct_tokens / num_tokens if num_tokens else nan,
                              "num_sequences": float(len(pairs)), "num_tokens": float(num_tokens)}
    if return_predictions:
        result["predictions"] = predictions
    return result


# -------------------------------------------------------- length generalisation
def evaluate_lengths(model: torch.nn.Module, config: TaskConfig, lengths: Sequence[int], *,
                     num_examples: int = 128, batch_size: int = 32,
                     greedy: bool | None = None) -> dict[int, dict[str, float]]:
    """Evaluate at each task length (e.g. ``[L, 2 * L, 4 * L]``) on fresh eval sets.

    Keys of each result: ``tf_token_accuracy``, ``tf_exact_match`` (teacher forced)
    and, when ``greedy`` (default: every task but MQAR), ``greedy_exact_match`` and
    ``greedy_token_accuracy``.

    Example:
        >>> evaluate_lengths(model, cfg, [cfg.max_len, 2 * cfg.max_len, 4 * cfg.max_len])  # doctest: +SKIP
        {64: {'tf_token_accuracy': 1.0, ...}, 128: {...}, 256: {...}}
    """
    if greedy is None:
        greedy = config.spec.greedy
    results: dict[int, dict[str, float]] = {}
    for length in lengths:
        ds = make_eval_dataset(config, length, num_examples)
        pad = int(config.pad_token_id)  # type: ignore[arg-type]  # resolved by TaskConfig
        tf = evaluate_teacher_forced(model, ds, batch_size=batch_size, pad_token_id=pad)
        res = {"tf_token_accuracy": tf["token_accuracy"], "tf_exact_match": tf["exact_match"]}
        if greedy:
            gr = evaluate_greedy(model, ds, batch_size=batch_size)
            res.update(greedy_exact_match=gr["exact_match"], greedy_token_accuracy=gr["token_accuracy"])
        results[int(length)] = res
    return results


__all__ = [
    "argmax_logits",
    "compute_metrics",
    "evaluate_greedy",
    "evaluate_lengths",
    "evaluate_teacher_forced",
    "greedy_generate",
    "split_prompt_answer",
    "teacher_forced_metrics",
]
