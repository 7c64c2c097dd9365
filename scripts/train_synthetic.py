"""Train a causal LM (Mamba, Mamba 2, GPT-2, any registered decoder) from scratch on a synthetic task and measure
length generalisation.

    python scripts/train_synthetic.py --output_dir runs/copy --mimetic_init
    accelerate launch scripts/train_synthetic.py --output_dir runs/copy --model_type mamba --mimetic_init \
        --task mqar --train_max_len 32 --learning_rate 1e-3 --max_steps 2000

Every mimetic option is a flag (e.g. --ssm_identity_conv false --layers 2); unset ones keep the preset. Metrics per
eval length go to <output_dir>/all_results.json (teacher-forced token/exact accuracy, greedy exact match); the trained
model to <output_dir>, checkpoints every --save_steps (resume with --resume_from_checkpoint last).
"""

from __future__ import annotations

import sys

from transformers import HfArgumentParser, TrainingArguments

from hf_mimetic.train import MimeticArguments, OutputArguments, check_output_dir
from hf_mimetic.train.synthetic import SyntheticModelArguments, SyntheticTaskArguments, train_synthetic

# Defaults that finish in a few minutes on 2 CPU cores; any flag overrides them.
CPU_DEFAULTS = dict(
    max_steps=600, per_device_train_batch_size=32, learning_rate=1e-3, weight_decay=0.0, warmup_steps=30,
    lr_scheduler_type="cosine", logging_steps=50, eval_strategy="steps", eval_steps=200,
    per_device_eval_batch_size=64, save_strategy="steps", save_steps=200, save_total_limit=2, report_to=[],
    dataloader_num_workers=0,
)  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = HfArgumentParser(
        (SyntheticModelArguments, SyntheticTaskArguments, MimeticArguments, OutputArguments, TrainingArguments)
    )
    parser.set_defaults(**CPU_DEFAULTS)
    model_args, task_args, mimetic_args, output_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    check_output_dir(training_args, output_args.overwrite_output_dir)
    result = train_synthetic(model_args, task_args, mimetic_args, training_args)
    for length, metrics in result["eval"].items():
        print(f"L={length}: " + ", ".join(f"{k}={v:.3f}" for k, v in metrics.items()))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
