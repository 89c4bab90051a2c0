"""benchmarks/train_throughput.py: the summary arithmetic on hand-made runs (both tuning
modes), the one-line errors, and end to end at toy size (HEAD against the working tree;
one mode, since each run is a fresh process that spends most of its time on imports)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import throughput_worker  # noqa: E402
import train_throughput as bench  # noqa: E402


def _run(samples_per_s: float, tokens_per_s: float, peak: int, report: dict | None = None,
         padding: float = 0.5) -> dict:
    return {"samples_per_s": samples_per_s, "real_tokens_per_s": tokens_per_s,
            "padding_share": padding, "peak_memory_bytes": peak, "memory_kind": "cuda",
            "report": report or {}, "epoch_end_in_window": False}


FLOPS = {"achieved_flops_per_s": 2e12, "train_seconds": 10.0, "tokens": {"real": 1e6},
         "peak_flops_per_s": 1e15, "mfu": 0.002, "padding_share": 0.1}  # 2e7 FLOPs per token


def test_summary_ratios_best_round_and_mfu_estimate():
    runs = {"adapters": {"before": [_run(10, 1000, 100), _run(12, 1200, 90)],
                         "after": [_run(18, 2400, 80, FLOPS, padding=0.1)]},
            "full": {"before": [_run(8, 800, 200)], "after": [_run(9, 900, 160)]}}
    out = bench.summarise(runs)
    a = out["modes"]["adapters"]
    assert a["before"]["samples_per_s"] == 12 and a["before"]["peak_memory_bytes"] == 100
    assert a["before"]["rounds_samples_per_s"] == [10, 12]
    ratios = a["after_over_before"]
    assert ratios["samples_per_s"] == pytest.approx(1.5)
    assert ratios["real_tokens_per_s"] == pytest.approx(2.0)
    assert ratios["padding_share"] == pytest.approx(0.2)
    assert ratios["peak_memory_bytes"] == pytest.approx(0.8)
    # FLOPs per real token (2e7) x real tokens/s / peak FLOP/s, for both sides
    assert a["before"]["mfu_est"] == pytest.approx(2e7 * 1200 / 1e15)
    assert a["after"]["mfu_est"] == pytest.approx(2e7 * 2400 / 1e15)
    assert a["after"]["mfu_reported"] == 0.002 and a["before"]["mfu_reported"] is None
    assert out["modes"]["full"]["after"]["mfu_est"] is None  # no FLOPs in that report
    assert ratios["mfu_est"] == pytest.approx(2.0)
    vs = out["adapters_vs_full"]
    assert vs["before"]["time_per_sample"] == pytest.approx(8 / 12)
    assert vs["after"]["peak_memory"] == pytest.approx(80 / 160)
    text = bench.tables(out, {"before": "HEAD", "after": "tree"})
    assert "| samples/s | 12.00 | 18.00 | 1.500 |" in text
    assert "| MFU (est.) | n/a | n/a | n/a |" in text  # the full mode's row
    assert "mfu 0.002" in text and "| before | 0.667 | 0.500 |" in text


def test_moving_average_and_curve_gap():
    assert bench.moving_average([1, 3, 5, 7], 2) == [1, 2, 4, 6]
    gap = bench.curve_gap([2.0, 2.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0], 2)
    assert gap["mean_abs_gap"] == pytest.approx(1.0)
    assert gap["relative_gap"] == pytest.approx(1.0) and gap["steps"] == 4


def test_plot_writes_a_png(tmp_path):
    path = tmp_path / "curves.png"
    bench.plot_curves({"with": [3.0, 2.0, 1.5], "without": [3.0, 2.2, 1.7]}, 2, path, "t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_batch_tokens_counts_real_and_padded():
    batch = {"attention_mask": torch.tensor([[1, 1, 1], [1, 0, 0]]),
             "labels": torch.tensor([[5, 1], [1, -100]])}
    got = throughput_worker.batch_tokens(batch, 2)
    assert (got["enc_real"], got["enc_padded"], got["dec_real"], got["dec_padded"]) == \
        (4, 6, 3, 4)
    assert throughput_worker.token_totals([got, got])["real"] == 14


def test_bad_revision_and_missing_shared_are_one_line(monkeypatch, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--before", "no-such-revision-xyz", "--tokenizer", str(tmp_path)])
    assert "--before no-such-revision-xyz: not a revision" in str(exc.value)
    assert "\n" not in str(exc.value)
    import mfmrec.paths

    monkeypatch.setattr(mfmrec.paths, "shared_path", lambda *a, **k: None)
    with pytest.raises(SystemExit) as exc:
        bench.main(["--tokenizer", str(tmp_path), "--cache", str(tmp_path)])
    assert "../shared/data/amazon/beauty not found" in str(exc.value)
    with pytest.raises(SystemExit):  # argparse: usage on stderr, exit 2
        bench.main(["--after-set", "nodot", "--tokenizer", str(tmp_path)])
    assert "expected SECTION.KEY=VALUE" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--before-src", str(tmp_path), "--tokenizer", str(tmp_path)])
    assert "expected a src folder holding mfmrec/" in capsys.readouterr().err


@pytest.mark.slow
def test_head_against_working_tree_end_to_end(shared, tmp_path, capsys):
    out = tmp_path / "out.json"
    bench.main(["--before", "HEAD", "--shape", "tiny", "--users", "20", "--steps", "2",
                "--warmup", "1", "--max-length", "96", "--batch-size", "4",
                "--modes", "adapters", "--cache", str(tmp_path / "cache"), "--json", str(out)])
    printed = capsys.readouterr().out
    assert "adapters:" in printed and "| samples/s |" in printed
    result = json.loads(out.read_text())
    m = result["summary"]["modes"]["adapters"]
    for side in ("before", "after"):
        r = m[side]
        assert r["steps"] == 2 and r["warmup"] == 1 and r["samples"] == 8
        assert r["seconds"] > 0 and r["samples_per_s"] > 0
        assert 0 < r["tokens"]["real"] < r["tokens"]["padded"]
        assert 0 < r["padding_share"] < 1 and r["peak_memory_bytes"] > 0
        assert r["collate_calls"] >= 3 and len(r["losses"]) == 4
    assert "src/mfmrec" in m["before"]["mfmrec_file"]
    assert m["before"]["mfmrec_file"] != m["after"]["mfmrec_file"]
    # the same code, data and seed on both sides: the same batches
    assert m["before"]["tokens"] == m["after"]["tokens"]
    assert m["after_over_before"]["samples_per_s"] > 0
    assert m["after_over_before"]["padding_share"] == pytest.approx(1.0)
    assert m["after_over_before"]["peak_memory_bytes"] > 0
    assert result["summary"]["adapters_vs_full"] == {}  # one mode: nothing to compare
