"""The MicroLens importer on a small sample in the published layout (SIMULATED rows)."""

from __future__ import annotations

import random

import pytest
from PIL import Image

from mfmrec.data import load_dataset
from mfmrec.data.importers.microlens import import_microlens
from mfmrec.errors import DataError

T0 = 1_650_000_000_000  # ms


def _folder(tmp_path, n_users: int = 30, n_items: int = 40, tsv: bool = False,
            covers: str = "covers"):
    """MicroLens-50k-style folder; items 0..n_items-1, covers for the even ones."""
    rng = random.Random(0)
    src = tmp_path / "MicroLens-50k"
    src.mkdir()
    rows = [(f"{u + 1}", f"{rng.randrange(n_items) + 1}", T0 + rng.randrange(10**9))
            for u in range(n_users) for _ in range(rng.randint(5, 9))]
    if tsv:
        by_user: dict[str, list[tuple[int, str]]] = {}
        for u, i, t in rows:
            by_user.setdefault(u, []).append((t, i))
        (src / "MicroLens-50k_pairs.tsv").write_text("".join(
            f"{u}\t{' '.join(i for _, i in sorted(s))}\n" for u, s in by_user.items()))
    else:
        (src / "MicroLens-50k_pairs.csv").write_text(
            "user,item,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows))
    (src / "MicroLens-50k_titles.csv").write_text("item,title\n" + "".join(
        f'{i + 1},"video {i + 1}, a title with a comma"\n' for i in range(n_items)))
    (src / covers).mkdir()
    for i in range(0, n_items, 2):
        Image.new("RGB", (8, 8), (i * 5 % 256, 40, 90)).save(src / covers / f"{i + 1}.jpg")
    return src, rows


def test_counts_order_titles_and_covers(tmp_path):
    src, rows = _folder(tmp_path)
    raw = import_microlens(src)
    assert raw.name == "microlens-50k"
    assert len(raw.user_ids) == len({u for u, _, _ in rows})
    assert len(raw.item_ids) == len({i for _, i, _ in rows})
    assert sum(map(len, raw.sequences)) == len(rows)
    u = raw.user_ids.index("1")
    own = sorted((t, i) for uu, i, t in rows if uu == "1")
    assert [raw.item_ids[i] for i in raw.sequences[u]] == [i for _, i in own]
    assert raw.timestamps[u] == [t // 1000 for t, _ in own]
    j = raw.item_ids.index("3")
    assert raw.item_titles[j] == "video 3, a title with a comma"
    linked = [(x, p) for x, p in zip(raw.item_ids, raw.item_images, strict=True) if p]
    assert linked and all(int(x) % 2 == 1 and p.endswith(f"/{x}.jpg") for x, p in linked)
    assert all(p is None for x, p in zip(raw.item_ids, raw.item_images, strict=True)
               if int(x) % 2 == 0)


def test_tsv_layout_and_the_covers_folder_name(tmp_path):
    src, rows = _folder(tmp_path, tsv=True, covers="MicroLens-50k_covers")
    raw = import_microlens(src)
    assert sum(map(len, raw.sequences)) == len(rows)
    assert raw.timestamps is None
    assert any(raw.item_images)


def test_through_the_cli(tmp_path, run_cli):
    src, rows = _folder(tmp_path)
    code, out, err = run_cli("data", "import", "microlens", src, "--negatives", 5,
                             "--out", tmp_path / "ds")
    assert code == 0, err
    ds = load_dataset(tmp_path / "ds")
    assert ds.stats()["interactions"] == len(rows)
    assert ds.num_items == len({i for _, i, _ in rows})
    images = ds.items.column("image").to_pylist()
    assert sum(x is not None for x in images) == sum(int(x) % 2 == 1 for x in ds.item_ids)


@pytest.mark.parametrize(("break_it", "expected"), [
    (lambda s: (s / "MicroLens-50k_pairs.csv").write_text("user,item,timestamp\n1,2,soon\n"),
     "MicroLens-50k_pairs.csv:2: timestamp 'soon' is not an integer"),
    (lambda s: (s / "MicroLens-50k_pairs.csv").write_text("u,i,t\n1,2,3\n"),
     "MicroLens-50k_pairs.csv:1: expected the header user,item,timestamp"),
    (lambda s: (s / "MicroLens-50k_pairs.csv").write_text("user,item,timestamp\n1,2\n"),
     "MicroLens-50k_pairs.csv:2: expected 3 fields"),
    (lambda s: (s / "MicroLens-50k_pairs.csv").unlink(), "no <name>_pairs.csv"),
    (lambda s: (s / "MicroLens-50k_titles.csv").write_text("item,title\n,x\n"),
     "MicroLens-50k_titles.csv:2: empty item"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, run_cli, break_it, expected):
    src, _ = _folder(tmp_path)
    break_it(src)
    code, out, err = run_cli("data", "import", "microlens", src, "--out", tmp_path / "ds")
    assert code == 2
    assert expected in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "ds").exists()


def test_not_a_directory(tmp_path):
    with pytest.raises(DataError, match="not a directory"):
        import_microlens(tmp_path / "nothing")
