"""A TIGER-style generative retriever (Rajput et al., 2023) in the same framework as VIP5.

TIGER reads a user's history as a bare sequence of semantic-ID tokens, preceded by one
hashed user token, and generates the next item's code tuple; every weight of a small T5
trains. Here it is VIP5's model with other defaults, so the two share the tokenizer, the
prompt pipeline, trie-constrained beam search, exact candidate and full-catalogue scoring
and the evaluator:

* input template ``A-bare``: ``<u_H> <a_3><b_9><c_0><d_0> <a_3><b_1><c_7><d_0> ...``
  (no prompt text, no image tokens);
* ``indexing: semantic:NAME`` is required (numbers are not TIGER);
* ``backbone: tiger``: the paper's T5 shape (4 + 4 layers, d_model 128, 6 heads of 64,
  MLP 1024), randomly initialised; ``tuning: full``;
* ``user_tokens: 2000`` user buckets, as in the paper (users share a token when there
  are more users than buckets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from mfmrec.config import check
from mfmrec.models.base import DIRECT, EXPLANATION, SEQUENTIAL
from mfmrec.models.registry import register
from mfmrec.models.vip5 import VIP5, VIP5Config, build_vip5

BARE = "A-bare"


@dataclass
class TigerConfig(VIP5Config):
    """The ``model:`` section of a TIGER run (``name: tiger``); fields as in VIP5."""

    backbone: str = "tiger"
    indexing: str = "semantic:"  # must name an ID set: semantic:NAME
    user_tokens: int = 2000
    tuning: str = "full"
    image_tokens: int = 0
    tasks: list[str] = field(default_factory=lambda: [SEQUENTIAL])
    templates: list[str] | None = field(default_factory=lambda: [BARE])
    max_input_length: int = 128

    def __post_init__(self) -> None:
        check(self.indexing.startswith("semantic:") and len(self.indexing) > 9,
              "model.indexing", "TIGER generates semantic IDs: set semantic:NAME (an ID set "
              f"built by `mfmrec ids build`), got {self.indexing!r}")
        super().__post_init__()
        check(self.tasks == [SEQUENTIAL], "model.tasks",
              f"TIGER is a sequential recommender: set [sequential], got {self.tasks}")
        check(self.user_tokens >= 1, "model.user_tokens", "TIGER needs >= 1 user bucket")


class TIGER(VIP5):
    """VIP5's model over bare inputs; see the module docstring."""

    name: ClassVar[str] = "tiger"
    tasks: ClassVar[frozenset[str]] = frozenset({SEQUENTIAL})
    default_prompts: ClassVar[dict[str, str]] = {SEQUENTIAL: BARE, DIRECT: BARE,
                                                 EXPLANATION: "C-3"}


@register("tiger", TigerConfig, "TIGER-style generative retrieval over semantic IDs")
def _build(config: TigerConfig, dataset) -> TIGER:
    return build_vip5(config, dataset, model_class=TIGER)
