"""The most-frequent-explanation baseline: item and global mode, registry, bad datasets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mfmrec.config import build
from mfmrec.data import RawDataset, load_dataset, write_dataset
from mfmrec.errors import DataError
from mfmrec.evaluation.config import EvalConfig
from mfmrec.evaluation.evaluator import evaluate
from mfmrec.models import registry
from mfmrec.models.base import EXPLANATION
from mfmrec.models.most_frequent import MostFrequentExplanation, MostFrequentExplanationConfig

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "peter_trivial.py"


def p5_scores(model, dataset) -> dict[str, float]:
    result = evaluate(model, dataset, EvalConfig(tasks=[EXPLANATION]), progress=False)
    return result["tasks"][EXPLANATION]["prompts"]["-"]["p5"]


def test_item_mode_copies_the_items_explanation(walk, walk_text):
    explanation_of, _ = walk_text
    baseline = MostFrequentExplanation(walk, per_item=True)
    requests = [{"user": 0, "item": i} for i in range(walk.num_items)]
    assert baseline.explain(requests) == [explanation_of(i) for i in range(walk.num_items)]
    # every explanation is the item's, so the walk's test reviews are matched exactly
    scores = p5_scores(baseline, walk)
    assert scores["BLEU-4"] == 100.0 and scores["ROUGE-L"] == 100.0


def test_global_mode_answers_one_sentence(walk):
    baseline = MostFrequentExplanation(walk, per_item=False)
    out = baseline.explain([{"user": 0, "item": i} for i in range(walk.num_items)])
    assert len(set(out)) == 1 and out[0] == baseline.fallback
    assert baseline.label == "global-mode"
    assert p5_scores(baseline, walk)["ROUGE-L"] < 100.0


def test_registered_as_a_model_without_training(walk):
    entry = registry.get("most-frequent-explanation")
    assert entry.config_cls is MostFrequentExplanationConfig
    model = entry.builder(build(MostFrequentExplanationConfig, {"per_item": False}), walk)
    assert isinstance(model, MostFrequentExplanation) and model.label == "global-mode"
    assert model.name == "most-frequent-explanation" and model.tasks == {EXPLANATION}


def test_a_dataset_without_reviews_is_a_one_line_error(tmp_path):
    raw = RawDataset(name="no-reviews", user_ids=["u"], item_ids=["a", "b", "c", "d"],
                     sequences=[[0, 1, 2]])
    dataset = load_dataset(write_dataset(raw, tmp_path / "ds", seed=0, num_negatives=1))
    with pytest.raises(DataError, match="no reviews.parquet") as err:
        MostFrequentExplanation(dataset, per_item=True)
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_the_benchmark_script_still_runs():
    proc = subprocess.run([sys.executable, str(BENCHMARK), "--help"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "--models" in proc.stdout and "--skip-existing" in proc.stdout
