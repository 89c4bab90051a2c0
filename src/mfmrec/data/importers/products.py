"""Import a product-photo catalogue (``styles.csv`` + ``images/<id>.jpg``) with SIMULATED users.

The catalogue (e.g. ``shared/data/fashion-products``: 3,221 real photos) has no user
behaviour at all, so users, their sequences and their reviews are drawn from the
generative model below, and the dataset is marked ``simulated`` everywhere.

Generative model (the point: preferences depend on what a photo shows):

1. User ``u`` draws a colour taste ``theta_c ~ Dirichlet(2 * share_c)`` over ``baseColour``
   values and a type taste ``theta_a ~ Dirichlet(2 * share_a)`` over ``articleType``
   (``share`` = the value's share of the catalogue: frequent values are liked more often,
   every user likes a few strongly). Its length is uniform in ``[min_len, max_len]``.
2. Step ``t``: with probability 0.05 an unseen item uniformly at random (noise); otherwise
   the previous step's type again with probability 0.3 (sessions), else a type from
   ``theta_a``; then an unseen item of that type with probability proportional to
   ``(theta_c[colour] + 0.001) * popularity``, popularity ~ LogNormal(0, 0.5) per item.
3. Rating: ``clip(round(1.5 + 3.5 * (c + a) / 2 + N(0, 0.6)), 1, 5)``, ``c``/``a`` the user's
   taste for the item's colour/type relative to its favourite. A templated review
   (summary, explanation, feature word, text) follows from the rating and the aspect.

``hide_in_text`` removes the named attributes' words (every value the catalogue uses, plus
a few colour synonyms, longest first, allowing ``T-shirt``/``Tshirts`` variants) from the
titles, so that only the photo tells them; the attributes themselves stay in
``items.parquet`` for analysis, and ``dataset.json`` lists them under ``hidden_in_text``
so that no model builds text from them.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np

from mfmrec.data.raw import RawDataset
from mfmrec.errors import DataError, located

REQUIRED = ("id", "articleType", "baseColour", "productDisplayName")
HIDEABLE = ("baseColour", "articleType", "gender", "usage", "season", "subCategory",
            "masterCategory")
# colour words titles use that are not baseColour values ("Navy" for "Navy Blue", ...)
EXTRA_WORDS = {"baseColour": ("navy", "golden", "gray", "multicolour", "multicolor",
                              "multicoloured", "turquoise", "violet")}
PARAMS = {"taste_concentration": 2.0, "noise": 0.05, "repeat_type": 0.3,
          "colour_floor": 0.001, "popularity_sigma": 0.5, "rating_noise": 0.6}
FIRST = ("Anna", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hiro", "Isla", "Jonas",
         "Kavya", "Liam", "Maya", "Noah", "Olga", "Priya", "Quinn", "Rahul", "Sofia", "Tom",
         "Uma", "Victor", "Wen", "Ximena", "Yusuf", "Zoe", "Arjun", "Lea", "Marco", "Nina")
SUMMARY = {5: ("Love it", "Excellent {noun}", "Perfect"), 4: ("Nice {noun}", "Good buy"),
           3: ("Okay", "Average {noun}"), 2: ("Disappointed", "Not great"),
           1: ("Poor", "Would not buy again")}
EXPLAIN = {
    ("colour", "pos"): ("the {f} colour looks great", "love the {f} shade",
                        "the {f} is exactly as in the photo"),
    ("colour", "mid"): ("the {f} is fine but a bit plain",),
    ("colour", "neg"): ("the {f} looks duller than in the photo", "did not like the {f} colour"),
    ("type", "pos"): ("a comfortable {f} for {usage} wear", "this {f} fits well",
                      "great {f} for the price"),
    ("type", "mid"): ("an average {f}, nothing special",),
    ("type", "neg"): ("the {f} did not fit me well", "poor quality {f}"),
}
SIMULATION_MODEL = (
    "per user: colour taste ~ Dirichlet(2*catalogue share of each baseColour), type taste ~ "
    "Dirichlet(2*share of each articleType), length ~ U[min_len, max_len]; per step: w.p. "
    "0.05 a uniform unseen item, else the previous articleType w.p. 0.3 or one drawn from the "
    "type taste, then an unseen item of that type w.p. proportional to (colour taste of its "
    "baseColour + 0.001) * popularity, popularity ~ LogNormal(0, 0.5); rating = clip(round("
    "1.5 + 3.5*(relative colour taste + relative type taste)/2 + N(0, 0.6)), 1, 5); review "
    "text from templates keyed by rating and aspect (colour or article type)"
)
CLOSING = {"pos": "Would recommend it.", "mid": "It does the job.", "neg": "Sending it back."}


def read_styles(path: str | Path) -> list[dict]:
    """Rows of ``styles.csv`` as dicts; a malformed file raises a DataError naming the line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: styles file not found")
    reader = csv.DictReader(io.StringIO(_utf8(path), newline=""))
    try:
        return _style_rows(path, reader)
    except csv.Error as exc:
        raise DataError(located(path, f"malformed CSV ({exc})", reader.line_num)) from None


def _utf8(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(located(path, f"not UTF-8 ({exc.reason})", line)) from None


def _style_rows(path: Path, reader: csv.DictReader) -> list[dict]:
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise DataError(located(path, f"missing columns {missing}", 1))
    rows = []
    for row in reader:
        if None in row or any(v is None for v in row.values()):
            raise DataError(located(path, "wrong number of fields", reader.line_num))
        if not row["id"].strip():
            raise DataError(located(path, "empty id", reader.line_num))
        rows.append({k: v.strip() for k, v in row.items()})
    if not rows:
        raise DataError(f"{path}: no products")
    return rows


def _loose(value: str) -> str:
    """A regex for ``value`` tolerating spaces/hyphens inside and a plural ending."""
    chars = re.sub(r"[^a-z0-9]", "", value.lower())
    if len(chars) > 3 and chars.endswith("s") and not chars.endswith("ss"):
        chars = chars[:-1]
    body = r"[\s-]?".join(re.escape(c) for c in chars)
    return rf"(?<![a-z0-9]){body}(?:e?s)?(?![a-z0-9])"


def hide_words(titles: list[str], vocab: list[str]) -> list[str]:
    """Remove every vocabulary value (longest first) from each title, tidying spaces."""
    patterns = [re.compile(_loose(v), re.IGNORECASE)
                for v in sorted({v for v in vocab if v}, key=lambda v: (-len(v), v))]
    out = []
    for title in titles:
        for pat in patterns:
            title = pat.sub(" ", title)
        out.append(re.sub(r"\s+", " ", title).strip(" -,"))
    return out


def _dirichlet(rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    g = rng.gamma(alpha)
    if g.sum() <= 0:  # all draws underflowed for tiny alphas: fall back to the mode's value
        g = np.zeros_like(alpha)
        g[int(alpha.argmax())] = 1.0
    return g / g.sum()


def _codes(values: list[str]) -> tuple[np.ndarray, list[str]]:
    vocab = sorted(set(values))
    index = {v: i for i, v in enumerate(vocab)}
    return np.asarray([index[v] for v in values]), vocab


class Simulator:
    """Draws users' sequences and ratings from the model in the module docstring."""

    def __init__(self, colours: list[str], types: list[str], rng: np.random.Generator):
        self.rng = rng
        self.colour, colour_vocab = _codes(colours)
        self.type, type_vocab = _codes(types)
        self.colour_share = np.bincount(self.colour, minlength=len(colour_vocab)) / len(colours)
        self.type_share = np.bincount(self.type, minlength=len(type_vocab)) / len(types)
        self.by_type = [np.flatnonzero(self.type == a) for a in range(len(type_vocab))]
        self.popularity = rng.lognormal(0.0, PARAMS["popularity_sigma"], len(colours))

    def user(self, length: int) -> tuple[list[int], np.ndarray, np.ndarray]:
        """(item sequence, colour taste, type taste) of one new user."""
        k = PARAMS["taste_concentration"]
        theta_c = _dirichlet(self.rng, k * self.colour_share)
        theta_a = _dirichlet(self.rng, k * self.type_share)
        seen = np.zeros(len(self.colour), dtype=bool)
        left = np.asarray([len(c) for c in self.by_type])  # unseen items per type
        seq: list[int] = []
        prev = -1
        for _ in range(min(length, len(self.colour))):
            item = self._step(theta_c, theta_a, prev, seen, left > 0)
            seen[item] = True
            left[self.type[item]] -= 1
            seq.append(item)
            prev = int(self.type[item])
        return seq, theta_c, theta_a

    def _step(self, theta_c, theta_a, prev: int, seen: np.ndarray, open_types) -> int:
        rng = self.rng
        if rng.random() < PARAMS["noise"]:
            return int(rng.choice(np.flatnonzero(~seen)))
        if prev >= 0 and open_types[prev] and rng.random() < PARAMS["repeat_type"]:
            a = prev
        else:
            p = np.where(open_types, theta_a, 0.0)
            p = p / p.sum() if p.sum() > 0 else open_types / open_types.sum()
            a = int(rng.choice(len(p), p=p))
        cands = self.by_type[a][~seen[self.by_type[a]]]
        w = (theta_c[self.colour[cands]] + PARAMS["colour_floor"]) * self.popularity[cands]
        return int(rng.choice(cands, p=w / w.sum()))

    def rating(self, item: int, theta_c: np.ndarray, theta_a: np.ndarray) -> int:
        c = theta_c[self.colour[item]] / theta_c.max()
        a = theta_a[self.type[item]] / theta_a.max()
        noisy = 1.5 + 3.5 * (c + a) / 2 + self.rng.normal(0.0, PARAMS["rating_noise"])
        return int(np.clip(round(noisy), 1, 5))


def _noun(article_type: str) -> str:
    noun = article_type.lower()
    return noun[:-1] if noun.endswith("s") and not noun.endswith("ss") else noun


def _review(rng: np.random.Generator, row: dict, rating: int) -> dict:
    """Summary, explanation, feature word and text of one templated (simulated) review."""
    tone = "pos" if rating >= 4 else "mid" if rating == 3 else "neg"
    colour = row.get("baseColour", "").lower()
    use_colour = bool(colour) and colour != "multi" and rng.random() < 0.5
    feature = colour if use_colour else _noun(row.get("articleType") or "item")
    choices = EXPLAIN[("colour" if use_colour else "type", tone)]
    usage = (row.get("usage") or "everyday").lower()
    explanation = choices[int(rng.integers(len(choices)))].format(f=feature, usage=usage)
    summaries = SUMMARY[rating]
    summary = summaries[int(rng.integers(len(summaries)))].format(noun=_noun(
        row.get("articleType") or "item"))
    text = f"{explanation[0].upper()}{explanation[1:]}. {CLOSING[tone]}"
    return {"summary": summary, "explanation": explanation, "feature": feature, "text": text}


def _items(rows: list[dict], images: Path) -> tuple[list[dict], list[Path], int]:
    """The products whose photo exists, their photo paths, and how many were skipped."""
    kept, paths = [], []
    for row in rows:
        name = row.get("image") or f"{row['id']}.jpg"
        path = images / name
        if path.is_file():
            kept.append(row)
            paths.append(path.resolve())
    return kept, paths, len(rows) - len(kept)


def _titles(rows: list[dict], hide: tuple[str, ...]) -> tuple[list[str | None], dict]:
    titles = [row["productDisplayName"] for row in rows]
    leaks = {}
    for attr in hide:
        vocab = [row.get(attr, "") for row in rows] + list(EXTRA_WORDS.get(attr, ()))
        titles = hide_words(titles, vocab)
    for attr in hide:  # titles that still name their own value (a synonym the rule misses)
        leaks[attr] = sum(bool(row.get(attr)) and re.search(_loose(row[attr]), t, re.I)
                          is not None for row, t in zip(rows, titles, strict=True))
    return [t or None for t in titles], leaks


def _simulate(rows: list[dict], users: int, min_len: int, max_len: int, seed: int):
    rng = np.random.default_rng([seed, 101])
    sim = Simulator([r.get("baseColour") or "unknown" for r in rows],
                    [r.get("articleType") or "unknown" for r in rows], rng)
    sequences, times, names = [], [], []
    reviews: dict[str, list] = {c: [] for c in ("user", "item", "rating", "summary", "text",
                                                 "explanation", "feature", "reviewer_name",
                                                 "time")}
    start = 1451606400  # 2016-01-01, an arbitrary origin for the simulated clock
    for u in range(users):
        seq, theta_c, theta_a = sim.user(int(rng.integers(min_len, max_len + 1)))
        t0 = start + int(rng.integers(0, 2 * 365 * 86400))
        stamps = (t0 + np.cumsum(rng.integers(3600, 30 * 86400, len(seq)))).tolist()
        name = f"{FIRST[int(rng.integers(len(FIRST)))]} {chr(65 + int(rng.integers(26)))}."
        for item, ts in zip(seq, stamps, strict=True):
            rating = sim.rating(item, theta_c, theta_a)
            for key, value in _review(rng, rows[item], rating).items():
                reviews[key].append(value)
            reviews["user"].append(u)
            reviews["item"].append(item)
            reviews["rating"].append(float(rating))
            reviews["reviewer_name"].append(name)
            reviews["time"].append(ts)
        sequences.append(seq)
        times.append(stamps)
        names.append(name)
    return sequences, times, names, reviews


def import_products(styles: str | Path, images: str | Path, *, users: int = 2000,
                    seed: int = 2022, hide_in_text: tuple[str, ...] | list[str] = (),
                    min_len: int = 5, max_len: int = 20, name: str | None = None) -> RawDataset:
    """Read a product catalogue and simulate ``users`` users over it (see module docstring)."""
    images = Path(images)
    if not images.is_dir():
        raise DataError(f"--images: {images} is not a directory")
    if users < 1:
        raise DataError(f"--users: must be >= 1, got {users}")
    if not 3 <= min_len <= max_len:
        raise DataError(f"--min-len/--max-len: need 3 <= min-len <= max-len, got "
                        f"{min_len}, {max_len} (3 interactions give a train/valid/test split)")
    bad = [a for a in hide_in_text if a not in HIDEABLE]
    if bad:
        raise DataError(f"--hide-in-text: unknown attribute(s) {bad}; expected some of "
                        f"{', '.join(HIDEABLE)}")
    rows, paths, skipped = _items(read_styles(styles), images)
    if not rows:
        raise DataError(f"{images}: no photo matches a product of {styles}")
    titles, leaks = _titles(rows, tuple(hide_in_text))
    sequences, times, names, reviews = _simulate(rows, users, min_len, max_len, seed)
    attrs = [{k: v for k, v in r.items() if k not in ("id", "productDisplayName", "image") and v}
             for r in rows]
    simulation = {
        "interactions": "SIMULATED", "reviews": "SIMULATED (templated)",
        "model": SIMULATION_MODEL,
        "params": dict(PARAMS, users=users, min_len=min_len, max_len=max_len, seed=seed),
    }
    return RawDataset(
        name=name or "fashion-products-sim", user_ids=[f"sim_u{u:05d}" for u in range(users)],
        item_ids=[r["id"] for r in rows], sequences=sequences, user_names=names,
        item_titles=titles, item_images=[str(p) for p in paths], item_attributes=attrs,
        timestamps=times, reviews=reviews, simulated=True,
        provenance={"source": str(Path(styles).resolve()), "images": str(images.resolve()),
                    "importer": "products", "skipped_without_photo": skipped,
                    "items": "real products and photos; users, sequences and reviews simulated"},
        extra_meta={"simulation": simulation, "hidden_in_text": list(hide_in_text),
                    "hidden_values_left_in_titles": leaks},
    )
