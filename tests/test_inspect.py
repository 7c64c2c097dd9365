"""`hf-mimetic inspect`: figures and summaries for tiny models of each kind, recomputed here from the raw weights;
side-by-side panels; checkpoints; and one clear error line for bad sources."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import build
from PIL import Image
from test_structure import vit_products
from test_train_image_classification import TINY as IMAGE_TINY
from test_train_image_classification import write_imagefolder

from hf_mimetic.cli import main as cli_main
from hf_mimetic.inspect.report import Source, filter_mosaic, inspect_models
from hf_mimetic.loading import saved_class

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import train_image_classification  # noqa: E402


def diag_and_off(matrix: torch.Tensor) -> tuple[float, float]:
    d = matrix.shape[-1]
    diagonal = matrix.diagonal(dim1=-2, dim2=-1)
    off = (matrix.pow(2).sum((-2, -1)) - diagonal.pow(2).sum(-1)) / (d * d - d)
    return diagonal.mean().item(), off.sqrt().mean().item()


def test_attention_summary_equals_statistics_of_the_raw_weights(tmp_path):
    model = build("vit", mimetic_init=True)
    data = inspect_models([Source("mimetic", model.vit)], tmp_path, progress=lambda message: None)
    rows = data["sources"][0]["layers"]
    assert [r["layer"] for r in rows] == [0, 1, 2] and all(r["kind"] == "attention" for r in rows)
    for row, (qk, vo) in zip(rows, vit_products(model)):
        qk_diag, qk_off = diag_and_off(qk)
        vo_diag, vo_off = diag_and_off(vo)
        assert row["qk_diag"] == pytest.approx(qk_diag, abs=1e-5) and row["qk_offdiag_std"] == pytest.approx(qk_off, rel=1e-4)
        assert row["vo_diag"] == pytest.approx(vo_diag, abs=1e-5) and row["vo_offdiag_std"] == pytest.approx(vo_off, rel=1e-4)
        assert row["qk_ratio"] == pytest.approx(qk_diag / qk_off, rel=1e-4)
    assert {"attention_vo.png", "attention_qk_layer0.png", "summary.json", "summary.md"} <= {p.name for p in tmp_path.iterdir()}
    assert json.loads((tmp_path / "summary.json").read_text())["sources"][0]["mimetic_config"]["preset"] == "vision"
    assert "| layer | qk_diag |" in (tmp_path / "summary.md").read_text()


def test_conv_and_ssm_summaries_equal_statistics_of_the_raw_weights(tmp_path):
    convmixer, mamba = build("convmixer", mimetic_init=True), build("mamba2", mimetic_init=True)
    data = inspect_models([Source("convmixer", convmixer.convmixer), Source("mamba2", mamba.backbone)], tmp_path,
                          progress=lambda message: None)  # fmt: skip
    conv_rows, ssm_rows = data["sources"][0]["layers"], data["sources"][1]["layers"]
    for row, layer in zip(conv_rows, convmixer.convmixer.layers):
        filters = layer.dwconv.weight.detach()[:, 0].double()
        k = filters.shape[-1]
        assert row["filter_centre_variance"] == pytest.approx(filters[:, k // 2, k // 2].var().item(), rel=1e-6)
        pairs = torch.stack([filters[:, :, :-1].reshape(-1), filters[:, :, 1:].reshape(-1)])
        assert row["neighbour_correlation"] == pytest.approx(torch.corrcoef(pairs)[0, 1].item(), abs=1e-6)
    for row, layer in zip(ssm_rows, mamba.backbone.layers):
        mixer = layer.mixer
        delta = torch.nn.functional.softplus(mixer.dt_bias.detach())
        a_bar = torch.exp(-torch.exp(mixer.A_log.detach()) * delta)
        assert row["mean_a_bar"] == pytest.approx(a_bar.mean().item(), rel=1e-6)
        assert row["mean_delta"] == pytest.approx(delta.mean().item(), rel=1e-6)
    assert {"conv_covariance.png", "conv_filters.png", "ssm.png"} <= set(data["figures"])


def test_sources_are_drawn_side_by_side_one_panel_each(tmp_path):
    one, three = tmp_path / "one", tmp_path / "three"
    model = build("vit", mimetic_init=True).vit
    inspect_models([Source("a", model)], one, progress=lambda message: None)
    inspect_models([Source("a", model), Source("b", build("vit").vit), Source("c", model)], three,
                   progress=lambda message: None)  # fmt: skip
    width = {folder: Image.open(folder / "attention_vo.png").size[0] for folder in (one, three)}
    # Each source is one column of panels, 2.6 inches wide at 110 dpi, plus a margin of 0.6 inch.
    assert width[one] == pytest.approx((2.6 + 0.6) * 110, abs=2)
    assert width[three] == pytest.approx((3 * 2.6 + 0.6) * 110, abs=2)


def test_a_trained_checkpoint_its_final_model_and_a_built_model_side_by_side(tmp_path, capsys):
    folder = write_imagefolder(tmp_path / "images")
    output = tmp_path / "run"
    train_image_classification.main([*IMAGE_TINY, "--train_dir", str(folder), "--output_dir", str(output),
                                     "--max_steps", "2", "--save_strategy", "steps", "--save_steps", "1",
                                     "--eval_strategy", "no", "--mimetic_init"])  # fmt: skip
    out = tmp_path / "figures"
    cli_main(["inspect", str(output / "checkpoint-1"), str(output), "--model_type", "vit", "--layers", "0",
              "--init", "mimetic", "--out", str(out), "--crop", "8"])  # fmt: skip
    data = json.loads((out / "summary.json").read_text())
    assert [s["name"] for s in data["sources"]] == ["checkpoint-1", "run", "vit (mimetic)"]
    assert "wrote" in capsys.readouterr().out
    # Loaded as the class it was saved from, so the head loads too and transformers reports nothing missing.
    assert saved_class(train_image_classification_config(output)).__name__ == "ViTForImageClassification"
    # init:FOLDER rebuilds what the run started from: its config, its recipe, the training seed.
    cli_main(["inspect", f"init:{output}", str(output), "--seed", "0", "--out", str(tmp_path / "against-init")])
    init, trained = json.loads((tmp_path / "against-init" / "summary.json").read_text())["sources"]
    assert init["name"] == "init of run" and init["mimetic_config"] == trained["mimetic_config"]
    started = build("vit", config=train_image_classification_config(output))
    assert init["layers"][0]["qk_diag"] == pytest.approx(
        diag_and_off(vit_products(started)[0][0])[0], abs=1e-6
    )


def train_image_classification_config(folder: Path):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(folder)


def run_cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hf_mimetic", "inspect", *argv], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", ["missing", "no-config", "unsupported", "hub-offline"])
def test_bad_sources_give_one_clear_error_line_and_no_traceback(case, tmp_path):
    if case == "missing":
        source, message = str(tmp_path / "missing"), "no such folder"
    elif case == "no-config":
        (tmp_path / "empty").mkdir()
        source, message = str(tmp_path / "empty"), "no config.json in it"
    elif case == "unsupported":
        (tmp_path / "bogus").mkdir()
        (tmp_path / "bogus" / "config.json").write_text(json.dumps({"model_type": "no-such-model"}))
        source, message = str(tmp_path / "bogus"), "no-such-model"
    else:
        source, message = "no-such-org/no-such-model", "Hugging Face Hub"
    result = run_cli(source, "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("hf-mimetic inspect: error:") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_filter_mosaic_places_each_filter_in_its_own_tile_scaled_to_its_max():
    filters = torch.randn(5, 3, 3)
    mosaic = filter_mosaic(filters, rows=2, columns=3)
    assert mosaic.shape == (2 * 4, 3 * 4)
    for i in range(6):
        row, column = divmod(i, 3)
        tile = mosaic[row * 4 : row * 4 + 3, column * 4 : column * 4 + 3]
        expected = filters[i] / filters[i].abs().max() if i < 5 else torch.zeros(3, 3)  # the 6th tile stays blank
        torch.testing.assert_close(tile, expected)
    assert mosaic[3::4].abs().sum() == 0 and mosaic[:, 3::4].abs().sum() == 0  # the separating lines
