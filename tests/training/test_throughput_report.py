"""Tokens, padding share, FLOP/s and MFU in the efficiency report."""

from __future__ import annotations

import json

import pytest
import torch
from train_fixtures import launch_cpu

from mfmrec.data import load_dataset
from mfmrec.models.base import BatchCost
from mfmrec.models.sasrec import SASRecConfig
from mfmrec.training import trainer as trainer_mod
from mfmrec.training.config import RunConfig, TrainConfig
from mfmrec.training.efficiency import CostMeter, efficiency_report, rows_of, throughput
from mfmrec.training.peak import MEASURED, Peak
from mfmrec.training.runs import build_model, train
from mfmrec.training.trainer import Trainer, process_state

PEAK = Peak(1000.0, "datasheet", "bf16", "a GPU")


def _meter(*costs: BatchCost | None) -> CostMeter:
    meter = CostMeter()
    for cost in costs:
        meter.add(cost)
    return meter


def test_throughput_golden():
    meter = _meter(BatchCost(6, 10, 100.0), BatchCost(4, 10, 60.0))
    out = throughput(meter, 2.0, PEAK, processes=2)
    assert out["tokens"] == {"real": 10, "padded": 20, "padding_share": 0.5}
    assert out["real_tokens_per_s"] == 5.0 and out["training_flops"] == 160.0
    assert out["achieved_flops_per_s"] == 80.0 and out["peak_flops_per_s"] == 2000.0
    assert out["mfu"] == pytest.approx(0.04) and "mfu_note" not in out
    assert (out["peak_source"], out["peak_precision"]) == ("datasheet", "bf16")


@pytest.mark.parametrize("costs,note", [
    ((BatchCost(6, 10, 100.0), BatchCost(4, 10)), "FLOPs counted for 1 of 2"),
    ((BatchCost(6, 10), BatchCost(4, 10)), "counts no FLOPs"),
    ((None, None), "counts no tokens"),
    ((), "no micro-batches"),
])
def test_no_mfu_without_flops_of_every_batch(costs, note):
    out = throughput(_meter(*costs), 2.0, PEAK)
    assert out["mfu"] is None and out["achieved_flops_per_s"] is None
    assert note in out["mfu_note"]
    assert (out["tokens"] is None) == (not costs or costs[0] is None)


def test_rows_show_tokens_and_mfu_and_old_reports_still_render():
    memory = {"peak_memory_bytes": 2**20, "memory_kind": "cpu_rss_sampled"}
    report = efficiency_report(torch.nn.Linear(2, 2), train_seconds=2.0, epochs=1.0,
                               samples=4, steps=1, memory=memory, peak=PEAK,
                               costs=_meter(BatchCost(6, 10, 100.0), BatchCost(4, 10, 60.0)))
    rows = dict(rows_of(report))
    assert rows["real tokens (padding share)"] == "10 of 20 (50.0% padding)"
    assert rows["MFU"] == "8.00%" and rows["achieved FLOP/s"] == "80 FLOP/s"
    assert rows["peak FLOP/s (datasheet, bf16)"] == "1,000 FLOP/s"
    bare = dict(rows_of(efficiency_report(torch.nn.Linear(2, 2), train_seconds=2.0,
                                          epochs=1.0, samples=4, steps=1, memory=memory)))
    assert bare["MFU"] == "n/a (no micro-batches trained in this session)"
    old = {k: v for k, v in report.items() if k not in throughput(CostMeter(), 1.0, None)}
    old.pop("mfu_note", None)
    assert "MFU" not in dict(rows_of(old))


def test_a_model_without_tokens_reports_none_and_measures_no_peak(
        tiny_data, make_config, tmp_path, monkeypatch):
    def refuse(*args):
        raise AssertionError("no FLOPs: no peak to look up")

    monkeypatch.setattr(trainer_mod, "peak_flops", refuse)
    result = train(make_config(train={"epochs": 1}), tiny_data, tmp_path / "run", quiet=True)
    eff = json.loads((tmp_path / "run/efficiency.json").read_text())
    assert eff == json.loads(json.dumps(result.efficiency))
    assert eff["tokens"] is None and eff["mfu"] is None and eff["peak_flops_per_s"] is None
    assert "counts no tokens" in eff["mfu_note"]
    assert "| MFU | n/a (the model counts no tokens" in (tmp_path / "run/report.md").read_text()


def _sasrec_config(**train) -> RunConfig:
    model = SASRecConfig(hidden=16, inner=32, heads=2, max_len=6, hidden_dropout=0.0)
    return RunConfig("sasrec", model, TrainConfig(
        **{"epochs": 1, "batch_size": 8, "lr": 0.01, "precision": "no", "log_every": 1,
           **train}))


def test_a_sasrec_run_reports_padding_tokens_per_second_and_mfu(tiny_data, tmp_path):
    result = train(_sasrec_config(), tiny_data, tmp_path / "run", quiet=True)
    eff = result.efficiency
    assert 0 < eff["tokens"]["padding_share"] < 1  # prefixes of different lengths
    assert eff["tokens"]["real"] < eff["tokens"]["padded"]
    assert eff["real_tokens_per_s"] > 0 and eff["achieved_flops_per_s"] > 0
    assert 0 < eff["mfu"] <= 1 and eff["peak_source"] in (MEASURED, f"{MEASURED} (cached)")
    assert eff["peak_precision"] == "fp32" and "mfu_note" not in eff


def _worker(config, data_dir, out):
    rank = process_state().process_index
    dataset = load_dataset(data_dir)
    trainer = Trainer(build_model(config, dataset), dataset, config, out / "run", quiet=True)
    result = trainer.fit()
    (out / f"rank{rank}.json").write_text(json.dumps(
        {"local": trainer.costs.values, "report": result.efficiency}))


@pytest.mark.slow
def test_two_processes_sum_their_tokens_and_flops(tiny_data, tmp_path):
    launch_cpu(_worker, (_sasrec_config(batch_size=4), tiny_data, tmp_path), processes=2)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    report = ranks[0]["report"]
    assert report["tokens"]["real"] == sum(r["local"]["real"] for r in ranks)
    assert report["training_flops"] == pytest.approx(sum(r["local"]["flops"] for r in ranks))
    assert report["processes"] == 2 and report["peak_flops_per_s"] > 0 and report["mfu"] > 0
    assert ranks[1]["report"]["mfu"] is None  # the peak is the main process's business
