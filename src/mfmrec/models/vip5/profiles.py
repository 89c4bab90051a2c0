"""User profiles written with semantic codes (``model.user_profile``; ours, not the paper's).

With numbers or hashed tokens a user is a name the model must memorise from its few
training prompts; direct prompts (B-*) then carry no taste at all for a user the model has
not yet learned. With semantic item IDs a user can be described in the same code language
as items: the ``n`` code prefixes (the first ``depth`` codes of an item's ID) that occur
most often among the user's **training** purchases, e.g. ``<a_3><b_5> <a_6><b_2>``. Users
who like the same kind of item then share profile words, so a model generalises from one
user to the next, as it does for items with shared prefixes.

The profile is written right after the user in every user slot (``user_id``,
``user_desc``). It is computed from the training part of each sequence only (never the
validation or test items), ties broken by the most recent purchase, so it is a pure
function of the dataset and the ID set.
"""

from __future__ import annotations

from collections.abc import Sequence

from mfmrec.errors import ConfigError
from mfmrec.models.vip5.indexing import code_token


def prefix_word(codes: Sequence[int], depth: int) -> str:
    """``<a_3><b_5>``: the first ``depth`` codes of an item's ID as one word."""
    return "".join(code_token(level, c) for level, c in enumerate(codes[:depth]))


def profile_depth(depth: int, levels: int) -> int:
    """``model.user_profile_depth`` resolved: 0 = every level but the disambiguation."""
    if depth == 0:
        return levels
    if not 1 <= depth <= levels:
        raise ConfigError(f"config field model.user_profile_depth: the ID set has {levels} "
                          f"levels (plus a disambiguation code); got {depth}")
    return depth


def user_profiles(codes: Sequence[Sequence[int]], sequences: Sequence[Sequence[int]],
                  n: int, depth: int) -> list[str]:
    """Per user, its ``n`` most frequent ``depth``-code prefixes, most frequent first, ties
    broken by the most recent purchase; joined by spaces ('' for a user with none)."""
    out = []
    for seq in sequences:
        count: dict[str, int] = {}
        last: dict[str, int] = {}
        for t, item in enumerate(seq):
            word = prefix_word(codes[int(item)], depth)
            count[word] = count.get(word, 0) + 1
            last[word] = t
        ranked = sorted(count, key=lambda w: (-count[w], -last[w]))
        out.append(" ".join(ranked[:n]))
    return out
