"""A tiny VIP5 run through the CLI: train, evaluate, explain, recommend print no library
warnings, and `explain` works for a pair without a review (the README example)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from mfmrec.models.vip5.prompts.inference import explanation_prompts, lacking
from mfmrec.models.vip5.prompts.templates import get_template

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "vip5-demo.yaml"
TINY = ["model.backbone=tiny", "model.image_features=rand12", "model.num_negatives=4",
        "model.beams=2", "model.max_input_length=128", "model.max_target_length=16",
        "model.explain_max_tokens=4", "train.epochs=1", "train.max_steps=2"]


def _quiet(run_cli, *args):
    """Run the CLI with every warning recorded; returns (code, out, err, warnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = run_cli(*args)
    library = [w for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning))
               and "mfmrec" not in w.filename]
    return code, out, err, library


@pytest.fixture(scope="module")
def vip5_run(demo_data, tmp_path_factory):
    from mfmrec.cli.main import main

    out = tmp_path_factory.mktemp("vip5cli") / "run"
    assert main(["train", str(CONFIG), *TINY, "--data", str(demo_data),
                 "--out", str(out), "--quiet"]) == 0
    return out


def _unreviewed(dataset, user: int) -> int:
    reviewed = {i for u, i in zip(dataset.reviews.column("user").to_pylist(),
                                  dataset.reviews.column("item").to_pylist(), strict=True)
                if u == user}
    return next(i for i in range(dataset.num_items) if i not in reviewed)


@pytest.mark.slow
def test_commands_print_no_library_warnings(run_cli, vip5_run, dataset):
    item = _unreviewed(dataset, 0)
    for args in (["evaluate", vip5_run, "--quiet", "--users", "2", "--tasks", "explanation"],
                 ["recommend", vip5_run, "--user", "#0", "--k", "2"],
                 ["explain", vip5_run, "--user", "#0", "--item", f"#{item}"]):
        code, _, err, library = _quiet(run_cli, *args)
        assert code == 0, (args, err)
        assert library == [], (args, [str(w.message) for w in library])
        assert "Loading weights" not in err and "Warning" not in err


@pytest.mark.slow
def test_explain_a_pair_without_review_falls_back_to_a_prompt_without_rating(
        run_cli, vip5_run, dataset):
    item = _unreviewed(dataset, 0)
    code, out, err = run_cli("explain", vip5_run, "--user", "#0", "--item", f"#{item}")
    assert code == 0, err
    assert f"{dataset.user_ids[0]} (#0)" in out and "explanation:" in out
    code, _, err = run_cli("explain", vip5_run, "--user", "#0", "--item", f"#{item}",
                           "--prompt", "C-3")
    assert code == 2 and err.count("\n") == 1
    assert f"--user #0 ({dataset.user_ids[0]})" in err
    assert f"--item #{item} ({dataset.item_ids[item]})" in err
    assert "needs a star rating (rating)" in err and "C-1" in err
    code, _, err = run_cli("explain", vip5_run, "--user", dataset.user_ids[0], "--item",
                           f"#{item}", "--prompt", "C-3", "--rating", "4")
    assert code == 0, err


def test_the_fallback_keeps_the_prompt_when_the_request_fills_it(make_vip5):
    c3 = get_template("C-3")
    assert lacking(c3, {"user": 0, "item": 1, "rating": None}) == ["rating"]
    assert lacking(c3, {"user": 0, "item": 1, "rating": 5.0}) == []
    model = make_vip5()
    full = {"user": 0, "item": 1, "rating": 5.0, "summary": None, "feature": None}
    bare = {**full, "rating": None}
    (kept,) = explanation_prompts(model.prompts, [full], "C-3", fallback=True)
    (fallen,) = explanation_prompts(model.prompts, [bare], "C-3", fallback=True)
    (c1,) = explanation_prompts(model.prompts, [bare], "C-1")
    assert fallen.input_ids == c1.input_ids and kept.input_ids != c1.input_ids


def test_loading_a_backbone_hides_the_weights_bar_only_for_the_load():
    from transformers.utils import logging as hf_logging

    from mfmrec.models.vip5.backbone import no_loading_bar

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.enable_progress_bar()
    try:
        with no_loading_bar():
            assert not hf_logging.is_progress_bar_enabled()
        assert hf_logging.is_progress_bar_enabled()
    finally:
        if not was:
            hf_logging.disable_progress_bar()
