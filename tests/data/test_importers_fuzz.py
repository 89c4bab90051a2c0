"""Property: any input either imports or fails with a one-line MfmrecError, writing nothing.

Inputs are generated (hypothesis): near-valid records of each format with fields
replaced by wrong types, odd tokens, missing keys and garbage lines. Every example runs
the importer and ``write_dataset`` into a fresh output folder.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfmrec.data import write_dataset
from mfmrec.data.importers.amazon import import_amazon
from mfmrec.data.importers.microlens import import_microlens
from mfmrec.data.importers.p5 import import_p5
from mfmrec.data.importers.recbole import import_recbole
from mfmrec.errors import MfmrecError

FAST = settings(max_examples=int(__import__("os").environ.get("FUZZ_N", 25)), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW = settings(max_examples=int(__import__("os").environ.get("FUZZ_N", 50)), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

TOKEN = st.sampled_from(["u1", "u2", "i1", "i2", "1", "2", "3", "", " ", "x y", "é", "1e3"])
ODD = st.one_of(TOKEN, st.none(), st.booleans(), st.integers(-3, 10**20),
                st.floats(allow_nan=True, allow_infinity=True), st.lists(TOKEN, max_size=2),
                st.dictionaries(TOKEN, TOKEN, max_size=2))
GARBAGE = st.text(alphabet='ab1 ,\t"{}[]:\\\'-.\x00é\r', max_size=30)


def check(read, tmp: Path) -> None:
    """Import then write; a failure must be one line and leave no output folder."""
    out = tmp / "out"
    try:
        write_dataset(read(), out, num_negatives=2)
    except MfmrecError as exc:
        message = str(exc)
        assert message and "\n" not in message, message
        assert not out.exists()


def _case(tmp_root: Path) -> Path:
    path = Path(tempfile.mkdtemp(dir=tmp_root))
    return path


@st.composite
def amazon_lines(draw) -> list[str]:
    """Review lines of the 2014/2018 or the 2023 schema, some fields broken."""
    keys_2014 = {"reviewerID": TOKEN, "asin": TOKEN, "overall": st.integers(1, 5),
                 "unixReviewTime": st.integers(0, 100), "summary": TOKEN,
                 "reviewText": TOKEN, "reviewerName": TOKEN}
    keys_2023 = {"user_id": TOKEN, "parent_asin": TOKEN, "rating": st.floats(1, 5),
                 "timestamp": st.integers(0, 10**6), "title": TOKEN, "text": TOKEN}
    keys = draw(st.sampled_from([keys_2014, keys_2023]))
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(GARBAGE))
            continue
        row = {k: draw(v) for k, v in keys.items()}
        if draw(st.booleans()):
            key = draw(st.sampled_from(sorted(keys)))
            row[key] = draw(ODD)
        if draw(st.integers(0, 5)) == 0:
            row.pop(draw(st.sampled_from(sorted(keys))))
        lines.append(json.dumps(row))
    return lines


@FAST
@given(lines=amazon_lines(), kcore=st.integers(0, 2))
def test_amazon_any_input(tmp_path_factory, lines, kcore):
    tmp = _case(tmp_path_factory.getbasetemp())
    path = tmp / "r.json"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    check(lambda: import_amazon(path, kcore=kcore), tmp)
    shutil.rmtree(tmp)


@FAST
@given(data=st.binary(max_size=200))
def test_amazon_any_bytes(tmp_path_factory, data):
    tmp = _case(tmp_path_factory.getbasetemp())
    path = tmp / "r.json.gz"
    path.write_bytes(data)
    check(lambda: import_amazon(path, kcore=0), tmp)
    shutil.rmtree(tmp)


@pytest.mark.slow
@SLOW
@given(seq=st.lists(st.lists(st.sampled_from(["1", "2", "3", "x", "-1", "", "07"]),
                             max_size=5), max_size=5),
       maps=st.one_of(st.dictionaries(st.sampled_from(["id2user", "id2item", "x"]),
                                      st.one_of(st.dictionaries(TOKEN, TOKEN, max_size=3),
                                                ODD), max_size=3), GARBAGE))
def test_p5_any_input(tmp_path_factory, seq, maps):
    tmp = _case(tmp_path_factory.getbasetemp())
    src = tmp / "p5"
    src.mkdir()
    (src / "sequential_data.txt").write_text("".join(" ".join(s) + "\n" for s in seq))
    (src / "datamaps.json").write_text(maps if isinstance(maps, str) else json.dumps(maps))
    check(lambda: import_p5(src), tmp)
    shutil.rmtree(tmp)


@pytest.mark.slow
@SLOW
@given(header=st.lists(st.sampled_from(["user_id:token", "item_id:token", "rating:float",
                                        "timestamp:float", "tag:token_seq", "x:float_seq",
                                        "item_id:float", "bad", "a:b"]), max_size=4),
       rows=st.lists(st.lists(st.sampled_from(["1", "2", "a b", "", "nan", "1e400", "-3",
                                               "x"]), max_size=4), max_size=8))
def test_recbole_any_input(tmp_path_factory, header, rows):
    tmp = _case(tmp_path_factory.getbasetemp())
    src = tmp / "rb"
    src.mkdir()
    (src / "rb.inter").write_text("\n".join(["\t".join(header)] + ["\t".join(r) for r in rows])
                                  + "\n")
    check(lambda: import_recbole(src), tmp)
    shutil.rmtree(tmp)


@FAST
@given(rows=st.lists(st.one_of(st.lists(st.sampled_from(["1", "2", "3", "", "x", "1e3",
                                                          "-5", '"q', "99999999999999"]),
                                        max_size=4).map(",".join), GARBAGE), max_size=10),
       header=st.sampled_from(["user,item,timestamp", "user,item", "USER,ITEM,TIMESTAMP", ""]),
       titles=st.one_of(st.none(), st.lists(GARBAGE, max_size=4)))
def test_microlens_any_input(tmp_path_factory, rows, header, titles):
    tmp = _case(tmp_path_factory.getbasetemp())
    src = tmp / "ml"
    src.mkdir()
    (src / "M_pairs.csv").write_text("\n".join([header, *rows]) + "\n")
    if titles is not None:
        (src / "M_titles.csv").write_text("\n".join(["item,title", *titles]) + "\n")
    check(lambda: import_microlens(src), tmp)
    shutil.rmtree(tmp)
