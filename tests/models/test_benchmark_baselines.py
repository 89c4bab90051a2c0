"""The helpers of the baseline benchmark scripts (benchmarks/peter_trivial.py,
benchmarks/peer_recbole.py, benchmarks/vbpr_fashion.py) on the tiny walk dataset.

The trivial explanation baseline itself is a library model, tested in
test_most_frequent.py."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_runs  # noqa: E402
import peer_recbole  # noqa: E402
import peter_trivial  # noqa: E402
import vbpr_fashion  # noqa: E402

from mfmrec.training.config import load_run_config  # noqa: E402


def test_verdict_names_the_lost_metrics():
    base = {f"{m} {k}": 1.0 for m in ("standard", "p5") for k in ("BLEU-4", "ROUGE-L")}
    rows = {"item-mode": base, "global-mode": base,
            "peter": {**{k: 2.0 for k in base}, "p5 BLEU-4": 0.5}}
    assert "does NOT beat" in peter_trivial.verdict(rows, "peter")
    assert "p5 BLEU-4" in peter_trivial.verdict(rows, "peter")


def test_export_atomic_keeps_the_order(walk, tmp_path):
    folder = peer_recbole.export_atomic(walk, tmp_path, "walk")
    lines = (folder / "walk.inter").read_text().splitlines()
    assert lines[0] == "user_id:token\titem_id:token\ttimestamp:float"
    first = [line.split("\t") for line in lines[1:] if line.startswith("0\t")]
    assert [int(r[1]) for r in first] == [int(i) for i in walk.sequences[0]]
    assert [int(r[2]) for r in first] == list(range(len(walk.sequences[0])))
    assert len(lines) - 1 == sum(len(s) for s in walk.sequences)


def test_recbole_settings_mirror_the_configs(tmp_path):
    cfg = peer_recbole.run_config("bpr-mf", 3, ["train.lr=0.01"])
    bpr = peer_recbole.recbole_settings("bpr-mf", cfg, tmp_path, "x")
    assert (bpr["epochs"], bpr["learning_rate"], bpr["embedding_size"]) == (3, 0.01, 64)
    assert bpr["train_neg_sample_args"]["sample_num"] == 1
    assert bpr["stopping_step"] > bpr["epochs"]
    sas = peer_recbole.recbole_settings("sasrec", peer_recbole.run_config("sasrec", 2, []),
                                        tmp_path, "x")
    assert sas["loss_type"] == "CE" and sas["train_neg_sample_args"] is None
    assert sas["MAX_ITEM_LIST_LENGTH"] == 50


def test_numpy2_aliases_are_restored():
    fake = SimpleNamespace(float64=np.float64, complex128=np.complex128, str_=np.str_)
    peer_recbole._numpy2_aliases(fake)  # a stand-in: the real numpy stays untouched here
    assert fake.float_ is np.float64 and fake.unicode_ is np.str_
    assert fake.complex_ is np.complex128


def test_vbpr_and_bpr_get_the_same_settings(tmp_path):
    args = argparse.Namespace(epochs=4, lr=0.002, seed=5, weight_decay=0.0, set=[])
    over = vbpr_fashion.shared_overrides(args)
    configs = [load_run_config(bench_runs.CONFIGS / f, over)
               for f in vbpr_fashion.MODELS.values()]
    assert len({(c.train.epochs, c.train.lr, c.train.seed, c.train.batch_size,
                 c.train.weight_decay) for c in configs}) == 1


def test_peer_mfmrec_side_compares_under_recboles_history_rule(walk_dir, tmp_path):
    cfg = peer_recbole.run_config("sasrec", 1, [
        "model.hidden=8", "model.inner=16", "model.layers=1", "train.batch_size=16"])
    rows = peer_recbole.mfmrec_side("sasrec", cfg, walk_dir, tmp_path)
    kept = rows["mfmrec full ranking (history kept, as RecBole)"]
    excluded = rows["mfmrec full ranking (history excluded, reference)"]
    assert set(rows) == {"mfmrec full ranking (history kept, as RecBole)",
                         "mfmrec full ranking (history excluded, reference)",
                         "mfmrec 100 stored candidates"}
    # masking the history removes competitors only, so no metric can drop
    assert all(excluded[m] >= kept[m] - 1e-12 for m in peer_recbole.METRICS)
    theirs = {"recbole 1.2.1 full ranking": {m: 0.5 for m in peer_recbole.METRICS}}
    text = peer_recbole.table({**rows, **theirs})
    ratio = next(x for x in text.splitlines() if x.startswith("| ratio"))
    assert f"{kept['HR@5'] / 0.5:.3f}" in ratio  # the compared row is the matched one


def test_vbpr_rank_breakdown_counts_outranking_items_by_shared_attribute():
    import torch

    kinds = [("A", "r"), ("A", "g"), ("A", "r"), ("B", "r"), ("B", "g")]
    data = SimpleNamespace(
        attributes=[{"articleType": t, "baseColour": c} for t, c in kinds],
        targets=lambda split: (np.array([0, 1]), [np.array([0]), np.array([1])],
                               np.array([2, 3])))
    scores = torch.tensor([[9.0, 5, 3, 4, 1], [1, 9, 2, 0, 3]])
    model = SimpleNamespace(eval=lambda: None, score_items=lambda users, hist: scores[users])
    out = vbpr_fashion.rank_breakdown(model, data)
    # user 0 (target 2: A, r): 1 (A, g) and 3 (B, r) outrank it; item 0 is history
    # user 1 (target 3: B, r): 0 and 2 (A, r) and 4 (B, g) outrank it
    assert out["median rank"] == 2.5
    assert out["above: same articleType+baseColour"] == 0.0
    assert out["above: same articleType only"] == 1.0
    assert out["above: same baseColour only"] == 1.5
    assert out["above: neither"] == 0.0
    assert out["top-10 share of its articleType"] == 0.5
