"""Gradio Space: a default-initialised and a mimetic-initialised Mamba, trained side by side on copy / recall tasks.

    python spaces/copy_recall/app.py      # then open http://127.0.0.1:7860

Training is hf_mimetic's own (:mod:`side_by_side` runs ``hf_mimetic.train.synthetic.train_synthetic`` once per init, in two
threads); the attention maps come from :mod:`hf_mimetic.inspect.ssm_maps` and the copies from
``hf_mimetic.tasks.metrics``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import gradio as gr
import pandas as pd
import torch
from matplotlib.figure import Figure
from side_by_side import INITS, STEPS_RANGE, TASK_LIMITS, RunSettings, SideBySideRun

from hf_mimetic.inspect.ssm_maps import attention_maps
from hf_mimetic.tasks import format_prompt_answer, make_example
from hf_mimetic.tasks.metrics import greedy_generate, split_prompt_answer

TASKS = [("Copy", "copy"), ("Stack copy (reversed)", "stack_copy"), ("MQAR (associative recall)", "mqar")]
ARCHITECTURES = [("Mamba 2", "mamba2"), ("Mamba 1", "mamba")]
TASK_NAMES = {value: label for label, value in TASKS}
ARCHITECTURE_NAMES = {value: label for label, value in ARCHITECTURES}
EVAL_EXAMPLES = 16  # per eval length: enough for a clear curve, cheap enough to evaluate every tenth of the run
SEPARATION = 0.2  # mimetic − default accuracy at 2L that the status line reports
COLORS = {"default": ("#1d4ed8", "#3b82f6", "#93c5fd"), "mimetic": ("#c2410c", "#f97316", "#fdba74")}
FACTORS = ("L", "2L", "4L")
EOS_MARK = "⏎"

INTRO = """
# Mimetic initialisation for Mamba: learning to copy, side by side

Press **Train**: two Mamba models with the same architecture, data and seed train at the same time on this CPU. One
starts from transformers' **default** initialisation, the other from **mimetic** initialisation
(the `hf_mimetic` library; thesis *Mimetic Initialization for Deep Neural Networks*, §3.3): Ā ≈ 1, Δ ≈ 1
and W_Cᵀ W_B ≈ I, so every layer starts out as causal linear attention with correlated queries and keys.

**What you see.** The plot shows teacher-forced token accuracy (the model sees the true previous characters and
predicts the next one of the answer) on fixed held-out strings of the training length L, and of 2L and 4L: lengths
it never trained on. Chance is 1/16 for copy. When training ends you get each model's *attention map* (its layer
written as y = M x, averaged over channels; to copy, answer position i must read prompt position i − L − 1, a band
below the diagonal) and a box to make both models copy a string of your own.

**What the study found.** The defaults are the regime of our length-generalisation study, with its first seed:
Mamba 2 (width 256, 2 layers, state 128), copying strings of 1–50 letters, batch 32, 200 steps, each init at its best
learning rate of the same sweep (default 3e-3, mimetic 1e-2). There, over 3 seeds, mimetic init reached 0.77 ± 0.01
token accuracy at 2L = 100 against 0.25 ± 0.02 for the default init. The demo scores 16 test strings per length
(the study 64), so its curves are noisier. A run takes about five minutes on 2 CPU cores; the status line says when
mimetic init leads by 0.2 at 2L (on our 2-core machine: at step 60, 82 s after pressing Train), and **Stop** ends the
run early. Teacher forcing is lenient: neither model copies
whole long strings by itself yet at this budget (try the box). **The study measured the separation for copy with
Mamba 2; other settings are for exploring.**
"""


def _whole(value: Any) -> Any:
    """Sliders send floats; a whole float becomes an int, anything else is left for validation to report."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def curve_label(init: str, factor: str, length: int) -> str:
    return f"{init}, {factor}={length}"


def curves(run: SideBySideRun | None = None) -> pd.DataFrame:
    """Every evaluation so far as rows (step, accuracy, curve) for the line plot; no rows without a run."""
    rows = []
    if run is not None:
        lengths = run.settings.eval_lengths
        rows = [
            {
                "step": e.step,
                "accuracy": e.accuracy,
                "curve": curve_label(e.init, FACTORS[lengths.index(e.length)], e.length),
            }
            for e in run.evaluations()
        ]
    # Typed even when empty: the plot reads the column types of its first value (object columns plot as categories).
    return pd.DataFrame(rows, columns=["step", "accuracy", "curve"]).astype(
        {"step": int, "accuracy": float, "curve": str}
    )


def accuracy_plot(run: SideBySideRun) -> gr.LinePlot:
    """The line plot's update: the curves so far, with one color family per init (darkest at L)."""
    colors = {
        curve_label(init, factor, length): COLORS[init][i]
        for init in INITS
        for i, (factor, length) in enumerate(zip(FACTORS, run.settings.eval_lengths))
    }
    # Gradio 6 applies color_map to a plot that started empty only when every update names the curves again.
    return gr.LinePlot(curves(run), x_lim=[0, run.settings.max_steps], color_map=colors, colors_in_legend=list(colors))


def separation_step(run: SideBySideRun) -> int | None:
    """First step at which mimetic's 2L accuracy leads the default's by at least :data:`SEPARATION`."""
    at_2l = {(e.init, e.step): e.accuracy for e in run.evaluations() if e.length == 2 * run.settings.train_length}
    steps = sorted(step for init, step in at_2l if init == "mimetic" and ("default", step) in at_2l)
    return next((s for s in steps if at_2l["mimetic", s] - at_2l["default", s] >= SEPARATION), None)


def status(run: SideBySideRun) -> str:
    settings = run.settings
    steps = " · ".join(f"{init} step {run.steps[init]}/{settings.max_steps}" for init in INITS)
    line = f"**{steps}** · {run.elapsed:.0f} s · evaluated every {settings.eval_every} steps on {run.eval_examples} strings per length"
    step = separation_step(run)
    if step is not None:
        line += f" · mimetic ahead by ≥ {SEPARATION} at 2L={2 * settings.train_length} since step {step}"
    return line


def final_status(run: SideBySideRun) -> str:
    settings = run.settings
    verb = "Done" if all(run.steps[init] == settings.max_steps for init in INITS) else "Stopped"
    accuracy = {init: run.results[init]["eval"][2 * settings.train_length]["tf_token_accuracy"] for init in INITS}
    return (
        f"**{verb} after {run.elapsed:.0f} s** ({TASK_NAMES[settings.task]}, {ARCHITECTURE_NAMES[settings.model_type]}, "
        f"L={settings.train_length}). Token accuracy at 2L={2 * settings.train_length}: "
        f"mimetic {accuracy['mimetic']:.2f}, default {accuracy['default']:.2f}."
    )


def maps_figure(run: SideBySideRun) -> Figure:
    """Each model's mean-over-channels M, per layer, on the first held-out example of length L."""
    settings = run.settings
    example = make_example(settings.task_config(), settings.train_length, 0)
    input_ids = torch.tensor([example["input_ids"]])
    maps = {init: attention_maps(run.models[init], input_ids)[:, 0] for init in INITS}
    layers = maps["default"].shape[0]
    figure = Figure(figsize=(9, 4.2 * layers), layout="constrained")
    axes = figure.subplots(layers, 2, squeeze=False)
    for column, init in enumerate(INITS):
        for layer in range(layers):
            values = maps[init][layer].numpy()
            limit = max(float(abs(values).max()), 1e-12)
            image = axes[layer, column].imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit)
            axes[layer, column].set(
                title=f"{init} init, layer {layer + 1}", xlabel="source position j", ylabel="output position i"
            )
            figure.colorbar(image, ax=axes[layer, column], shrink=0.8)
    return figure


def _alphabet(settings: RunSettings) -> str:
    return "abcdefghijklmnopqrstuvwxyz"[: TASK_LIMITS[settings.task].vocab_size]


def copy_with_both(text: str, run: SideBySideRun | None) -> tuple[list, list, str]:
    """Each model's greedy answer to ``text`` (copied, or reversed for stack copy), mistakes marked ✗."""
    if run is None or run.is_alive() or set(run.models) != set(INITS):
        raise gr.Error("Train the models first (press Train and wait until it finishes), then type a string here.")
    settings = run.settings
    if settings.task == "mqar":
        raise gr.Error("The copy box works for copy and stack copy; train on one of them to use it.")
    alphabet, max_length = _alphabet(settings), 4 * settings.train_length
    text = (text or "").strip()
    bad = sorted(set(text) - set(alphabet))
    if not text or bad:
        raise gr.Error(
            f"Type letters from {alphabet[0]} to {alphabet[-1]} only (the task's {len(alphabet)} tokens); got {''.join(bad) or 'nothing'!r}."
        )
    if len(text) > max_length:
        raise gr.Error(
            f"The string has {len(text)} letters; at most {max_length} (4 × the training length) are allowed."
        )
    task = settings.task_config()
    tokens = [alphabet.index(ch) for ch in text]
    example = format_prompt_answer(tokens, tokens if settings.task == "copy" else tokens[::-1], task)
    prompt, target = split_prompt_answer(example["input_ids"], example["labels"])
    spell = {**dict(enumerate(alphabet)), task.eos_token_id: EOS_MARK}
    outputs, counts = [], []
    for init in INITS:
        generated = greedy_generate(run.models[init], torch.tensor([prompt]), len(target))[0].tolist()
        outputs.append([(spell.get(t, "?"), None if t == want else "✗") for t, want in zip(generated, target)])
        counts.append(f"{init}: {sum(t == want for t, want in zip(generated, target))}/{len(target)} right")
    expected = "".join(spell[t] for t in target)
    return outputs[0], outputs[1], f"Expected `{expected}` · " + " · ".join(counts)


class _PreviousRun:
    """The last run started (training is one at a time), so the next one can wait for its threads to end."""

    run: SideBySideRun | None = None

    def join(self) -> None:
        if self.run is not None:
            self.run.join()


def build_demo(model: Mapping[str, Any] | None = None, eval_examples: int = EVAL_EXAMPLES) -> gr.Blocks:
    """The Space. ``model`` overrides the study's model shape (tests use a tiny one)."""

    def train(task, model_type, train_length, lr_default, lr_mimetic, max_steps, eval_4x) -> Iterator[tuple]:
        try:
            settings = RunSettings(
                task, model_type, _whole(train_length), lr_default, lr_mimetic, _whole(max_steps), eval_4x
            )
        except ValueError as error:
            raise gr.Error(str(error)) from None
        previous.join()  # a run whose visitor left stops by itself; wait for it rather than share the CPU
        run = SideBySideRun(settings, model=model, eval_examples=eval_examples)
        previous.run = run
        run.start()
        try:
            yield run, accuracy_plot(run), status(run), None
            shown = 0
            while run.is_alive():
                run.updated.wait(timeout=1.0)  # wake at least every second, so a closed page is noticed soon
                run.updated.clear()
                evaluations = len(run.evaluations())
                yield gr.skip(), accuracy_plot(run) if evaluations > shown else gr.skip(), status(run), gr.skip()
                shown = evaluations
        finally:
            run.stop()  # no-op after a normal end; stops the Trainers if the visitor left or pressed Stop
        for init, error in run.errors.items():
            raise gr.Error(f"Training the {init} model failed: {error}")
        yield gr.skip(), accuracy_plot(run), final_status(run), maps_figure(run)

    def stop(run: SideBySideRun | None) -> str | gr.skip:
        if run is None or not run.is_alive():
            return gr.skip()
        run.stop()
        return "Stopping after the current step…"

    def task_changed(task: str) -> gr.Slider:
        limits = TASK_LIMITS[task]
        return gr.Slider(minimum=limits.min_length, maximum=limits.max_length, value=min(50, limits.max_length))

    previous = _PreviousRun()
    defaults = RunSettings()
    with gr.Blocks(title="Mimetic init: copy side by side") as demo:
        gr.Markdown(INTRO)
        session = gr.State(None, time_to_live=3600)  # the visitor's SideBySideRun; models freed after an idle hour
        with gr.Row():
            task = gr.Dropdown(TASKS, value=defaults.task, label="Task")
            model_type = gr.Dropdown(ARCHITECTURES, value=defaults.model_type, label="Architecture")
            limits = TASK_LIMITS[defaults.task]
            train_length = gr.Slider(
                limits.min_length, limits.max_length, value=defaults.train_length, step=1,
                label="Training length L (strings of 1..L)", elem_id="length",
            )  # fmt: skip
        with gr.Row():
            lr_default = gr.Number(defaults.lr_default, label="Learning rate, default init")
            lr_mimetic = gr.Number(defaults.lr_mimetic, label="Learning rate, mimetic init")
            max_steps = gr.Slider(
                *STEPS_RANGE, value=defaults.max_steps, step=10, label="Training steps (batch 32)", elem_id="steps"
            )
            eval_4x = gr.Checkbox(defaults.eval_4x, label="Also evaluate at 4L")
        with gr.Row():
            train_button = gr.Button("Train", variant="primary", elem_id="train")
            stop_button = gr.Button("Stop", elem_id="stop")
        status_line = gr.Markdown("Press **Train** to start.", elem_id="status")
        plot = gr.LinePlot(
            curves(), x="step", y="accuracy", color="curve", y_lim=[0, 1],
            title="Teacher-forced token accuracy on held-out strings", height=380, elem_id="accuracy",
        )  # fmt: skip
        maps = gr.Plot(label="Attention maps: y = M x, M averaged over channels (first test string of length L)")
        gr.Markdown(
            "### Copy a string of your own\nGreedy decoding: each model reads your string, then writes its answer one token at a time."
        )
        with gr.Row():
            text = gr.Textbox(label="Your string (letters a–p)", placeholder="abcabcddponm", scale=4)
            copy_button = gr.Button("Copy with both models", scale=1)
        copy_summary = gr.Markdown()
        with gr.Row():
            default_copy = gr.HighlightedText(label="default init", color_map={"✗": "red"})
            mimetic_copy = gr.HighlightedText(label="mimetic init", color_map={"✗": "red"})

        # UI-only events stay out of the API (api_visibility="private"): clients call /train, /stop and /copy.
        ui_only = {"queue": False, "api_visibility": "private"}
        task.change(task_changed, task, train_length, **ui_only)
        inputs = [task, model_type, train_length, lr_default, lr_mimetic, max_steps, eval_4x]
        training = train_button.click(lambda: gr.Button(interactive=False), None, train_button, **ui_only).then(
            train,
            inputs,
            [session, plot, status_line, maps],
            concurrency_limit=1,
            concurrency_id="train",
            api_name="train",
            # Raw values reach RunSettings, whose errors name the field and its range; Gradio's own preprocessing
            # would turn a string sent to a slider into a generic "upstream Gradio app has raised an exception".
            preprocess=False,
        )
        training.then(lambda: gr.Button(interactive=True), None, train_button, **ui_only)
        stop_button.click(stop, session, status_line, queue=False, api_name="stop")
        gr.on(
            [copy_button.click, text.submit], copy_with_both, [text, session], [default_copy, mimetic_copy, copy_summary],
            api_name="copy",
        )  # fmt: skip
    # Training takes both cores, so one run at a time; a few visitors may wait in line for their turn.
    return demo.queue(default_concurrency_limit=2, max_size=16)


if __name__ == "__main__":
    build_demo().launch()
