"""`mfmrec evaluate | recommend | explain | report` on a hand-made run directory.

The run holds a tiny model registered here (a learned popularity vector and a template
explainer) over a tiny SIMULATED dataset, so every printed value is known in advance.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import yaml

from mfmrec.config import check
from mfmrec.data import load_dataset
from mfmrec.data.raw import RawDataset
from mfmrec.data.writer import write_dataset
from mfmrec.models.base import Recommender
from mfmrec.models.registry import register
from mfmrec.training.checkpoint import save_tensors

N_ITEMS, N_USERS = 20, 6


@dataclass
class PopConfig:
    """Config of the test-only popularity model."""

    scale: float = 1.0  # multiplies the scores

    def __post_init__(self) -> None:
        check(self.scale > 0, "model.scale", "must be > 0")


class Pop(Recommender):
    name = "test-pop"
    tasks = frozenset({"sequential", "direct", "explanation"})

    def __init__(self, config: PopConfig, dataset):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(dataset.num_items))

    def score_items(self, users, histories, prompt=None):
        return self.weight.expand(len(users), -1)  # (B, N)

    def explain(self, requests, prompt=None):
        return [f"user {q['user']} likes item {q['item']} ({prompt or 'default'})"
                for q in requests]


register("test-pop", PopConfig, "test only")(Pop)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(1)
    seqs = [rng.choice(N_ITEMS, size=5, replace=False).tolist() for _ in range(N_USERS)]
    cols = ("user", "item", "rating", "summary", "text", "explanation", "feature",
            "reviewer_name", "time")
    reviews = {c: [] for c in cols}
    for u, seq in enumerate(seqs):
        for t, i in enumerate(seq):
            for c, v in zip(cols, (u, i, 4.0, "ok", "ok", f"user {u} likes item {i} (C-1)",
                                   "sound", f"name {u}", t), strict=True):
                reviews[c].append(v)
    raw = RawDataset(name="clitiny", user_ids=[f"R{u}" for u in range(N_USERS)],
                     item_ids=[f"A{i:02d}" for i in range(N_ITEMS)], sequences=seqs,
                     item_titles=[f"thing {i}" for i in range(N_ITEMS)], reviews=reviews,
                     simulated=True)
    data = write_dataset(raw, root / "data", seed=0, num_negatives=9)
    run = root / "run"
    (run / "final").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(
        {"model": {"name": "test-pop", "scale": 1.0}, "train": {}, "eval": {"batch_size": 4}}))
    (run / "run.json").write_text(json.dumps({"dataset": str(data)}))
    # popularity = item index: item 19 is the best, then 18, ...
    save_tensors(run / "final" / "trainable.safetensors",
                 {"weight": torch.arange(N_ITEMS, dtype=torch.float32)})
    return run


def test_evaluate_writes_reports_and_prints_tables(run_cli, run_dir):
    code, out, err = run_cli("evaluate", run_dir, "--quiet", "--prompts", "C-1")
    assert code == 0, err
    results = json.loads((run_dir / "eval" / "test.json").read_text())
    assert results["settings"]["batch_size"] == 4  # from the run config's eval: section
    assert results["model"] == "test-pop" and results["simulated"] is True
    assert set(results["tasks"]) == {"sequential", "direct", "explanation"}
    # the explainer returns the reference text for prompt C-1 -> BLEU 100 in both modes
    expl = results["tasks"]["explanation"]["prompts"]["C-1"]
    assert expl["p5"]["BLEU-4"] == pytest.approx(100.0)
    assert expl["standard"]["BLEU-4"] == pytest.approx(100.0)
    md = (run_dir / "eval" / "test.md").read_text()
    assert "| C-1 | 100.00 | 100.00 | 100.00 | 100.00 |" in md
    assert "Sequential recommendation" in out and "HR@10" in out


def test_evaluate_flags_override_config(run_cli, run_dir):
    code, _, err = run_cli("evaluate", run_dir, "--quiet", "--split", "valid", "--users", "2",
                           "--tasks", "sequential", "--batch-size", "1", "--exclude-history")
    assert code == 0, err
    res = json.loads((run_dir / "eval" / "valid.json").read_text())
    assert res["users"] == 2 and list(res["tasks"]) == ["sequential"]
    assert res["settings"]["exclude_history"] is True and res["settings"]["batch_size"] == 1
    code, _, err = run_cli("evaluate", run_dir, "--quiet", "--tasks", "sequential,ratings")
    assert code == 2 and "eval.tasks" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("evaluate", run_dir, "--quiet", "--direct-scorer", "greedy")
    assert code == 2 and "eval.direct_scorer" in err


def test_recommend_prints_top_k_without_seen_items(run_cli, run_dir):
    ds = load_dataset(json.loads((run_dir / "run.json").read_text())["dataset"])
    seen = set(ds.sequences[2].tolist())
    expected = [i for i in range(N_ITEMS - 1, -1, -1) if i not in seen][:3]
    code, out, err = run_cli("recommend", run_dir, "--user", "R2", "--k", "3")
    assert code == 0, err
    lines = [ln for ln in out.splitlines() if "thing" in ln]
    assert [re.search(r"\bA\d\d\b", ln).group() for ln in lines] == [
        ds.item_ids[i] for i in expected]
    assert str(ds.numbers[expected[0]]) in lines[0] and "SIMULATED" in out
    # '#2' is the internal index of the same user
    assert run_cli("recommend", run_dir, "--user", "#2", "--k", "3")[1] == out
    code, out, _ = run_cli("recommend", run_dir, "--user", "R2", "--k", "1", "--include-seen")
    assert "A19" in out


def test_unknown_ids_are_one_line_errors(run_cli, run_dir):
    code, _, err = run_cli("recommend", run_dir, "--user", "nobody")
    assert code == 2 and "'nobody'" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("recommend", run_dir, "--user", "#99")
    assert code == 2 and "#99" in err
    code, _, err = run_cli("explain", run_dir, "--user", "R1", "--item", "Z9")
    assert code == 2 and "'Z9'" in err
    code, _, err = run_cli("evaluate", run_dir.parent / "missing", "--quiet")
    assert code == 2 and "missing" in err


def test_explain_prints_generated_text_and_reference(run_cli, run_dir):
    ds = load_dataset(json.loads((run_dir / "run.json").read_text())["dataset"])
    item = int(ds.sequences[1][0])
    code, out, err = run_cli("explain", run_dir, "--user", "R1", "--item", ds.item_ids[item],
                             "--prompt", "C-7")
    assert code == 0, err
    assert f"explanation: user 1 likes item {item} (C-7)" in out
    assert f"reference (the user's review, SIMULATED): user 1 likes item {item} (C-1)" in out


def test_report_reprints_saved_tables(run_cli, run_dir, tmp_path):
    assert run_cli("evaluate", run_dir, "--quiet", "--tasks", "direct")[0] == 0
    code, out, _ = run_cli("report", run_dir, "--split", "test")
    assert code == 0 and "Direct recommendation" in out
    code, out, _ = run_cli("report", run_dir, "--markdown", "--split", "test")
    assert out.startswith("# Evaluation: test-pop on clitiny (test split)")
    code, _, err = run_cli("report", tmp_path)
    assert code == 2 and "no saved reports" in err
