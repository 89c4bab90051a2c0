"""`mfmrec recommend RUN --all-users`: the Parquet export equals `--user`, user by user."""

from __future__ import annotations

import math

import pyarrow.parquet as pq
import pytest

from mfmrec.data import load_dataset


def _printed_items(out: str) -> list[str]:
    """The `item id` column of the table `mfmrec recommend --user` prints."""
    rows = [line.split("│") for line in out.splitlines() if line.startswith("│")]
    return [cells[3].strip() for cells in rows if cells[1].strip().isdigit()]


def _export_equals_single_user_lists(run_cli, run, tmp_path, k: int, *flags: str):
    out = tmp_path / "recs.parquet"
    code, printed, err = run_cli("recommend", run, "--all-users", "--k", k, "--out", out,
                                 "--batch-size", "5", "--quiet", *flags)
    assert code == 0, err
    assert f"wrote {out}" in printed.replace("\n", "")
    table = pq.read_table(out)
    assert table.column_names == ["user", "user_index", "rank", "item", "item_id", "score"]
    rows = table.to_pylist()
    ds = load_dataset(_dataset_of(run))
    assert len(rows) == ds.num_users * k
    for u in range(ds.num_users):
        mine = [r for r in rows if r["user_index"] == u]
        assert [r["rank"] for r in mine] == list(range(1, k + 1))
        assert {r["user"] for r in mine} == {ds.user_ids[u]}
        code, printed, err = run_cli("recommend", run, "--user", ds.user_ids[u], "--k", k,
                                     *flags)
        assert code == 0, err
        assert [r["item_id"] for r in mine] == _printed_items(printed), u
        assert all(ds.item_ids[r["item"]] == r["item_id"] for r in mine)
    return table


def _dataset_of(run) -> str:
    import json

    return json.loads((run / "run.json").read_text())["dataset"]


@pytest.mark.slow
def test_sasrec_export_matches_recommend_user(run_cli, sasrec_run, tmp_path):
    table = _export_equals_single_user_lists(run_cli, sasrec_run, tmp_path, 5)
    rows = table.to_pylist()
    ds = load_dataset(_dataset_of(sasrec_run))
    for u in range(ds.num_users):  # scores: real, descending, seen items excluded
        scores = [r["score"] for r in rows if r["user_index"] == u]
        assert scores == sorted(scores, reverse=True) and all(math.isfinite(s) for s in scores)
        assert not {r["item"] for r in rows if r["user_index"] == u} & set(ds.sequences[u])
    meta = table.schema.metadata
    assert meta[b"mfmrec.model"] == b"sasrec" and meta[b"mfmrec.simulated"] == b"true"
    # --include-seen keeps history items, still equal to --user --include-seen
    _export_equals_single_user_lists(run_cli, sasrec_run, tmp_path, 3, "--include-seen")


@pytest.mark.slow
def test_vip5_export_matches_recommend_user_with_nan_scores(run_cli, vip5_run, tmp_path):
    table = _export_equals_single_user_lists(run_cli, vip5_run, tmp_path, 4)
    assert all(math.isnan(s) for s in table.column("score").to_pylist())
    assert b"beam search" in table.schema.metadata[b"mfmrec.score"]


def test_user_and_all_users_are_exclusive(run_cli, tmp_path):
    for args, word in ((["--user", "u1", "--all-users", "--out", tmp_path / "r.parquet"],
                        "mutually exclusive"), ([], "--all-users"),
                       (["--all-users"], "--out"), (["--user", "u1", "--out", "x.parquet"],
                                                    "--out")):
        code, _, err = run_cli("recommend", tmp_path / "no-run", *args)
        assert code == 2 and word in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r.parquet").exists()


@pytest.mark.slow
def test_bad_out_is_one_line_and_writes_nothing(run_cli, sasrec_run, tmp_path):
    code, _, err = run_cli("recommend", sasrec_run, "--all-users", "--out", tmp_path / "r.csv")
    assert code == 2 and "--out" in err and "parquet" in err
    assert list(tmp_path.iterdir()) == []


def test_recommend_all_in_process_equals_recommend_top_k(tmp_path):
    """The fast check of the library function on an untrained tiny SASRec (the CLI's
    equality on trained runs is in the slow tier)."""
    import torch

    from mfmrec.config import build
    from mfmrec.data.raw import RawDataset
    from mfmrec.data.writer import write_dataset
    from mfmrec.evaluation.evaluator import recommend_top_k
    from mfmrec.models import registry
    from mfmrec.pipelines.batch import recommend_all
    from mfmrec.training.runs import LoadedRun

    seqs = [[(u * 3 + t) % 15 for t in range(5)] for u in range(9)]
    raw = RawDataset(name="walk", user_ids=[f"u{u}" for u in range(9)],
                     item_ids=[f"i{i}" for i in range(15)], sequences=seqs,
                     provenance={"source": "simulated walk"}, simulated=True)
    ds = load_dataset(write_dataset(raw, tmp_path / "data", seed=0, num_negatives=3))
    entry = registry.get("sasrec")
    torch.manual_seed(0)
    model = entry.builder(build(entry.config_cls, {"hidden": 8, "inner": 16, "max_len": 6}),
                          ds).eval()
    run = LoadedRun(model=model, dataset=ds, config=None, run_dir=tmp_path / "run")
    out = recommend_all(run, 4, tmp_path / "recs.parquet", batch_size=4, quiet=True)
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == 9 * 4
    for u in range(ds.num_users):
        want = recommend_top_k(model, torch.tensor([u]),
                               [torch.as_tensor(ds.sequences[u], dtype=torch.long)], 4)[0]
        assert [r["item"] for r in rows if r["user_index"] == u] == want.tolist(), u
