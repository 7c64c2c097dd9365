"""Train a language model from scratch, with or without mimetic initialization: GPT-2 or any registered decoder
(Llama, Mistral, Qwen, OLMo 2, Phi-3, GPT-NeoX…) as a causal LM, or BERT/RoBERTa with masked language modelling.

    python scripts/train_language_model.py --dataset_name ptb_text_only --tokenizer char --output_dir runs/ptb-char \
        --mimetic_init
    accelerate launch --config_file configs/accelerate/multi_gpu.yaml scripts/train_language_model.py \
        --dataset_name Salesforce/wikitext --dataset_config_name wikitext-103-raw-v1 --tokenizer word \
        --n_embd 410 --n_layer 16 --n_head 10 --output_dir runs/wt103 --mimetic_init --bf16

Tokenization (``--tokenizer``): ``char`` (a vocabulary of the training text's characters), ``byte`` (the 256 values
of UTF-8 bytes, token id = byte value: any text, nothing unknown), ``word`` (whitespace words, the
``--max_vocab_size`` most frequent, others ``<unk>``, ``<eos>`` at each line end) or the name/path of a pretrained
tokenizer. Built vocabularies are saved with the model and every checkpoint, and reused on resume. The
token stream is cut into blocks of ``--block_size`` tokens as in transformers' run_clm.py. Masked language models
(``--model_type bert``) mask 15% of the tokens (BERT's 80/10/10 rule): afresh for each training batch, once and for
all (seed 0) for the evaluation splits, so that every run is scored on the same masks. Reported: loss, perplexity =
exp(loss), token accuracy (through ``evaluate``; masked tokens only for MLM) and, for ``char``, bits per character =
loss / ln 2 (per masked character for MLM; for ``byte``, bits per byte). Every mimetic option is a flag; unset ones
keep the model type's preset.
"""

from __future__ import annotations

import math
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Iterator, Optional

import numpy as np
from datasets import Dataset
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    AutoConfig,
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    HfArgumentParser,
    PreTrainedTokenizerFast,
    TrainingArguments,
    default_data_collator,
    set_seed,
)

import hf_mimetic  # noqa: F401  (teaches from_config the mimetic_init flag)
from hf_mimetic.catalog import family
from hf_mimetic.train.sizes import LM_CONFIGS, LMSizes, lm_types
from hf_mimetic.train import (
    DataSourceArguments,
    MimeticArguments,
    MimeticTrainer,
    OutputArguments,
    build_model,
    check_output_dir,
    find_column,
    load_metric,
    load_splits,
    resolve_checkpoint,
    train_and_evaluate,
)
from hf_mimetic.train.progress import note_kernel_fallbacks

TEXT_COLUMNS = ("text", "sentence", "content")
BUILT_VOCABULARIES = ("char", "byte", "word")
#: Built vocabularies whose tokens are single characters (or bytes): each line keeps its newline.
SYMBOL_LEVEL = ("char", "byte")
UNK, EOS, PAD, MASK = "<unk>", "<eos>", "<pad>", "<mask>"
CAUSAL, MASKED = "AutoModelForCausalLM", "AutoModelForMaskedLM"
MASK_PROBABILITY = 0.15
FILE_BUILDERS = {"txt": "text", "json": "json", "jsonl": "json", "csv": "csv"}

# Any flag overrides these.
DEFAULTS = dict(
    learning_rate=5e-4, weight_decay=0.01, per_device_train_batch_size=32, per_device_eval_batch_size=32,
    num_train_epochs=10, lr_scheduler_type="cosine", warmup_steps=0.05, eval_strategy="epoch", save_strategy="epoch",
    save_total_limit=2, logging_steps=50, report_to="none",
)  # fmt: skip


@dataclass
class ModelArguments:
    """The model. Defaults: the thesis's small-scale language model (a GPT-2 of width 384, 12 layers)."""

    model_type: str = field(default="gpt2", metadata={"help": f"one of {lm_types(CAUSAL, MASKED)}"})
    n_embd: int = field(default=384, metadata={"help": "width d"})
    n_layer: int = field(default=12, metadata={"help": "depth"})
    n_head: int = field(default=8, metadata={"help": "attention heads (must divide n_embd)"})
    n_kv_head: Optional[int] = field(default=None, metadata={"help": "key/value heads, grouped-query decoders (Llama…)"})
    block_size: int = field(default=256, metadata={"help": "tokens per training sequence (= the position table's size)"})
    dropout: float = field(default=0.1, metadata={"help": "every dropout of the model's config (residual, attention…)"})
    mimetic_init: bool = field(default=False, metadata={"help": "initialise with hf_mimetic's mimetic init"})

    def __post_init__(self) -> None:
        if self.model_type not in lm_types(CAUSAL, MASKED):
            raise ValueError(f"model_type must be one of {lm_types(CAUSAL, MASKED)}, got {self.model_type!r}")
        for name, low in (("n_embd", 1), ("n_layer", 1), ("n_head", 1), ("block_size", 2)):
            if getattr(self, name) < low:
                why = " (a block must hold an input and its next token)" if name == "block_size" else ""
                raise ValueError(f"{name} must be >= {low}{why}, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_head {self.n_head} must divide n_embd {self.n_embd}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        self.config(vocab_size=2)  # raises for sizes the model type cannot build

    @property
    def masked(self) -> bool:
        return family(self.model_type).auto_class == MASKED

    def config(self, vocab_size: int, **special_tokens: int):
        """The transformers config: the family's sizes, every dropout of the config set to ``dropout``."""
        sizes = LMSizes(
            hidden_size=self.n_embd, num_layers=self.n_layer, vocab_size=vocab_size, max_positions=self.block_size,
            head_dim=self.n_embd // self.n_head, num_kv_heads=self.n_kv_head,
        )  # fmt: skip
        config = AutoConfig.for_model(self.model_type, **{**LM_CONFIGS[self.model_type](sizes), **special_tokens})
        for name, value in config.to_dict().items():
            if isinstance(value, float) and name.endswith(("dropout", "pdrop", "dropout_prob")):
                setattr(config, name, self.dropout)
        return config


@dataclass
class TextDataArguments(DataSourceArguments):
    """The text and how it becomes tokens."""

    train_file: Optional[str] = field(default=None, metadata={"help": "a local .txt, .json(l) or .csv file"})
    validation_file: Optional[str] = field(default=None, metadata={"help": "a local file in the same format"})
    text_column: Optional[str] = field(default=None, metadata={"help": f"default: the first of {TEXT_COLUMNS}"})
    tokenizer: str = field(default="char", metadata={"help": "char, byte, word, or a pretrained tokenizer's name or path"})
    max_vocab_size: int = field(
        default=10000, metadata={"help": "word-level vocabulary size, <unk> and <eos> included"}
    )

    local_flags = "--train_file (and --validation_file)"

    def __post_init__(self) -> None:
        if self.validation_file is not None and self.train_file is None:
            raise ValueError("--validation_file needs --train_file")
        for flag, path in (("--train_file", self.train_file), ("--validation_file", self.validation_file)):
            if path is not None and not os.path.isfile(path):
                raise ValueError(f"{flag} {path}: no such file")
            if path is not None and os.path.getsize(path) == 0:
                raise ValueError(f"{flag} {path} is empty")
        if self.max_vocab_size < 3:
            raise ValueError(f"max_vocab_size must be at least 3 (<unk>, <eos> and a word), got {self.max_vocab_size}")
        super().__post_init__()

    def local_source(self) -> Optional[tuple[str, dict[str, str], dict[str, Any]]]:
        """The datasets builder for ``--train_file``'s extension over the train (and validation) file."""
        if self.train_file is None:
            return None
        files = {"train": self.train_file, **({"validation": self.validation_file} if self.validation_file else {})}
        extension = self.train_file.rsplit(".", 1)[-1]
        if extension not in FILE_BUILDERS:
            raise ValueError(f"--train_file must end in one of {sorted(FILE_BUILDERS)}, got {self.train_file!r}")
        # Keep the line breaks of text files: they are characters of the char-level stream.
        kwargs = {"keep_linebreaks": True} if FILE_BUILDERS[extension] == "text" else {}
        return FILE_BUILDERS[extension], files, kwargs


def mark_line_ends(lines: list[str], vocabulary: str) -> list[str]:
    """Each example is a line: char (and byte) level ends it with a newline character, word level with ``<eos>``."""
    if vocabulary in SYMBOL_LEVEL:
        return [line if line.endswith("\n") else line + "\n" for line in lines]
    if vocabulary == "word":
        return [f"{line.strip()} {EOS}" for line in lines]
    return lines


def byte_symbols() -> list[str]:
    """The character that a byte-level pre-tokenizer (GPT-2's mapping) writes for each byte value 0–255: printable
    Latin-1 bytes stand for themselves, the others for 256, 257, … in order.

    >>> byte_symbols()[ord("a")], byte_symbols()[ord(" ")]
    ('a', 'Ġ')
    """
    printable = {*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)}
    shifted = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(shifted)) for b in range(256)]


def build_byte_tokenizer(masked: bool = False) -> PreTrainedTokenizerFast:
    """Every UTF-8 byte a token whose id is the byte's value (``<pad>`` and ``<mask>`` after them for masked language
    models): a byte-level BPE without merges, so any text tokenizes and decodes back unchanged."""
    tokenizer = Tokenizer(models.BPE({symbol: i for i, symbol in enumerate(byte_symbols())}, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    extra = {"pad_token": PAD, "mask_token": MASK} if masked else {}
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **extra)


def build_tokenizer(vocabulary: str, lines: Iterator[str], max_vocab_size: int, masked: bool = False) -> PreTrainedTokenizerFast:
    """A tokenizer over the characters (``char``, all of them, sorted) or whitespace words (``word``, the most
    frequent ``max_vocab_size``) of the training text, with ``<unk>`` (and ``<eos>`` for words; ``<pad>`` and
    ``<mask>`` for masked language models) first; or over bytes (``byte``, :func:`build_byte_tokenizer`; the text is
    not read)."""
    if vocabulary == "byte":
        return build_byte_tokenizer(masked)
    counts: Counter[str] = Counter()
    for line in lines:
        counts.update(line if vocabulary == "char" else line.split())
    specials = ([UNK] if vocabulary == "char" else [UNK, EOS]) + ([PAD, MASK] if masked else [])
    for token in specials:  # already in the text of some corpora (PTB has <unk>): keep one id each
        counts.pop(token, None)
    kept = (
        sorted(counts) if vocabulary == "char" else [w for w, _ in counts.most_common(max_vocab_size - len(specials))]
    )
    tokenizer = Tokenizer(models.WordLevel({token: i for i, token in enumerate([*specials, *kept])}, unk_token=UNK))
    extra = {"pad_token": PAD, "mask_token": MASK} if masked else {}
    if vocabulary == "char":
        tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), "isolated")  # every character, newlines too
        tokenizer.decoder = decoders.Fuse()  # characters decode without separators
        return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token=UNK, **extra)
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token=UNK, eos_token=EOS, **extra)


def load_tokenizer(data_args: TextDataArguments, checkpoint: Optional[str], train_lines: Iterator[str], masked: bool):
    """The tokenizer: a pretrained one, the one saved in the checkpoint we resume from, or one built from train."""
    if data_args.tokenizer not in BUILT_VOCABULARIES:
        tokenizer = AutoTokenizer.from_pretrained(data_args.tokenizer)
    elif checkpoint is not None and os.path.exists(os.path.join(checkpoint, "tokenizer.json")):
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    else:
        tokenizer = build_tokenizer(data_args.tokenizer, train_lines, data_args.max_vocab_size, masked)
    if masked and tokenizer.mask_token is None:
        raise ValueError(f"masked language modelling needs a tokenizer with a mask token; {data_args.tokenizer!r} has none")
    return tokenizer


def mask_once(ids: list[int], rng: np.random.Generator, mask_id: int, vocab_size: int) -> tuple[list[int], list[int]]:
    """BERT's masking: 15% of the positions are scored; of those 80% become the mask token, 10% a random token,
    10% stay. Returns ``(input_ids, labels)`` with ``-100`` where nothing is scored."""
    ids = np.asarray(ids)
    scored = rng.random(ids.shape) < MASK_PROBABILITY
    draw = rng.random(ids.shape)
    inputs = np.where(scored & (draw < 0.8), mask_id, ids)
    inputs = np.where(scored & (draw >= 0.8) & (draw < 0.9), rng.integers(0, vocab_size, ids.shape), inputs)
    return inputs.tolist(), np.where(scored, ids, -100).tolist()


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = HfArgumentParser((ModelArguments, TextDataArguments, MimeticArguments, OutputArguments, TrainingArguments))
    parser.set_defaults(**DEFAULTS)
    model_args, data_args, mimetic_args, output_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    check_output_dir(training_args, output_args.overwrite_output_dir)
    note_kernel_fallbacks()  # Mamba on CPU: one line instead of one warning per CUDA kernel

    splits = load_splits(data_args, seed=training_args.seed)
    text_column = find_column(splits["train"].column_names, TEXT_COLUMNS, data_args.text_column, "text")
    vocabulary = data_args.tokenizer

    def train_lines() -> Iterator[str]:
        for batch in splits["train"].iter(batch_size=1000):
            yield from mark_line_ends(batch[text_column], vocabulary)

    checkpoint = resolve_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    masked = model_args.masked
    tokenizer = load_tokenizer(data_args, checkpoint, train_lines(), masked)
    block_size = model_args.block_size

    def tokenize_and_group(batch: dict[str, list]) -> dict[str, list]:
        """Concatenate the batch's tokens and cut them into full blocks (the remainder is dropped, as in run_clm)."""
        # At byte level a "<mask>" in the text is its bytes, not the mask token (every byte keeps its own id).
        ids = tokenizer(mark_line_ends(batch[text_column], vocabulary), add_special_tokens=False,
                        split_special_tokens=vocabulary == "byte")["input_ids"]  # fmt: skip
        stream = list(chain.from_iterable(ids))
        blocks = [stream[i : i + block_size] for i in range(0, len(stream) - block_size + 1, block_size)]
        return {"input_ids": blocks, "labels": [list(block) for block in blocks]}

    with training_args.main_process_first(desc="tokenizing"):
        lm_splits = splits.map(
            tokenize_and_group, batched=True, batch_size=1000, remove_columns=splits["train"].column_names
        )
    if masked:  # fixed masks for the evaluation splits (every run is scored on the same ones); train: per batch
        rng = np.random.default_rng(0)
        for name in [n for n in lm_splits if n != "train"]:
            rows = [mask_once(ids, rng, tokenizer.mask_token_id, len(tokenizer)) for ids in lm_splits[name]["input_ids"]]
            lm_splits[name] = Dataset.from_dict({"input_ids": [r[0] for r in rows], "labels": [r[1] for r in rows]})
        lm_splits["train"] = lm_splits["train"].remove_columns("labels")
    for name, dataset in lm_splits.items():
        if len(dataset) == 0:
            raise ValueError(
                f"the {name} split has fewer than --block_size {block_size} tokens ({sum(len(t) for t in splits[name][text_column])} "
                "characters of text): lower --block_size or give more text"
            )

    if masked:
        special = {"pad_token_id": tokenizer.pad_token_id}
    else:
        special = {"bos_token_id": tokenizer.eos_token_id, "eos_token_id": tokenizer.eos_token_id}
    config = model_args.config(len(tokenizer), **special)
    set_seed(training_args.seed)  # the init depends only on --seed
    model = build_model(family(model_args.model_type).auto(), config, model_args.mimetic_init, mimetic_args, checkpoint)

    metric = load_metric(data_args.metric)

    def compute_metrics(eval_prediction) -> dict[str, float]:
        predictions, labels = eval_prediction.predictions, eval_prediction.label_ids
        if not masked:  # position t predicts token t + 1 (the model shifts the same way for its loss)
            predictions, labels = predictions[:, :-1], labels[:, 1:]
        scored = labels != -100
        return metric.compute(predictions=predictions[scored], references=labels[scored])

    def derived_metrics(metrics: dict[str, float], prefix: str) -> dict[str, float]:
        loss = metrics[f"{prefix}_loss"]
        derived = {f"{prefix}_perplexity": math.exp(loss) if loss < 700 else math.inf}
        if vocabulary in SYMBOL_LEVEL:
            derived[f"{prefix}_bits_per_{'character' if vocabulary == 'char' else 'byte'}"] = loss / math.log(2)
        return derived

    collator = default_data_collator
    if masked:  # training blocks (no labels) are masked afresh for each batch; evaluation blocks carry fixed masks
        random_masks = DataCollatorForLanguageModeling(tokenizer, mlm_probability=MASK_PROBABILITY)
        collator = lambda rows: default_data_collator(rows) if "labels" in rows[0] else random_masks(rows)  # noqa: E731
    trainer = MimeticTrainer(
        model=model, args=training_args, train_dataset=lm_splits["train"], eval_dataset=lm_splits["validation"],
        processing_class=tokenizer, data_collator=collator, compute_metrics=compute_metrics,
        preprocess_logits_for_metrics=lambda logits, labels: logits.argmax(-1),
    )  # fmt: skip
    card = {"tasks": "fill-mask" if masked else "text-generation", "tags": [model_args.model_type]}
    return train_and_evaluate(trainer, lm_splits, data_args, card, derived_metrics)


if __name__ == "__main__":
    main(sys.argv[1:])
