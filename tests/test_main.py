"""`python -m hf_mimetic structure`: the side-by-side table shows the structure the init creates."""

from __future__ import annotations

import re

from hf_mimetic.cli import describe


def _cells(table: str, column: int) -> list[tuple[float, float]]:
    rows = [line for line in table.splitlines() if re.match(r"\| \d+ \|", line)]
    pairs = [row.split("|")[column + 2].strip().split(" → ") for row in rows]
    return [(float(a), float(b)) for a, b in pairs]


def test_attention_table_shows_positive_qk_and_negative_vo_diagonals():
    table = describe("gpt2")
    assert "preset 'language'" in table
    for default, mimetic in _cells(table, 0):  # QK diag
        assert abs(default) < 0.02 and mimetic > 0.1
    for default, mimetic in _cells(table, 2):  # VO diag
        assert abs(default) < 0.02 and mimetic < -0.15


def test_ssm_table_shows_delta_one_and_a_bar_near_one():
    table = describe("mamba2")
    for default, mimetic in _cells(table, 1):  # mean Δ
        assert default < 0.2 and abs(mimetic - 1.0) < 1e-3
    for default, mimetic in _cells(table, 0):  # mean Ā
        assert mimetic > 0.99 and mimetic > default
