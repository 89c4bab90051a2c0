"""Fixtures of the prompt tests: the real Beauty split and T5 tokenizer (skipped when
../shared is absent), and a tiny hand-made dataset with reviews (SIMULATED)."""

from __future__ import annotations

import pytest

from mfmrec.data import RawDataset, load_dataset, write_dataset
from mfmrec.models.vip5.prompts import load_tokenizer


@pytest.fixture(scope="session")
def beauty(shared, tmp_path_factory):
    """Amazon Beauty (P5 split) imported once per session (about 2 s)."""
    from mfmrec.data.importers.p5 import import_p5

    src = shared / "data" / "amazon" / "beauty"
    if not src.is_dir():
        pytest.skip(f"{src} not found")
    out = tmp_path_factory.mktemp("prompts") / "beauty"
    write_dataset(import_p5(src), out, seed=2022)
    return load_dataset(out)


@pytest.fixture(scope="session")
def t5_tokenizer(shared):
    path = shared / "models" / "t5-small-tokenizer"
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    return load_tokenizer(path)


TINY_SEQUENCES = [
    [0, 1, 2, 3, 4],
    [5, 6, 7, 8],
    [1, 3, 5, 7, 9, 11],
    [10, 11, 0, 2],
    [4, 6, 8, 10, 12],
    [12, 13, 14, 0],
]
TINY_TITLES = ["red lipstick", "blue eyeliner", None, "rose perfume", "nail polish",
               "face cream", "hair oil", "lip balm", "eye shadow", "hand lotion",
               "body wash", "sun screen", "night serum", "clay mask", "toner"]


def tiny_raw() -> RawDataset:
    """6 users, 15 items, one review per interaction (SIMULATED text)."""
    reviews = {c: [] for c in ("user", "item", "rating", "summary", "text", "explanation",
                               "feature", "reviewer_name", "time")}
    for u, seq in enumerate(TINY_SEQUENCES):
        for pos, item in enumerate(seq):
            reviews["user"].append(u)
            reviews["item"].append(item)
            reviews["rating"].append(float(1 + (u + pos) % 5))
            reviews["summary"].append(f"nice item number {item}" if pos % 3 else "")
            reviews["text"].append(f"i liked it a lot {item}")
            reviews["explanation"].append(f"the colour is great for {item}")
            reviews["feature"].append("colour" if pos % 2 == 0 else None)
            reviews["reviewer_name"].append("Ann Lee" if u == 0 else None)
            reviews["time"].append(1000 * u + pos)
    return RawDataset(
        name="tiny", user_ids=[f"U{u}" for u in range(len(TINY_SEQUENCES))],
        item_ids=[f"I{i}" for i in range(len(TINY_TITLES))], sequences=TINY_SEQUENCES,
        user_names=["Ann Lee", None, "Bo", None, None, "Cy"], item_titles=TINY_TITLES,
        reviews=reviews, simulated=True)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("prompts") / "tiny"
    write_dataset(tiny_raw(), out, seed=0, indexing="random", num_negatives=4)
    return load_dataset(out)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny, tmp_path_factory):
    """A SentencePiece tokenizer trained offline on the tiny dataset's prompts."""
    from mfmrec.models.vip5.prompts import prepare_tokenizer

    out = tmp_path_factory.mktemp("prompts") / "tiny-tokenizer"
    return prepare_tokenizer(None, tiny, out, vocab_size=600)
