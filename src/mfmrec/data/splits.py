"""Honest splits, frozen negatives and item indexing, all driven by an explicit RNG.

* sequential leave-one-out (P5/VIP5): last item test, second-to-last validation, the
  rest training; users with fewer than 3 interactions keep everything in training;
* reviews 8:1:1 at random with every user and every item keeping a training review;
* direct-recommendation candidates: 99 negatives per user and split, drawn uniformly
  from items the user never interacted with, sampled once and stored;
* item indexing: ``random`` (default) or ``sequential`` (P5's first-appearance order).
"""

from __future__ import annotations

import numpy as np

INDEXINGS = ("random", "sequential")
TRAIN, VALID, TEST = "train", "valid", "test"


MIN_LEAVE_ONE_OUT = 3  # shorter sequences keep every interaction in training


def leave_one_out_position(length: int, split: str) -> int | None:
    """Where a sequence of ``length`` items holds its ``valid`` or ``test`` target.

    The last item is the test target, the second-to-last the validation target; ``None``
    when the sequence is too short to give up either (everything stays in training).
    """
    if split not in (VALID, TEST):
        raise ValueError(f"split must be {VALID!r} or {TEST!r}, got {split!r}")
    if length < MIN_LEAVE_ONE_OUT:
        return None
    return length - (2 if split == VALID else 1)


def leave_one_out(lengths: list[int]) -> list[list[str]]:
    """Per user, the split label of each position of the sequence."""
    labels = []
    for n in lengths:
        row = [TRAIN] * n
        for split in (VALID, TEST):
            at = leave_one_out_position(n, split)
            if at is not None:
                row[at] = split
        labels.append(row)
    return labels


def item_numbers(
    sequences: list[list[int]], num_items: int, indexing: str, rng: np.random.Generator
) -> np.ndarray:
    """The number (1..N) that stands for each item inside prompts.

    ``sequential`` numbers items in order of first appearance along the user sequences
    (users in index order), which is P5's scheme and reproduces its leakage: items
    bought together get consecutive numbers. ``random`` is a seeded permutation.
    """
    if indexing == "random":
        return rng.permutation(num_items).astype(np.int64) + 1
    if indexing != "sequential":
        raise ValueError(f"indexing must be one of {INDEXINGS}, got {indexing!r}")
    numbers = np.zeros(num_items, dtype=np.int64)
    nxt = 1
    for seq in sequences:
        for item in seq:
            if numbers[item] == 0:
                numbers[item] = nxt
                nxt += 1
    for item in np.flatnonzero(numbers == 0):  # items never interacted with
        numbers[item] = nxt
        nxt += 1
    return numbers


def split_reviews(
    users: np.ndarray, items: np.ndarray, rng: np.random.Generator, ratios=(0.8, 0.1, 0.1)
) -> np.ndarray:
    """Random 8:1:1 split where every user and every item keeps one training review."""
    n = len(users)
    labels = np.full(n, TRAIN, dtype=object)
    if n == 0:
        return labels
    order = rng.permutation(n)
    anchored = np.zeros(n, dtype=bool)
    seen_users: set[int] = set()
    seen_items: set[int] = set()
    for idx in order:  # first review of each user/item in random order stays in training
        u, i = int(users[idx]), int(items[idx])
        if u not in seen_users or i not in seen_items:
            anchored[idx] = True
            seen_users.add(u)
            seen_items.add(i)
    free = [int(i) for i in order if not anchored[i]]
    n_valid = min(int(round(n * ratios[1])), len(free))
    n_test = min(int(round(n * ratios[2])), len(free) - n_valid)
    labels[free[:n_valid]] = VALID
    labels[free[n_valid : n_valid + n_test]] = TEST
    return labels


def sample_candidates(
    history: set[int], positive: int, num_items: int, k: int, rng: np.random.Generator
) -> np.ndarray:
    """``k`` distinct negatives outside ``history`` plus ``positive``, shuffled."""
    if num_items - len(history) < k:
        raise ValueError(
            f"only {num_items - len(history)} items outside the history, need {k} negatives"
        )
    chosen: list[int] = []
    taken = set(history)
    while len(chosen) < k:
        draw = rng.integers(0, num_items, size=2 * (k - len(chosen)) + 8)
        for item in draw.tolist():
            if item not in taken:
                taken.add(item)
                chosen.append(item)
                if len(chosen) == k:
                    break
    cands = np.array(chosen + [positive], dtype=np.int32)
    rng.shuffle(cands)
    return cands
