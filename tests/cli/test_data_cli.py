"""``mfmrec data ...`` commands end to end on tiny inputs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mfmrec.data import load_dataset

HEADER = "user_id:token\titem_id:token\ttimestamp:float"


def _ring(n: int = 120, per_user: int = 5) -> list[dict]:
    return [{"reviewerID": f"u{u}", "asin": f"i{(u + k) % n}", "overall": 4.0,
             "unixReviewTime": 100 * k, "summary": "Fine", "reviewerName": f"N{u}",
             "reviewText": "The strap holds. The strap is the right length for a bass."}
            for u in range(n) for k in range(per_user)]


@pytest.fixture
def tiny_p5(tmp_path):
    src = tmp_path / "p5"
    src.mkdir()
    (src / "sequential_data.txt").write_text("1 1 2 3\n2 2 3\n")
    (src / "datamaps.json").write_text(json.dumps({
        "id2user": {"1": "UA", "2": "UB"}, "id2item": {str(i): f"A{i}" for i in range(1, 9)}}))
    return src


def test_import_p5_and_stats_json(tiny_p5, tmp_path, run_cli):
    out = tmp_path / "ds"
    code, stdout, _ = run_cli("data", "import", "p5", tiny_p5, "--out", out,
                              "--negatives", "3", "--seed", "5", "--indexing", "sequential")
    assert code == 0
    assert stdout.strip() == f"wrote {out}: 2 users, 8 items, 5 interactions, 0 reviews"
    code, stdout, _ = run_cli("data", "stats", out, "--json")
    assert code == 0 and len(stdout.strip().splitlines()) == 1
    stats = json.loads(stdout)
    assert {k: stats[k] for k in ("users", "items", "interactions", "reviews")} == {
        "users": 2, "items": 8, "interactions": 5, "reviews": 0}
    assert stats["indexing"] == "sequential"
    meta = load_dataset(out).meta
    assert (meta["seed"], meta["num_negatives"]) == (5, 3)


def test_stats_table(tiny_p5, tmp_path, run_cli):
    run_cli("data", "import", "p5", tiny_p5, "--out", tmp_path / "ds", "--negatives", "3")
    code, stdout, _ = run_cli("data", "stats", tmp_path / "ds")
    assert code == 0
    assert "interactions" in stdout and "avg_seq_len" in stdout and "2.5" in stdout


def test_import_amazon_with_meta_and_options(tmp_path, run_cli):
    reviews = tmp_path / "reviews_Tiny_5.json"
    reviews.write_text("".join(json.dumps(r) + "\n" for r in _ring()))
    meta = tmp_path / "meta.json"
    meta.write_text("{'asin': 'i0', 'title': 'Bass strap', 'imUrl': 'http://x/0.jpg'}\n")
    out = tmp_path / "ds"
    code, stdout, stderr = run_cli("data", "import", "amazon", reviews, "--meta", meta,
                                   "--out", out, "--kcore", "5", "--negatives", "20")
    assert code == 0, stderr
    assert stdout.strip().endswith("120 users, 120 items, 600 interactions, 600 reviews")
    ds = load_dataset(out)
    i0 = ds.item_index["i0"]
    assert ds.titles[i0] == "Bass strap"
    assert ds.attributes[i0] == {"image_url": "http://x/0.jpg"}
    assert ds.meta["name"] == "tiny_5"
    assert ds.meta["provenance"]["kcore"] == 5
    assert ds.meta["explanations"]["method"] == "mfmrec.aspect-sentence/v1"
    # bass, holds, length, strap tie on document frequency: alphabetical order decides;
    # "The strap holds." is too short (3 words) to be an explanation
    assert set(ds.reviews.column("feature").to_pylist()) == {"bass"}
    assert set(ds.reviews.column("explanation").to_pylist()) == {
        "The strap is the right length for a bass."}
    assert ds.candidates("test").items.shape == (120, 21)
    # --kcore 6 removes everyone: a clean one-line error
    code, _, stderr = run_cli("data", "import", "amazon", reviews, "--out", tmp_path / "e",
                              "--kcore", "6")
    assert code == 2 and "empty dataset after 6-core filtering" in stderr


def test_import_recbole(tmp_path, run_cli):
    src = tmp_path / "ml"
    src.mkdir()
    rows = [f"u{u}\ti{(u + k) % 30}\t{k}" for u in range(30) for k in range(4)]
    (src / "ml.inter").write_text("\n".join([HEADER, *rows]) + "\n")
    (src / "ml.item").write_text("item_id:token\ttitle:token_seq\ni3\tthe third one\n")
    out = tmp_path / "ds"
    code, stdout, stderr = run_cli("data", "import", "recbole", src, "--out", out,
                                   "--negatives", "10", "--name", "ml-tiny")
    assert code == 0, stderr
    ds = load_dataset(out)
    assert (ds.num_users, ds.num_items, ds.name) == (30, 30, "ml-tiny")
    assert ds.titles[ds.item_index["i3"]] == "the third one"
    assert ds.sequences[0].tolist() == [ds.item_index[f"i{k}"] for k in range(4)]


def test_data_demo_command(tmp_path, run_cli):
    out = tmp_path / "demo"
    code, stdout, stderr = run_cli("data", "demo", "--out", out, "--seed", "3")
    assert code == 0, stderr
    assert stdout.startswith(f"wrote {out}: ")
    ds = load_dataset(out)
    assert ds.simulated is True and ds.num_users > 0 and ds.has_reviews


def test_demo_command_passes_out_and_seed(tmp_path, run_cli, monkeypatch):
    import mfmrec.data.demo as demo
    from mfmrec.data import RawDataset, write_dataset

    calls = []

    def fake_build(out, seed=0, force=False):
        calls.append((out, seed))
        raw = RawDataset(name="fake", user_ids=["u"], item_ids=["a", "b", "c", "d"],
                         sequences=[[0, 1, 2]], simulated=True)
        return write_dataset(raw, out, seed=seed, num_negatives=1)

    monkeypatch.setattr(demo, "build_demo", fake_build)
    code, stdout, _ = run_cli("data", "demo", "--out", tmp_path / "d", "--seed", "11")
    assert code == 0 and calls == [(tmp_path / "d", 11)]
    assert stdout.strip() == f"wrote {tmp_path / 'd'}: 1 users, 4 items, 3 interactions, 0 reviews"


@pytest.mark.parametrize("command", [
    ("data",), ("data", "import"), ("data", "import", "p5"), ("data", "import", "amazon"),
    ("data", "import", "recbole"), ("data", "import", "products"),
    ("data", "import", "microlens"), ("data", "demo"), ("data", "stats"), ("data", "images"),
])
def test_help_reads_like_documentation(command, run_cli):
    code, stdout, _ = run_cli(*command, "--help")
    assert code == 0 and "Usage:" in stdout
    if command[-1] in ("p5", "amazon", "recbole", "products", "microlens"):
        for option in ("--out", "--seed", "--indexing", "--negatives"):
            assert option in stdout


STYLES_HEADER = b"id,articleType,baseColour,productDisplayName\n"
# id -> (styles.csv bytes, or None for no file; what the one error line must contain)
BAD_STYLES = {
    "missing-file": (None, ["styles.csv", "styles file not found"]),
    "not-utf8": (STYLES_HEADER + b"1,Tshirts,Red,Red \xff\xfe Shirt\n",
                 ["styles.csv:2", "not UTF-8"]),
    "runaway-quote": (STYLES_HEADER + b'1,Tshirts,Red,"' + b"x" * 140_000 + b"\n",
                      ["styles.csv", "malformed CSV", "field larger than field limit"]),
    "short-row": (STYLES_HEADER + b"1,Tshirts,Red\n", ["styles.csv:2", "wrong number of fields"]),
    "missing-columns": (b"id,name\n1,Shirt\n", ["styles.csv:1", "missing columns"]),
}


def _catalogue(root, styles: bytes | None):
    root.mkdir()
    (root / "photos").mkdir()
    if styles is not None:
        (root / "styles.csv").write_bytes(styles)
    return root / "styles.csv", root / "photos"


@pytest.mark.parametrize("case", list(BAD_STYLES))
def test_import_products_bad_input_is_one_line_and_writes_nothing(case, tmp_path, run_cli):
    content, expected = BAD_STYLES[case]
    styles, photos = _catalogue(tmp_path / "src", content)
    outs = tmp_path / "outs"
    code, stdout, stderr = run_cli("data", "import", "products", styles, "--images", photos,
                                   "--out", outs / "ds", "--users", 4)
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for text in expected:
        assert text in lines[0], lines[0]
    assert "Traceback" not in stderr and stdout == ""
    assert not outs.exists() or list(outs.iterdir()) == []


@pytest.mark.parametrize("case", ["missing-file", "not-utf8"])
def test_import_products_bad_input_in_a_real_process(case, tmp_path):
    styles, photos = _catalogue(tmp_path / "src", BAD_STYLES[case][0])
    proc = subprocess.run([sys.executable, "-m", "mfmrec.cli.main", "data", "import",
                           "products", str(styles), "--images", str(photos), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: {styles}") and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
