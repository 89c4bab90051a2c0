"""Peak memory of the Amazon importer against the size of its input.

Each import runs in a fresh Python subprocess, which reports its own peak RSS
(``ru_maxrss``), the RSS after ``import mfmrec...`` (the interpreter, numpy and the
importer, before any data) and the wall time of ``import_amazon``. Inputs: the real
Musical Instruments 5-core file (if ``--shared`` has it) and SIMULATED files in the
same 2014 schema, written to ``--tmp`` (never into the repository): ``--scales`` times
the real file's 10,261 reviews, with Zipf-like items and, like a raw unfiltered dump,
70% of reviews by one-off users (so the 5-core keeps a minority), 1% exact repeats
and review texts of 20-120 words.

    PYTHONPATH=src python benchmarks/amazon_import_memory.py --scales 1,5,10
    # the importer before the change, same files:
    PYTHONPATH=src python benchmarks/amazon_import_memory.py --code /path/to/old/src
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
from pathlib import Path

MI = "data/amazon/musical_instruments/reviews_Musical_Instruments_5.json.gz"
REAL_REVIEWS = 10_261
_VOCABULARY = ("strap string guitar tone sound pedal cable amp neck bridge solid cheap great "
         "works fine quality price noise tuner pick bass drum mic stand case light heavy "
         "good bad sturdy bright warm clean buzz fret")
WORDS = _VOCABULARY.split()

CHILD = r"""
import json, resource, sys, time
from mfmrec.data.importers.amazon import import_amazon
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
raw = import_amazon(sys.argv[1], kcore=5)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"base_kb": base, "peak_kb": peak, "seconds": seconds,
                  "users": len(raw.user_ids), "items": len(raw.item_ids),
                  "kept": len(raw.reviews["user"]), "read": raw.provenance["reviews_read"]}))
"""


def _zipf(rng: random.Random, n: int, a: float = 1.1) -> int:
    while True:
        k = int(rng.paretovariate(a))
        if k <= n:
            return k - 1


def write_synthetic(path: Path, reviews: int, seed: int = 0) -> Path:
    """SIMULATED reviews in the 2014 schema, gzip-compressed."""
    rng = random.Random(seed)
    n_core, n_items = reviews // 25, reviews // 10
    previous: list[str] = []
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as fh:
        for r in range(reviews):
            if previous and rng.random() < 0.01:
                fh.write(rng.choice(previous))
                continue
            # 30% of reviews by a core of frequent reviewers, the rest by one-off users
            u = rng.randrange(n_core) if rng.random() < 0.3 else n_core + r
            i = _zipf(rng, n_items)
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 120)))
            row = {"reviewerID": f"A{u:013d}", "asin": f"B{i:09d}",
                   "reviewerName": f"user {u}", "helpful": [0, 0], "reviewText": text,
                   "overall": float(rng.randint(1, 5)), "summary": " ".join(text.split()[:4]),
                   "unixReviewTime": 1_300_000_000 + r * 60, "reviewTime": "01 1, 2014"}
            line = json.dumps(row) + "\n"
            previous = previous[-50:] + [line]
            fh.write(line)
    return path


def _raw_size(path: Path) -> int:
    with gzip.open(path, "rb") as fh:
        return sum(len(chunk) for chunk in iter(lambda: fh.read(1 << 20), b""))


def measure(path: Path, code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": code, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", default="1,5,10")
    ap.add_argument("--tmp", type=Path, default=Path("/tmp/mfmrec-amazon-bench"))
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] /
                    "shared")
    ap.add_argument("--code", default=str(Path(__file__).resolve().parents[1] / "src"),
                    help="PYTHONPATH of the mfmrec to measure")
    args = ap.parse_args()
    args.tmp.mkdir(parents=True, exist_ok=True)
    files = [("Musical Instruments (real)", args.shared / MI)] if (args.shared / MI).is_file() \
        else []
    for scale in (int(s) for s in args.scales.split(",")):
        path = args.tmp / f"reviews_sim_x{scale}.json.gz"
        if not path.is_file():
            write_synthetic(path, scale * REAL_REVIEWS, seed=scale)
        files.append((f"SIMULATED x{scale}", path))
    print("| input | .gz MB | raw MB | reviews read | kept | peak RSS MB | RSS after imports MB "
          "| peak - imports MB | time s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, path in files:
        m = measure(path, args.code)
        print(f"| {label} | {path.stat().st_size / 1e6:.1f} | {_raw_size(path) / 1e6:.1f} "
              f"| {m['read']:,} | {m['kept']:,} | {m['peak_kb'] / 1024:.0f} "
              f"| {m['base_kb'] / 1024:.0f} | {(m['peak_kb'] - m['base_kb']) / 1024:.0f} "
              f"| {m['seconds']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
