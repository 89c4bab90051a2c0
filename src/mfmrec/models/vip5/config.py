"""The ``model:`` section of a VIP5 run (``name: vip5``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mfmrec.config import check
from mfmrec.models.base import PROMPT_FAMILIES
from mfmrec.models.vip5.indexing import CODE_INITS, Indexing
from mfmrec.models.vip5.prompts.tasks import SEQUENTIAL_TARGETS

TUNING_MODES = ("adapters", "adapters-self", "full")
FAMILIES = tuple(PROMPT_FAMILIES.values())  # the tasks VIP5 trains on
ACTIVATIONS = ("gelu", "relu")
SAMPLINGS = ("per_template", "paper")
DECODINGS = ("constrained", "paper")


@dataclass
class VIP5Config:
    """VIP5: a T5 backbone, bottleneck adapters, k image tokens per item in the prompts."""

    # -- backbone and tokenizer
    backbone: str = "small"  # preset tiny|small|base (random init) or a local T5 checkpoint dir
    tokenizer: str | None = None  # tokenizer dir; None: the backbone's own, else one trained
    init_seed: int = 0  # seed of every randomly initialised part (frozen ones must match)
    dropout: float | None = None  # dropout of the backbone; None keeps the checkpoint's (0.1)
    # dropout on the attention probabilities alone; None: as model.dropout (the paper).
    # 0 lets a CPU's SDPA take its fused kernel (it has no dropout), which does not
    # materialise the (B, H, L, L) probabilities: much less training memory (ours)
    attention_dropout: float | None = None
    # -- item and user names
    indexing: str = "number"  # number (the paper) | semantic:NAME (DATA/ids/NAME, code tokens)
    # users as tokens <u_H> (H = user index mod user_tokens), new rows that train, in every
    # user slot; 0 = users as numbers (the paper). >= the user count: one token per user
    user_tokens: int = 0
    # users described by their training purchases' code prefixes (semantic indexing only;
    # ours, not the paper's): the user_profile most frequent prefixes of
    # user_profile_depth codes (0 = all levels but the disambiguation code) follow the
    # user in every user slot; 0 = no profile (the paper)
    user_profile: int = 0
    user_profile_depth: int = 0
    # where the new code tokens' embedding rows start (semantic indexing): random (N(0, std
    # of the table)) or features: each code's input-space vector (ids/NAME.vectors), PCA-
    # projected to d_model, so similar codes start with similar rows (ours)
    code_init: str = "random"
    # -- parameter-efficient tuning
    tuning: str = "adapters"  # adapters (self+cross, the paper) | adapters-self | full
    reduction_factor: int = 8  # adapter width = d_model / reduction_factor
    adapter_activation: str = "gelu"  # gelu | relu inside the adapters
    # -- visual tokens
    image_features: str | None = None  # feature-store name (features/<name>.safetensors)
    image_tokens: int = 2  # image tokens per item; 0 = text-only prompts
    mapping_hidden: int = 0  # hidden width of the mapping network; 0 = d_model
    mapping_activation: str = "gelu"  # gelu | relu between the two mapping layers
    # -- prompt embeddings
    whole_word_positions: int = 512  # rows of the whole-word embedding table
    paper_frozen_embeddings: bool = False  # adapter modes: random N(0,1) tables, frozen
    # -- training data (mfmrec.models.vip5.prompts.PromptDataset)
    tasks: list[str] = field(default_factory=lambda: list(FAMILIES))  # families trained on
    templates: list[str] | None = None  # template ids to train on; None: all seen ones
    sampling: str = "per_template"  # per_template | paper (VIP5's 10/10/1 random mix)
    # sequential training target: last (the last training item, every time) | any (a
    # random training position per sample: every prefix is an example, as for SASRec)
    sequential_target: str = "last"
    max_history: int = 20  # most recent history items in sequential prompts
    num_negatives: int = 99  # negatives listed with the positive in training candidates
    max_input_length: int = 512  # encoder tokens per prompt
    max_target_length: int = 64  # decoder tokens per target (explanations)
    # sequence packing (T5 backbones): a training batch's short prompts share rows under
    # block-diagonal masks, each sample's loss unchanged; a row holds at most pack_length
    # encoder and max_target_length decoder tokens
    pack_training: bool = False
    pack_length: int = 0  # 0: the batch's longest prompt (rows never longer than unpacked)
    # -- inference
    beams: int = 20  # beam width of constrained (and paper-style) beam search
    decoding: str = "constrained"  # constrained (trie) | paper (free beams, parsed, dropped)
    explain_max_tokens: int = 64  # greedy decoding length of explanations
    score_chunk_rows: int = 0  # decoder rows per candidate-scoring pass; 0 = auto (memory)

    def __post_init__(self) -> None:
        check(bool(self.backbone), "model.backbone", "give a preset (tiny, small, base) or a "
              "checkpoint directory")
        Indexing.parse(self.indexing)  # a ConfigError naming model.indexing
        check(self.user_tokens >= 0, "model.user_tokens", "must be >= 0 (0 = none)")
        check(self.user_profile >= 0, "model.user_profile", "must be >= 0 (0 = none)")
        check(self.user_profile_depth >= 0, "model.user_profile_depth",
              "must be >= 0 (0 = every level but the disambiguation code)")
        check(self.user_profile == 0 or self.item_indexing.kind == "semantic",
              "model.user_profile", "profiles are written in semantic codes: needs "
              "model.indexing: semantic:NAME")
        check(self.code_init in CODE_INITS, "model.code_init",
              f"expected one of {', '.join(CODE_INITS)}, got {self.code_init!r}")
        check(self.code_init == "random" or self.item_indexing.kind == "semantic",
              "model.code_init", "features initialises code tokens: needs "
              "model.indexing: semantic:NAME")
        check(self.tuning in TUNING_MODES, "model.tuning",
              f"expected one of {', '.join(TUNING_MODES)}, got {self.tuning!r}")
        check(self.reduction_factor >= 1, "model.reduction_factor", "must be >= 1")
        for name in ("adapter_activation", "mapping_activation"):
            check(getattr(self, name) in ACTIVATIONS, f"model.{name}",
                  f"expected one of {', '.join(ACTIVATIONS)}, got {getattr(self, name)!r}")
        check(self.image_tokens >= 0, "model.image_tokens", "must be >= 0 (0 = text-only)")
        check(self.image_tokens == 0 or bool(self.image_features), "model.image_features",
              "image_tokens > 0 needs a feature-store name (e.g. clip-vit-b32); "
              "set image_tokens: 0 for text-only prompts")
        check(self.mapping_hidden >= 0, "model.mapping_hidden", "must be >= 0")
        check(self.whole_word_positions >= 2, "model.whole_word_positions", "must be >= 2")
        self.tasks = list(self.tasks)
        unknown = sorted(set(self.tasks) - set(FAMILIES))
        check(not unknown and bool(self.tasks), "model.tasks",
              f"expected a non-empty subset of {', '.join(FAMILIES)}, got {self.tasks}")
        check(self.sampling in SAMPLINGS, "model.sampling",
              f"expected one of {', '.join(SAMPLINGS)}, got {self.sampling!r}")
        check(self.sequential_target in SEQUENTIAL_TARGETS, "model.sequential_target",
              f"expected one of {', '.join(SEQUENTIAL_TARGETS)}, "
              f"got {self.sequential_target!r}")
        check(self.max_history >= 1, "model.max_history", "must be >= 1")
        check(self.num_negatives >= 1, "model.num_negatives", "must be >= 1")
        if self.templates is not None:
            self.templates = list(self.templates)
            check(bool(self.templates), "model.templates", "give template ids or null")
        check(self.max_input_length >= 8, "model.max_input_length", "must be >= 8")
        check(self.max_target_length >= 2, "model.max_target_length", "must be >= 2")
        check(0 <= self.pack_length <= self.max_input_length, "model.pack_length",
              f"must be in [0, max_input_length={self.max_input_length}] (0 = the batch's "
              f"longest prompt), got {self.pack_length}")
        check(self.beams >= 1, "model.beams", "must be >= 1")
        check(self.decoding in DECODINGS, "model.decoding",
              f"expected one of {', '.join(DECODINGS)}, got {self.decoding!r}")
        check(self.explain_max_tokens >= 1, "model.explain_max_tokens", "must be >= 1")
        check(self.score_chunk_rows >= 0, "model.score_chunk_rows", "must be >= 0")
        check(self.dropout is None or 0 <= self.dropout < 1, "model.dropout",
              "must be in [0, 1) or null")
        check(self.attention_dropout is None or 0 <= self.attention_dropout < 1,
              "model.attention_dropout", "must be in [0, 1) or null")

    @property
    def item_indexing(self) -> Indexing:
        return Indexing.parse(self.indexing)

    @property
    def uses_adapters(self) -> bool:
        return self.tuning != "full"

    @property
    def cross_adapters(self) -> bool:
        return self.tuning == "adapters"
