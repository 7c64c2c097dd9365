"""Train a causal LM (Mamba, Mamba 2, GPT-2, any registered decoder) from scratch on a synthetic task and measure
length generalisation.

    python scripts/train_synthetic.py --output_dir runs/copy-default                                  # lr 3e-3
    python scripts/train_synthetic.py --output_dir runs/copy-mimetic --mimetic_init --learning_rate 1e-2
    accelerate launch scripts/train_synthetic.py --output_dir runs/copy --model_type mamba --mimetic_init \
        --task mqar --train_max_len 32 --learning_rate 1e-3 --max_steps 2000

The defaults are the regime of the length-generalisation study (docs/RESULTS.md, "Mamba 2"): Mamba 2, width 256, 2
layers, state 128, head dim 64; copy over 16 tokens, trained on lengths 1–50, 200 steps, evaluated at 50, 100 and 200.
Each init has its own best learning rate there: 3e-3 for the default init (the script's default), 1e-2 for mimetic init.

Every mimetic option is a flag (e.g. --ssm_identity_conv false --layers 2); unset ones keep the preset. Metrics per
eval length go to <output_dir>/all_results.json (teacher-forced token/exact accuracy, greedy exact match); the trained
model to <output_dir>, checkpoints every --save_steps (resume with --resume_from_checkpoint last).

Progress: on a terminal, the Trainer's progress bar; otherwise (a log file, a pipe; or with --disable_tqdm true) a
line about every 10% of the steps with the step, the loss, the time spent and the time left. Transformers' warnings
that Mamba's CUDA kernels are missing become one line.
"""

from __future__ import annotations

import sys

from transformers import HfArgumentParser, TrainingArguments
from transformers.utils import logging as hf_logging

from hf_mimetic.train import MimeticArguments, OutputArguments, check_output_dir
from hf_mimetic.train.progress import note_kernel_fallbacks, progress_line
from hf_mimetic.train.synthetic import SyntheticModelArguments, SyntheticTaskArguments, train_synthetic

# The study's regime and recipe (a run takes about 4 minutes on one CPU core); any flag overrides them.
CPU_DEFAULTS = dict(
    hidden_size=256, num_layers=2, state_size=128, head_dim=64, train_max_len=50, eval_examples=64,
    max_steps=200, per_device_train_batch_size=32, learning_rate=3e-3, weight_decay=0.0, warmup_steps=0.05,
    lr_scheduler_type="cosine", logging_steps=100, eval_strategy="steps", eval_steps=100,
    per_device_eval_batch_size=64, save_strategy="steps", save_steps=100, save_total_limit=2, report_to=[],
    dataloader_num_workers=0, dataloader_pin_memory=False,
)  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = HfArgumentParser(
        (SyntheticModelArguments, SyntheticTaskArguments, MimeticArguments, OutputArguments, TrainingArguments)
    )
    # The Trainer's tqdm bar on a terminal; elsewhere it would fill a log with carriage returns: progress lines.
    parser.set_defaults(**CPU_DEFAULTS, disable_tqdm=not sys.stderr.isatty())
    model_args, task_args, mimetic_args, output_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    check_output_dir(training_args, output_args.overwrite_output_dir)
    note_kernel_fallbacks()
    lines = training_args.disable_tqdm
    bars = hf_logging.is_progress_bar_enabled()
    if lines:
        hf_logging.disable_progress_bar()  # and no "Writing model shards" bar either
    try:
        progress = (lambda p: print(progress_line(p), flush=True)) if lines else None
        result = train_synthetic(model_args, task_args, mimetic_args, training_args, progress=progress)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    for length, metrics in result["eval"].items():
        print(f"L={length}: " + ", ".join(f"{k}={v:.3f}" for k, v in metrics.items()))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
