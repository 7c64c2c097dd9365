"""The Gradio Space (spaces/copy_recall): the real app on localhost, driven with gradio_client and headless Chromium.

Needs the ``test`` extra (gradio, selenium); the browser test also needs Debian's ``chromium`` and ``chromium-driver``
(.ci/run installs them) and is skipped without them. The app runs in this process, with a tiny model, so the tests can see its training threads.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from hf_mimetic.train.synthetic import (
    MimeticArguments,
    SyntheticModelArguments,
    study_training_arguments,
    train_synthetic,
)

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported
import gradio_client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

SPACE = Path(__file__).resolve().parents[1] / "spaces" / "copy_recall"
TINY_MODEL = {"hidden_size": 32, "num_layers": 1, "state_size": 8, "head_dim": 16}
SETTINGS = {"task": "copy", "model_type": "mamba2", "train_length": 8, "lr_default": 3e-3, "lr_mimetic": 1e-2, "max_steps": 10, "eval_4x": True}  # fmt: skip
LONG_RUN = {**SETTINGS, "max_steps": 300}  # long enough to be interrupted
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module", autouse=True)
def space_folder():
    """The Space's modules (app, side_by_side) importable, and torch's thread count restored afterwards (a run sets
    it for the whole process)."""
    sys.path.insert(0, str(SPACE))
    threads = torch.get_num_threads()
    yield
    sys.path.remove(str(SPACE))
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def url():
    import app

    demo = app.build_demo(model=TINY_MODEL, eval_examples=4)
    demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1")
    yield demo.local_url
    demo.close()


@pytest.fixture
def client(url):
    client = gradio_client.Client(url, verbose=False)
    yield client
    client.close()


@pytest.fixture
def started_runs(url, monkeypatch) -> list:
    """Every SideBySideRun the app starts during the test, to check how far it trained."""
    import side_by_side

    runs, start = [], side_by_side.SideBySideRun.start

    def record_and_start(run) -> None:
        runs.append(run)
        start(run)

    monkeypatch.setattr(side_by_side.SideBySideRun, "start", record_and_start)
    return runs


def training_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("space-train-")]


#: How long a condition may take before a test fails. Every wait polls a condition, so this bounds only a hang: it is
#: generous, since a loaded machine may be many times slower than an idle one.
PATIENCE = 600.0


def wait_for(condition, what: str, timeout: float = PATIENCE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def steps_done(status: str) -> list[int]:
    """The steps of both models in a status line ("default step 12/300 · mimetic step 11/300 · ...")."""
    return [int(n) for n in re.findall(r"step (\d+)/", status)] or [0]


def wait_for_first_step(job) -> None:
    wait_for(lambda: any(min(steps_done(out[1])) > 0 for out in job.outputs()), "the first training step")


def test_each_init_trains_exactly_as_a_lone_run_of_the_same_seed(tmp_path):
    """Two Trainers in one process share torch's RNG and accelerate's state; neither may change what they learn."""
    from side_by_side import INITS, RunSettings, SideBySideRun

    settings = RunSettings(train_length=8, max_steps=10, eval_4x=False, seed=3)
    pair = SideBySideRun(settings, model=TINY_MODEL, eval_examples=4)
    pair.start()
    pair.join()
    for init in INITS:
        model = SyntheticModelArguments(model_type="mamba2", **TINY_MODEL, mimetic_init=init == "mimetic")
        schedule = study_training_arguments(
            str(tmp_path / init), 10, settings.learning_rate(init), seed=3, eval_steps=settings.eval_every
        )
        alone = train_synthetic(model, settings.task_arguments(eval_examples=4), MimeticArguments(), schedule)
        assert pair.results[init]["eval"] == alone["eval"]
        assert accuracies(pair.results[init]["history"]) == accuracies(alone["history"])


def accuracies(history: list[dict]) -> list[tuple]:
    return [(h["step"], k, v) for h in history for k, v in h.items() if k.endswith("token_accuracy")]


def test_a_short_run_streams_updates_then_the_copy_box_answers(client):
    job = client.submit(**SETTINGS, api_name="/train")
    updates = list(job)
    plot, status, maps = job.result()
    statuses = [out[1] for out in updates]
    assert len(statuses) >= 3 and "step 0/10" in statuses[0]
    assert status.startswith("**Done after") and "Token accuracy at 2L=16: mimetic" in status
    rows = plot["value"]["data"]
    curves = {row[2] for row in rows}
    assert curves == {
        f"{init}, {f}={n}" for init in ("default", "mimetic") for f, n in (("L", 8), ("2L", 16), ("4L", 32))
    }
    assert {row[0] for row in rows} == set(range(1, 11))  # ten evaluations: one per step here
    assert all(0.0 <= row[1] <= 1.0 for row in rows)
    assert maps["type"] == "matplotlib"

    default, mimetic, summary = client.predict("abcabc", api_name="/copy")
    assert len(default) == len(mimetic) == 7  # six letters and the end of string
    summary_match = re.fullmatch(r"Expected `abcabc⏎` · default: (\d)/7 right · mimetic: (\d)/7 right", summary)
    assert summary_match
    for answer, right in zip((default, mimetic), summary_match.groups()):  # each wrong token is marked, and only those
        assert sum(chunk["class_or_confidence"] == "✗" for chunk in answer) == 7 - int(right)
        assert all(chunk["class_or_confidence"] in (None, "✗") for chunk in answer)
    with pytest.raises(AppError, match=re.escape("Type letters from a to p only (the task's 16 tokens); got 'xz'.")):
        client.predict("axbz", api_name="/copy")
    with pytest.raises(AppError, match=re.escape("The string has 33 letters; at most 32 (4 × the training length)")):
        client.predict("a" * 33, api_name="/copy")


def test_mqar_with_mamba_1_trains_and_the_copy_box_says_it_is_for_copying(client):
    mqar = {**SETTINGS, "task": "mqar", "model_type": "mamba", "train_length": 4}
    plot, status, maps = client.predict(**mqar, api_name="/train")
    assert status.startswith("**Done after") and "(MQAR (associative recall), Mamba 1, L=4)" in status
    assert {row[2] for row in plot["value"]["data"]} >= {"default, 4L=16", "mimetic, 4L=16"}
    assert maps["type"] == "matplotlib"
    with pytest.raises(AppError, match=re.escape("The copy box works for copy and stack copy")):
        client.predict("abc", api_name="/copy")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"lr_default": 0.5}, "learning rate (default init) = 0.5 is out of range: valid range is 0.0001 to 0.03"),
        ({"lr_mimetic": None}, "learning rate (mimetic init) must be a number, got None"),
        ({"task": "mqar", "train_length": 50}, "training length for mqar = 50 is out of range: valid range is 2 to 16"),
        ({"max_steps": 15.5}, "training steps must be a whole number, got 15.5"),
        # Strings sent to sliders reach the app's own validation, not Gradio's generic preprocessing error.
        ({"train_length": "ten"}, "training length for copy must be a whole number, got 'ten'"),
        ({"max_steps": "x"}, "training steps must be a whole number, got 'x'"),
        ({"eval_4x": "no"}, "evaluate at 4× must be true or false, got 'no'"),
    ],
)
def test_bad_settings_are_rejected_with_the_valid_range(client, change, message):
    with pytest.raises(AppError, match=re.escape(message)):
        client.predict(**{**SETTINGS, **change}, api_name="/train")


def test_the_copy_box_asks_for_training_first(client):
    with pytest.raises(AppError, match=re.escape("Train the models first")):
        client.predict("abc", api_name="/copy")


def test_stop_ends_the_run_early(client, started_runs):
    job = client.submit(**LONG_RUN, api_name="/train")
    wait_for_first_step(job)
    client.predict(api_name="/stop")
    plot, status, _ = job.result(timeout=PATIENCE)
    assert status.startswith("**Stopped after")
    assert max(row[0] for row in plot["value"]["data"]) < 300
    assert not started_runs[-1].is_alive() and max(started_runs[-1].steps.values()) < 300


def test_leaving_mid_run_stops_the_training_threads(client, started_runs):
    job = client.submit(**LONG_RUN, api_name="/train")
    wait_for_first_step(job)
    assert len(training_threads()) == 2
    job.cancel()  # the server closes the event's generator, as when a page is closed
    wait_for(lambda: not training_threads(), "the training threads to end")
    assert max(started_runs[-1].steps.values()) < 300  # stopped, not finished


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium and chromium-driver (see .ci/run)")
def test_the_browser_shows_the_plot_and_closing_the_page_stops_training(url, started_runs, tmp_path):
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1800",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-default-apps"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(str(CHROMEDRIVER)), options=options)
    try:
        driver.get(url)
        wait = WebDriverWait(driver, PATIENCE, ignored_exceptions=(StaleElementReferenceException,))  # plots re-render
        for slider, value in (("#length", "8"), ("#steps", "300")):  # short strings, many steps: closed mid-run
            box = wait.until(
                expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, f"{slider} input[type=number]"))
            )
            box.clear()
            box.send_keys(value, Keys.TAB)
        driver.find_element(By.CSS_SELECTOR, "#train").click()
        plot = driver.find_element(By.CSS_SELECTOR, "#accuracy")

        def drawn_lines() -> list:  # vega's SVG: one colored path per curve, with a segment once it has two points
            paths = plot.find_elements(By.CSS_SELECTOR, ".mark-line path")
            return [p for p in paths if p.get_attribute("stroke") and "L" in (p.get_attribute("d") or "")]

        wait.until(lambda _: len(drawn_lines()) == 6)  # default and mimetic at L, 2L and 4L
        driver.execute_script("arguments[0].scrollIntoView();", plot)
        screenshot = tmp_path / "space.png"
        driver.save_screenshot(str(screenshot))
        assert plot.is_displayed() and plot.size["height"] > 200
        assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert training_threads(), "the run ended before the page was closed: nothing left to stop"
    finally:
        driver.quit()
    wait_for(lambda: not training_threads(), "the training threads to end after the page closed")
    assert max(started_runs[-1].steps.values()) < 300  # stopped, not finished
