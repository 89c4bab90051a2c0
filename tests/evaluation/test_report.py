"""Reports: Markdown/rich tables, files, comparisons and the bar chart."""

from __future__ import annotations

import copy
import json
from io import StringIO

import pytest
from PIL import Image
from rich.console import Console

from mfmrec.errors import MfmrecError
from mfmrec.evaluation.report import (
    bar_chart,
    load_report,
    models_table,
    print_report,
    prompt_order,
    render_markdown,
    saved_splits,
    section_markdown,
    side_by_side,
    write_report,
)

RANK = {"HR@1": 0.25, "HR@5": 0.5, "NDCG@5": 0.375, "HR@10": 0.75, "NDCG@10": 0.4321,
        "users": 4}
TEXT = {"BLEU-4": 12.345, "ROUGE-1": 40.0, "ROUGE-2": 20.5, "ROUGE-L": 35.25}


def results(simulated=True) -> dict:
    """A hand-made evaluator result (SIMULATED numbers)."""
    return {
        "model": "vip5", "dataset": "demo", "simulated": simulated, "split": "test",
        "num_items": 30, "users": 4,
        "settings": {"seed": 0, "hr_ks": [1, 5, 10], "ndcg_ks": [5, 10],
                     "ties": "pessimistic"},
        "tasks": {
            "sequential": {"protocol": "generated top-10 list", "prompts": {
                "A-10": {**RANK, "HR@1": 1.0, "slots": 40, "invalid": 0, "duplicates": 0,
                         "valid_share": 1.0},
                "A-3": {**RANK, "slots": 40, "invalid": 2, "duplicates": 1,
                        "valid_share": 0.925}}},
            "direct": {"protocol": "100 stored candidates, exact scores",
                       "prompts": {"B-5": dict(RANK)}},
            "explanation": {"protocol": "7 test reviews", "prompts": {"C-3": {
                "p5": TEXT, "standard": {**TEXT, "BLEU-4": 15.0}, "requests": 7,
                "examples": [{"reference": "great strings", "generated": "good strings"}]}}},
        },
        "skipped": {"rating": "not a task here"},
    }


def test_prompt_order_is_natural():
    assert sorted(["A-10", "B-5", "-", "A-3", "A-9"], key=prompt_order) == [
        "-", "A-3", "A-9", "A-10", "B-5"]


def test_markdown_tables_shaped_like_the_paper():
    md = render_markdown(results())
    assert md.startswith("# Evaluation: vip5 on demo (test split) — SIMULATED data")
    assert "| Prompt | HR@1 | HR@5 | NDCG@5 | HR@10 | NDCG@10 | users | valid share |" in md
    # natural prompt order: A-3 before A-10; four decimals
    assert md.index("| A-3 |") < md.index("| A-10 |")
    assert "| A-3 | 0.2500 | 0.5000 | 0.3750 | 0.7500 | 0.4321 | 4 | 0.925 (2 invalid, 1 dup) |" \
        in md
    assert "| B-5 | 0.2500 | 0.5000 | 0.3750 | 0.7500 | 0.4321 | 4 |" in md
    # both text modes, x100 with two decimals
    assert "## Explanation generation (p5 metrics, x100)" in md
    assert "| C-3 | 12.35 | 40.00 | 20.50 | 35.25 | 7 |" in md
    assert "| C-3 | 15.00 | 40.00 | 20.50 | 35.25 | 7 |" in md
    assert "generated: good strings" in md and "- rating: not a task here" in md
    assert "SIMULATED" not in render_markdown(results(simulated=False))


def test_write_and_load_report(tmp_path):
    res = results()
    json_path, md_path = write_report(tmp_path, "test", res)
    assert json_path == tmp_path / "eval" / "test.json" and md_path.read_text() == \
        render_markdown(res)
    assert load_report(tmp_path, "test") == json.loads(json.dumps(res))
    assert saved_splits(tmp_path) == ["test"]
    with pytest.raises(MfmrecError, match="valid.json"):
        load_report(tmp_path, "valid")
    (tmp_path / "eval" / "bad.json").write_text("{")
    with pytest.raises(MfmrecError, match="invalid JSON"):
        load_report(tmp_path, "bad")


def test_print_report_with_rich():
    buf = StringIO()
    print_report(results(), Console(file=buf, width=200))
    out = buf.getvalue()
    assert "Sequential recommendation" in out and "0.4321" in out and "12.35" in out
    assert "skipped rating" in out


def test_side_by_side_column_groups():
    mm, text = results(), copy.deepcopy(results())
    text["tasks"]["sequential"]["prompts"]["A-3"]["HR@10"] = 0.5
    del text["tasks"]["sequential"]["prompts"]["A-10"]
    sec = side_by_side({"multimodal": mm, "text-only": text}, metrics=["HR@10", "NDCG@10"])
    assert sec.header == ["Prompt", "multimodal HR@10", "multimodal NDCG@10",
                          "text-only HR@10", "text-only NDCG@10"]
    assert sec.rows == [["A-3", "0.7500", "0.4321", "0.5000", "0.4321"],
                        ["A-10", "0.7500", "0.4321", "—", "—"]]
    assert "multimodal vs text-only" in sec.title
    md = section_markdown(sec)
    assert "| A-10 | 0.7500 | 0.4321 | — | — |" in md
    expl = side_by_side({"a": mm}, task="explanation", mode="standard")
    assert expl.rows == [["C-3", "15.00", "40.00", "20.50", "35.25"]]
    with pytest.raises(ValueError):
        side_by_side({})


def test_models_table_rows_are_models():
    sec = models_table({"sasrec": results(), "vip5": results()}, task="direct")
    assert sec.header[:3] == ["Model", "Prompt", "HR@1"]
    assert [r[:2] for r in sec.rows] == [["sasrec", "B-5"], ["vip5", "B-5"]]


def test_bar_chart_png(tmp_path):
    path = bar_chart({"sasrec": results(), "vip5": results()}, tmp_path / "plots" / "bars.png")
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size[0] > img.size[1] > 100
    with pytest.raises(MfmrecError, match="no run has"):
        bar_chart({"x": {"tasks": {}}}, tmp_path / "none.png")
