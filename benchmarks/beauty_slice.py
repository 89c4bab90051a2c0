"""Write a P5-format folder holding the first N users of a P5/VIP5 split (e.g. Beauty).

A quick real dataset for CPU runs: ``sequential_data.txt`` keeps its first N user lines
(P5's user order); ``datamaps.json`` and ``item_titles.tsv`` are copied whole, so the
catalogue (and the item numbers inside prompts) is the full split's, and items no kept
user touched simply get no interactions. The folder is then imported as usual::

  python benchmarks/beauty_slice.py --users 2000 --out /tmp/beauty-2000-p5
  mfmrec data import p5 /tmp/beauty-2000-p5 --out /tmp/beauty-2000 --name beauty-2000

``--src`` defaults to ../shared/data/amazon/beauty. The data is real (a subset of users,
not a simulation); results on it are not comparable to the full split's.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

FILES = ("datamaps.json", "item_titles.tsv")


def write_slice(src: Path, out: Path, users: int) -> int:
    """Copy ``src`` to ``out`` keeping the first ``users`` user lines; returns lines kept."""
    if users < 1:
        raise ValueError(f"--users: expected N >= 1, got {users}")
    seq = src / "sequential_data.txt"
    if not seq.is_file():
        raise FileNotFoundError(f"{seq}: missing (not a P5 folder)")
    out.mkdir(parents=True, exist_ok=True)
    kept = 0
    with seq.open(encoding="utf-8") as fin, (out / seq.name).open("w", encoding="utf-8") as fout:
        for line in fin:
            if not line.strip():
                continue
            fout.write(line if line.endswith("\n") else line + "\n")
            kept += 1
            if kept == users:
                break
    for name in FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, out / name)
    return kept


def _default_src() -> Path | None:
    from mfmrec.paths import shared_path

    return shared_path("data", "amazon", "beauty")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--src", type=Path, help="P5 folder (default: ../shared/data/amazon/beauty)")
    p.add_argument("--users", type=int, default=2000, help="how many users (first lines)")
    p.add_argument("--out", type=Path, required=True, help="P5 folder to write")
    args = p.parse_args(argv)
    src = args.src or _default_src()
    if src is None:
        sys.exit("--src: ../shared/data/amazon/beauty not found; give the P5 folder")
    try:
        kept = write_slice(src, args.out, args.users)
    except (OSError, ValueError) as exc:
        sys.exit(str(exc))
    print(f"wrote {args.out}: the first {kept} users of {src}")


if __name__ == "__main__":
    main()
