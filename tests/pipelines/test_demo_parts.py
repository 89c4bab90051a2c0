"""The demo's pieces without its training (fast tier): configs, the table, intervals."""

from __future__ import annotations

import pytest
from rich.console import Console

from mfmrec.pipelines import demo
from mfmrec.pipelines.demo_report import intervals, markdown_table, print_table, summary_results
from mfmrec.training.config import resolve


@pytest.mark.parametrize("config", [demo.pretrain_config("mm"),
                                    demo.tuning_config("/backbone", "mm", 2),
                                    demo.tuning_config("/backbone", "text", 0), demo.SASREC])
def test_every_demo_config_is_a_valid_run_config(config):
    run = resolve(config, source="demo")
    assert run.model_name in ("vip5", "sasrec")
    if run.model_name == "vip5":
        assert run.model.indexing.startswith("semantic:")
        assert (run.model.image_features is None) == (run.model.image_tokens == 0)


def test_training_jobs_chain_pretraining_into_tuning_and_workers_share_the_cores(tmp_path,
                                                                               monkeypatch):
    jobs = demo.training_jobs(tmp_path, tmp_path / "data")
    assert list(jobs) == ["multimodal", "text-only", "sasrec"]
    pre, tune = jobs["multimodal"]
    assert pre[3] is True and tune[3] is False  # pretrain, then train
    assert tune[0]["model"]["backbone"] == str(pre[2] / "backbone")
    assert [s[2].name for s in jobs["sasrec"]] == ["sasrec"]
    monkeypatch.setattr(demo.os, "cpu_count", lambda: 2)
    assert demo.demo_workers(None) == (3, 1)  # the three chains overlap on 2 cores
    assert demo.demo_workers(1) == (1, 2)
    monkeypatch.setattr(demo.os, "cpu_count", lambda: 12)
    assert demo.demo_workers(None) == (3, 4)
    monkeypatch.setattr(demo.os, "cpu_count", lambda: 1)
    assert demo.demo_workers(None) == (1, 1)  # one core: everything in this process


def _result(hits: list[int], prompt: str = "-") -> dict:
    """An evaluator result whose users rank the target at ``hits`` (0 = missed)."""
    metrics = {"HR@5": sum(0 < r <= 5 for r in hits) / len(hits),
               "NDCG@5": 0.0, "HR@10": sum(0 < r <= 10 for r in hits) / len(hits),
               "NDCG@10": 0.0, "ranks": hits}
    return {"tasks": {"sequential": {"prompts": {prompt: metrics}},
                      "direct": {"prompts": {prompt.replace("A", "B"): metrics}}}}


def test_the_table_files_prompt_less_models_under_the_seen_prompts_and_bounds_the_gap():
    better = [1] * 30 + [0] * 10
    worse = [0] * 30 + [1] * 10
    results = {"multimodal": _result(better, "A-3"), "text-only": _result(worse, "A-3"),
               "sasrec": _result(worse)}
    table = summary_results(results)
    assert set(table["sasrec"]) == {"A-3", "B-5"}  # "-" filed by protocol
    assert table["multimodal"]["A-3"]["HR@10"] == pytest.approx(0.75)
    spans = intervals(results, "multimodal", "text-only", rounds=200)
    low, high = spans["A-3"]["HR@10"]
    assert 0 < low <= 0.5 <= high  # the true gap (0.75 - 0.25) is inside and above zero
    text = markdown_table(table, spans)
    assert "| multimodal |" in text and "paired bootstrap 95%" in text
    console = Console(record=True, width=200)
    print_table(table, spans, console)
    assert "SIMULATED" in console.export_text()


def test_serve_command_names_the_multimodal_run_first_and_quotes_paths(tmp_path):
    import shlex

    runs = {"text-only": tmp_path / "runs" / "text-only", "sasrec": tmp_path / "runs" / "sasrec",
            "multimodal": tmp_path / "my runs" / "multimodal"}
    line = demo.serve_command(runs)
    words = shlex.split(line)
    assert words[:2] == ["mfmrec", "serve"]
    assert words[2:] == [str(runs[x]) for x in ("multimodal", "sasrec", "text-only")]


def test_example_user_leaves_out_items_the_user_already_has():
    from types import SimpleNamespace

    import numpy as np
    import torch

    from mfmrec.models.base import GENERATED_LIST
    from mfmrec.pipelines.demo_report import example_user

    class Listing(torch.nn.Module):  # a list-generating model that repeats the history
        produces = GENERATED_LIST

        def recommend(self, users, histories, k, prompt=None):
            order = histories[0].tolist() + [i for i in range(20) if i not in histories[0]]
            return torch.tensor([order[:k]])

    history = np.array([3, 1, 4])
    ds = SimpleNamespace(targets=lambda split: (np.array([0]), [history], np.array([9])),
                         num_items=20, user_ids=["u0"], titles=[f"t{i}" for i in range(20)],
                         item_ids=[f"i{i}" for i in range(20)])
    text = example_user(SimpleNamespace(dataset=ds, model=Listing()), Console(), k=3)
    recommended = text.split("history left out):")[1]
    assert "(i0)" in recommended and "(i2)" in recommended and "(i5)" in recommended
    assert not any(f"(i{i})" in recommended for i in (1, 3, 4))
