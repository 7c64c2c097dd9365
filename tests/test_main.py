"""`python -m hf_mimetic structure`: the side-by-side table shows the structure the init creates."""

from __future__ import annotations

import re
from pathlib import Path

from hf_mimetic.cli import coverage_table, describe


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


def test_the_readme_coverage_tables_are_the_catalogue():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert coverage_table() in readme, "README's table is out of date: paste `hf-mimetic coverage` into it"


def test_structure_works_for_a_grouped_query_decoder():
    table = describe("llama")
    assert "preset 'decoder'" in table and "heads=4" in table
