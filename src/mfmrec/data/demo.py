"""The embedded demo dataset: SIMULATED shoppers buying home goods whose pictures are drawn
by code.

Every item has a category and a made-up brand, both named in its title, and a colour and
a surface pattern that appear ONLY in its picture. Every user has latent tastes: one or
two favourite colours, one or two favourite categories and a favourite pattern. A user's
next item is drawn from a softmax over utilities

    u(i) = 2.5 [colour liked] + 2.0 [category liked] + 0.8 [pattern liked]
           + popularity(i) + 1.2 [i completes a matching set with the previous item]

over the items the user has not bought yet, so more than half of the taste signal can
only be seen in the pixels; matching sets (same colour, another category) make the order
of purchases learnable. Each purchase gets a templated review whose rating grows with the
match between item and taste; no text field ever names an image-only attribute. The
ground truth (item colours and patterns, user tastes) is written to ``simulation/`` for
analysis only: no model should read it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mfmrec.data.demo_images import PALETTE, PATTERNS, write_images
from mfmrec.data.raw import RawDataset
from mfmrec.data.writer import write_dataset
from mfmrec.errors import ConfigError

GENERATOR_VERSION = 1
NAME = "mfmrec-demo"

# category -> (noun phrase used in titles, features a review can talk about)
CATEGORIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "mug": ("ceramic mug", ("handle", "glaze", "rim")),
    "lamp": ("table lamp", ("lampshade", "base", "switch")),
    "vase": ("flower vase", ("neck", "glaze", "weight")),
    "cushion": ("sofa cushion", ("filling", "fabric", "seams")),
    "scarf": ("knitted scarf", ("wool", "length", "fringe")),
    "bowl": ("serving bowl", ("rim", "depth", "finish")),
    "clock": ("wall clock", ("dial", "hands", "ticking")),
    "bottle": ("water bottle", ("lid", "grip", "seal")),
}
BRANDS = ("Lumora", "Kessa", "Varnik", "Odello", "Tamsy", "Quillo", "Nordvik", "Basalto",
          "Fenwyn", "Zephra")
ADJECTIVES = ("classic", "modern", "compact", "deluxe", "handmade", "rustic", "minimalist",
              "vintage", "everyday", "premium")
FIRST_NAMES = ("Alva", "Bento", "Cira", "Dovin", "Elsa", "Faro", "Gwen", "Hollis", "Ines",
               "Joral", "Kaia", "Lenno", "Mira", "Nilo", "Oona", "Pavel", "Quin", "Rosa",
               "Soren", "Tilde", "Ugo", "Vesna", "Wren", "Xavi", "Yara", "Zeno")
WEIGHTS = {"colour": 2.5, "category": 2.0, "pattern": 0.8, "complement": 1.2,
           "popularity_sd": 0.6}
COMPLEMENTS = 3  # matching-set partners per item
START_TIME = 1_672_531_200  # 2023-01-01 UTC; timestamps only need to increase

HEADLINES = {
    5: ("Absolutely love it", "Perfect for my home", "Five stars from me"),
    4: ("Really nice", "Very happy with it", "A good buy"),
    3: ("It is okay", "Decent but not special", "Average"),
    2: ("Not quite for me", "A bit disappointing", "Expected more"),
    1: ("Disappointed", "Would not buy again", "Not for me at all"),
}
EXPLANATIONS = {
    "pos": ("the {f} is lovely", "I really like the {f}", "great {f}",
            "the {f} is exactly what I hoped for"),
    "neg": ("the {f} is disappointing", "not a fan of the {f}", "the {f} could be better",
            "the {f} is not my taste"),
    "neu": ("the {f} is fine", "the {f} is okay for the price", "nothing special about the {f}"),
}
OPENINGS = ("Bought this {n} for my flat.", "Got this {n} as a gift.",
            "Ordered this {n} for everyday use.", "Picked up this {n} on a whim.")
CLOSINGS = {5: "Highly recommend.", 4: "Would recommend.", 3: "It does the job.",
            2: "Probably will not buy again.", 1: "Sending it back."}


def _check(num_users: int, num_items: int, min_len: int, max_len: int, image_size: int) -> None:
    max_titles = len(CATEGORIES) * len(BRANDS) * len(ADJECTIVES)
    if num_users < 1:
        raise ConfigError(f"num_users: must be >= 1, got {num_users}")
    if min_len < 3:
        raise ConfigError(f"min_len: must be >= 3 (train + valid + test), got {min_len}")
    if max_len < min_len:
        raise ConfigError(f"max_len: must be >= min_len ({min_len}), got {max_len}")
    if not max_len + 100 <= num_items <= max_titles:
        raise ConfigError(f"num_items: must lie in [max_len + 100, {max_titles}] so 99 "
                          f"negatives exist and titles stay unique, got {num_items}")
    if not 16 <= image_size <= 512:
        raise ConfigError(f"image_size: must lie in [16, 512], got {image_size}")


def _balanced(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """``n`` labels in ``0..k-1``, as equal in count as possible, in random order."""
    return rng.permutation(np.resize(np.arange(k), n))


def _make_items(rng: np.random.Generator, n: int) -> dict:
    cats = list(CATEGORIES)
    category = _balanced(rng, n, len(cats))
    colour = _balanced(rng, n, len(PALETTE))  # drawn independently of the category
    pattern = _balanced(rng, n, len(PATTERNS))
    brand = np.zeros(n, dtype=np.int64)
    adjective = np.zeros(n, dtype=np.int64)
    for c in range(len(cats)):  # unique (brand, adjective) within a category: unique titles
        members = np.flatnonzero(category == c)
        combos = rng.choice(len(BRANDS) * len(ADJECTIVES), size=len(members), replace=False)
        brand[members], adjective[members] = np.divmod(combos, len(ADJECTIVES))
    popularity = rng.normal(0.0, WEIGHTS["popularity_sd"], size=n)
    complements = np.zeros((n, n), dtype=bool)  # (I, I): j completes a set with i
    for i in range(n):
        pool = np.flatnonzero((colour == colour[i]) & (category != category[i]))
        picks = rng.choice(pool, size=min(COMPLEMENTS, len(pool)), replace=False)
        complements[i, picks] = True
    titles = [f"{BRANDS[b]} {ADJECTIVES[a]} {CATEGORIES[cats[c]][0]}"
              for b, a, c in zip(brand, adjective, category, strict=True)]
    return {"category": category, "colour": colour, "pattern": pattern, "brand": brand,
            "popularity": popularity, "complements": complements, "titles": titles}


def _favourites(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """(n, k) bool: each row likes one or two of ``k`` options."""
    fav = np.zeros((n, k), dtype=bool)
    for u in range(n):
        fav[u, rng.choice(k, size=int(rng.integers(1, 3)), replace=False)] = True
    return fav


def _make_users(rng: np.random.Generator, n: int) -> dict:
    names = [f"{FIRST_NAMES[a]} {chr(ord('A') + b)}."
             for a, b in zip(rng.integers(0, len(FIRST_NAMES), n), rng.integers(0, 26, n),
                             strict=True)]
    return {"colours": _favourites(rng, n, len(PALETTE)),
            "categories": _favourites(rng, n, len(CATEGORIES)),
            "pattern": rng.integers(0, len(PATTERNS), size=n), "names": names}


def _matches(items: dict, users: dict) -> dict[str, np.ndarray]:
    """(U, I) bool per latent taste: does item i show what user u likes?"""
    return {"colour": users["colours"][:, items["colour"]],
            "category": users["categories"][:, items["category"]],
            "pattern": users["pattern"][:, None] == items["pattern"][None, :]}


def _simulate(rng: np.random.Generator, items: dict, users: dict, lengths: np.ndarray):
    match = _matches(items, users)
    base = sum(WEIGHTS[k] * match[k] for k in ("colour", "category", "pattern"))
    base = base + items["popularity"][None, :]  # (U, I)
    num_users = base.shape[0]
    rows = np.arange(num_users)
    bought = np.zeros_like(base, dtype=bool)
    seqs = np.zeros((num_users, int(lengths.max())), dtype=np.int64)  # (U, T)
    for t in range(seqs.shape[1]):
        util = base.copy()
        if t:
            util += WEIGHTS["complement"] * items["complements"][seqs[:, t - 1]]
        util[bought] = -np.inf
        choice = np.argmax(util + rng.gumbel(size=util.shape), axis=1)  # Gumbel-max = softmax
        seqs[:, t] = choice
        bought[rows, choice] = True
    return [seqs[u, :n].tolist() for u, n in enumerate(lengths)], match


def _timestamps(rng: np.random.Generator, lengths: np.ndarray) -> list[list[int]]:
    out = []
    for n in lengths:
        start = START_TIME + int(rng.integers(0, 180 * 86_400))
        gaps = rng.integers(3_600, 21 * 86_400, size=int(n))
        out.append((start + np.cumsum(gaps)).tolist())
    return out


def _aspect(rng: np.random.Generator, rating: int, hits: dict[str, bool], feature: str):
    """Pick what the review talks about so its tone agrees with the rating."""
    tone = "pos" if rating >= 4 else "neg" if rating <= 2 else "neu"
    options = [(feature, tone, 2.0)]
    for name, weight in (("colour", 2.0), ("pattern", 1.0)):
        if tone == "neu":
            options.append((name, "pos" if hits[name] else "neg", weight))
        elif hits[name] == (tone == "pos"):
            options.append((name, tone, weight))
    w = np.array([o[2] for o in options])
    word, polarity, _ = options[int(rng.choice(len(options), p=w / w.sum()))]
    return word, polarity


def _reviews(rng: np.random.Generator, items: dict, users: dict, sequences, match, times):
    cats = list(CATEGORIES)
    cols = {c: [] for c in ("user", "item", "rating", "summary", "text", "explanation",
                            "feature", "reviewer_name", "time")}
    for u, seq in enumerate(sequences):
        for pos, i in enumerate(seq):
            hits = {k: bool(match[k][u, i]) for k in match}
            score = (1.6 + 1.5 * hits["colour"] + 1.0 * hits["category"]
                     + 0.5 * hits["pattern"] + 0.3 * items["popularity"][i] + rng.normal(0, 0.6))
            rating = int(np.clip(np.rint(score), 1, 5))
            noun, features = CATEGORIES[cats[items["category"][i]]]
            word, polarity = _aspect(rng, rating, hits, features[rng.integers(len(features))])
            templates = EXPLANATIONS[polarity]
            explanation = templates[rng.integers(len(templates))].format(f=word)
            opening = OPENINGS[rng.integers(len(OPENINGS))].format(n=noun)
            cols["user"].append(u)
            cols["item"].append(i)
            cols["rating"].append(float(rating))
            cols["summary"].append(HEADLINES[rating][rng.integers(3)])
            cols["text"].append(f"{opening} {explanation[0].upper()}{explanation[1:]}. "
                                f"{CLOSINGS[rating]}")
            cols["explanation"].append(explanation)
            cols["feature"].append(word)
            cols["reviewer_name"].append(users["names"][u])
            cols["time"].append(times[u][pos])
    return cols


def _simulation_meta(options: dict) -> dict:
    return {
        "simulated": "users, purchases and reviews are simulated; item pictures are drawn "
                     "by code; nothing here was observed from real people",
        "generator": f"mfmrec.data.demo v{GENERATOR_VERSION}",
        "options": options,
        "items": "category and brand appear in the title; colour (one of "
                 f"{', '.join(PALETTE)}) and pattern (one of {', '.join(PATTERNS)}) appear "
                 "only in the picture; popularity ~ Normal(0, "
                 f"{WEIGHTS['popularity_sd']}); each item has {COMPLEMENTS} matching-set "
                 "partners of the same colour and another category",
        "users": "1-2 favourite colours, 1-2 favourite categories, 1 favourite pattern",
        "choice": "next item ~ softmax over unbought items of colour*[colour liked] + "
                  "category*[category liked] + pattern*[pattern liked] + popularity + "
                  "complement*[partner of the previous item]",
        "weights": dict(WEIGHTS),
        "reviews": "one per purchase; rating = clip(round(1.6 + 1.5 colour + 1.0 category "
                   "+ 0.5 pattern + 0.3 popularity + Normal(0, 0.6)), 1, 5); the "
                   "explanation talks about the colour, the pattern or a category feature "
                   "in a tone that agrees with the rating, never naming the colour or pattern",
        "truth": "simulation/items.parquet and simulation/users.parquet hold the latent "
                 "attributes and tastes, for analysis only; models must not read them",
    }


def _truth_tables(items: dict, users: dict, item_ids: list[str], user_ids: list[str]):
    cats, colours = list(CATEGORIES), list(PALETTE)
    item_table = pa.table({
        "item": pa.array(np.arange(len(item_ids), dtype=np.int32)),
        "item_id": pa.array(item_ids, pa.string()),
        "category": pa.array([cats[c] for c in items["category"]], pa.string()),
        "colour": pa.array([colours[c] for c in items["colour"]], pa.string()),
        "pattern": pa.array([PATTERNS[p] for p in items["pattern"]], pa.string()),
        "popularity": pa.array(items["popularity"], pa.float64()),
        "complements": pa.array([np.flatnonzero(r).tolist() for r in items["complements"]],
                                pa.list_(pa.int32())),
    })
    user_table = pa.table({
        "user": pa.array(np.arange(len(user_ids), dtype=np.int32)),
        "user_id": pa.array(user_ids, pa.string()),
        "colours": pa.array([[colours[c] for c in np.flatnonzero(r)] for r in users["colours"]],
                            pa.list_(pa.string())),
        "categories": pa.array([[cats[c] for c in np.flatnonzero(r)]
                                for r in users["categories"]], pa.list_(pa.string())),
        "pattern": pa.array([PATTERNS[p] for p in users["pattern"]], pa.string()),
    })
    return item_table, user_table


def read_truth(data_dir: str | Path) -> tuple[pa.Table, pa.Table]:
    """The demo's hidden ground truth: (items, users) tables, for analysis and tests."""
    folder = Path(data_dir) / "simulation"
    return pq.read_table(folder / "items.parquet"), pq.read_table(folder / "users.parquet")


def build_demo(
    out: Path, seed: int = 0, *, num_users: int = 500, num_items: int = 200,
    min_len: int = 5, max_len: int = 15, image_size: int = 64, force: bool = False,
) -> Path:
    """Generate the demo dataset into ``out`` (atomically) and return ``out``; an existing
    dataset there is replaced only with ``force`` (see :func:`write_dataset`).

    Deterministic in ``seed``: the same seed gives byte-identical parquet and PNG files.
    """
    _check(num_users, num_items, min_len, max_len, image_size)
    # independent streams (keyed apart from the writer's own) so one part never shifts another
    rng_items, rng_users, rng_seq, rng_time, rng_rev = (
        np.random.default_rng([seed, 0xDE30, k]) for k in range(5))
    items = _make_items(rng_items, num_items)
    users = _make_users(rng_users, num_users)
    lengths = rng_seq.integers(min_len, max_len + 1, size=num_users)
    sequences, match = _simulate(rng_seq, items, users, lengths)
    times = _timestamps(rng_time, lengths)
    item_ids = [f"item{i:04d}" for i in range(num_items)]
    user_ids = [f"user{u:04d}" for u in range(num_users)]
    cats = list(CATEGORIES)
    options = {"seed": seed, "num_users": num_users, "num_items": num_items,
               "min_len": min_len, "max_len": max_len, "image_size": image_size}
    raw = RawDataset(
        name=NAME, user_ids=user_ids, item_ids=item_ids, sequences=sequences,
        user_names=users["names"], item_titles=items["titles"],
        item_images=[f"images/{i}.png" for i in item_ids],
        item_attributes=[{"category": cats[c], "brand": BRANDS[b]}
                         for c, b in zip(items["category"], items["brand"], strict=True)],
        timestamps=times,
        reviews=_reviews(rng_rev, items, users, sequences, match, times),
        provenance={"source": "generated by mfmrec.data.demo", "generator_version":
                    GENERATOR_VERSION, "options": options},
        simulated=True, extra_meta={"simulation": _simulation_meta(options)},
    )
    item_truth, user_truth = _truth_tables(items, users, item_ids, user_ids)
    colours = list(PALETTE)

    def assets(tmp: Path) -> None:
        write_images(tmp / "images", item_ids, [cats[c] for c in items["category"]],
                     [colours[c] for c in items["colour"]],
                     [PATTERNS[p] for p in items["pattern"]], image_size, seed)
        (tmp / "simulation").mkdir()
        pq.write_table(item_truth, tmp / "simulation" / "items.parquet", compression="zstd")
        pq.write_table(user_truth, tmp / "simulation" / "users.parquet", compression="zstd")

    return write_dataset(raw, out, seed=seed, indexing="random", assets=assets, force=force)
