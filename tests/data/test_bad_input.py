"""Broken input of every kind: one line naming the file and the fault, exit 2, no output."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

REVIEW = {"reviewerID": "u1", "asin": "i1", "overall": 5.0, "unixReviewTime": 1,
          "summary": "s", "reviewText": "t"}


def _p5(src: Path, seq: str = "1 1 2\n", maps: str | None = None) -> Path:
    src.mkdir()
    (src / "sequential_data.txt").write_text(seq)
    if maps is None:
        maps = json.dumps({"id2user": {"1": "U1"}, "id2item": {"1": "A", "2": "B"}})
    (src / "datamaps.json").write_text(maps)
    return src


def _reviews(src: Path, lines: list[str], gz: bool = False) -> Path:
    src.mkdir()
    path = src / ("r.json.gz" if gz else "r.json")
    data = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def _recbole(src: Path, header: str, rows: list[str]) -> Path:
    src.mkdir()
    (src / "src.inter").write_text("\n".join([header, *rows]) + "\n")
    return src


def _corrupt_gzip(src: Path) -> Path:
    path = _reviews(src, [json.dumps(REVIEW)] * 50, gz=True)
    data = bytearray(path.read_bytes())
    data[20:40] = b"\xff" * 20  # damage the deflate stream
    path.write_bytes(bytes(data))
    return path


def _truncated_gzip(src: Path) -> Path:
    path = _reviews(src, [json.dumps(REVIEW)] * 50, gz=True)
    path.write_bytes(path.read_bytes()[:-12])
    return path


AMAZON = ("data", "import", "amazon")
P5 = ("data", "import", "p5")
RECBOLE = ("data", "import", "recbole")

# id -> (build the broken source, command, what the message must contain)
CASES = {
    "p5-malformed-line": (lambda s: _p5(s, "1 1 2\n1 x 2\n"), P5,
                          ["sequential_data.txt:2", "integers"]),
    "p5-missing-datamaps": (lambda s: (_p5(s), (s / "datamaps.json").unlink(), s)[-1], P5,
                            ["datamaps.json", "missing file"]),
    "p5-id-absent-from-datamaps": (lambda s: _p5(s, "1 1 7\n"), P5,
                                   ["sequential_data.txt:1", "item id 7 absent"]),
    "p5-empty-dataset": (lambda s: _p5(s, "\n"), P5, ["sequential_data.txt", "empty dataset"]),
    "p5-datamaps-not-json": (lambda s: _p5(s, maps="{'id2user':"), P5,
                             ["datamaps.json", "invalid JSON"]),
    "missing-source": (lambda s: s / "nothing.json", AMAZON, ["nothing.json", "not found"]),
    "amazon-corrupt-gzip": (_corrupt_gzip, AMAZON, ["r.json.gz", "corrupt or truncated gzip"]),
    "amazon-truncated-gzip": (_truncated_gzip, AMAZON, ["r.json.gz", "truncated gzip"]),
    "amazon-invalid-json-line": (lambda s: _reviews(s, [json.dumps(REVIEW), '{"asin": ']),
                                 AMAZON, ["r.json:2", "invalid JSON"]),
    "amazon-wrong-type": (lambda s: _reviews(s, [json.dumps({**REVIEW, "overall": "five"})]),
                          AMAZON, ["r.json:1", "'overall'", "expected int/float"]),
    "amazon-missing-field": (lambda s: _reviews(s, ['{"reviewerID": "u", "overall": 1}']),
                             AMAZON, ["r.json:1", "field 'asin' missing"]),
    "amazon-not-utf8": (lambda s: (_reviews(s, []), (s / "r.json").write_bytes(
        json.dumps(REVIEW).encode() + b"\n\xff\xfe\n"), s / "r.json")[-1], AMAZON,
                        ["r.json:2", "not UTF-8"]),
    "amazon-empty-after-kcore": (lambda s: _reviews(s, [json.dumps(REVIEW)]), AMAZON,
                                 ["r.json", "empty dataset after 5-core"]),
    "recbole-wrong-header-type": (lambda s: _recbole(s, "user_id:token\titem_id:token\t"
                                                     "timestamp:token", ["u\ti\t1"]),
                                  RECBOLE, ["src.inter:1", "'timestamp': type must be float"]),
    "recbole-bad-float": (lambda s: _recbole(s, "user_id:token\titem_id:token\t"
                                             "timestamp:float", ["u\ti\t1", "u\tj\tnoon"]),
                          RECBOLE, ["src.inter:3", "'timestamp': expected float"]),
    "recbole-wrong-field-count": (lambda s: _recbole(s, "user_id:token\titem_id:token",
                                                     ["u\ti\textra"]),
                                  RECBOLE, ["src.inter:2", "expected 2 tab-separated fields"]),
    "recbole-no-inter-file": (lambda s: (s.mkdir(), s)[-1], RECBOLE,
                              ["src", "expected one <name>.inter file"]),
    "too-few-items-for-negatives": (lambda s: _p5(s, "1 1 2 1\n"), P5,
                                    ["need 99 negatives", "--negatives"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(case, tmp_path, run_cli):
    build, command, expected = CASES[case]
    source = build(tmp_path / "src")
    outs = tmp_path / "outs"
    code, stdout, stderr = run_cli(*command, source, "--out", outs / "ds")
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for text in expected:
        assert text in lines[0], lines[0]
    assert "Traceback" not in stderr and stdout == ""
    assert not (outs / "ds").exists()
    assert not outs.exists() or list(outs.iterdir()) == []  # no temp dirs beside it


@pytest.mark.parametrize("args, expected", [
    (("--indexing", "alphabetical"), "--indexing: expected one of random, sequential"),
    (("--negatives", "-1"), "--negatives: expected a non-negative integer"),
])
def test_bad_options(args, expected, tmp_path, run_cli):
    src = _p5(tmp_path / "src")
    code, _, stderr = run_cli(*P5, src, "--out", tmp_path / "o", *args)
    assert code == 2 and stderr.strip() == f"error: {expected}, got {args[1]}"
    assert not (tmp_path / "o").exists()


def test_unwritable_out_is_one_line(tmp_path, run_cli):
    src = _p5(tmp_path / "src", "1 1 2\n", json.dumps(
        {"id2user": {"1": "U"}, "id2item": {str(i): f"A{i}" for i in range(1, 120)}}))
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    code, _, stderr = run_cli(*P5, src, "--out", blocker / "ds")
    assert code == 2 and stderr.startswith(f"error: {blocker}: ")
    assert len(stderr.strip().splitlines()) == 1
    assert blocker.read_text() == "not a folder"


def test_stats_of_a_folder_that_is_not_a_dataset(tmp_path, run_cli):
    code, _, stderr = run_cli("data", "stats", tmp_path)
    assert code == 2 and "dataset.json: missing; not a prepared mfmrec dataset" in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_a_real_subprocess_prints_no_traceback(tmp_path):
    source = _reviews(tmp_path / "src", [json.dumps(REVIEW), "not json at all"])
    exe = Path(sys.executable).with_name("mfmrec")
    proc = subprocess.run([str(exe), "data", "import", "amazon", str(source), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {source}:2: invalid JSON (Expecting value, column 1)"
    assert not (tmp_path / "out").exists()
