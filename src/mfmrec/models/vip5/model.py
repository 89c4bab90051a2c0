"""VIP5: multimodal personalized prompts over a (mostly frozen) T5 with adapters.

The model is composed of parts built elsewhere and passed in: a transformers
``T5ForConditionalGeneration`` (adapters already injected), the prompt embeddings
(whole-word and category), the item image tokens (feature store + mapping network) and a
prompt builder that renders and tokenizes the 29 templates. It adds no layer of its own:
it builds the encoder input and calls the backbone.

Encoder input of one prompt::

    embeds = shared(input_ids)                  # (B, L, d) the backbone's token table
    embeds[placeholder positions] = image tokens of the items, k per item
    embeds += whole_word(whole_word_ids) + category(category_ids)

Scoring uses :mod:`mfmrec.models.vip5.decoding`: beam search constrained by a trie of the
items' target token ids (``recommend``), the exact log-likelihood of each candidate
(``score_candidates``), and greedy decoding for explanations (``explain``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from mfmrec.errors import ConfigError
from mfmrec.models.base import (
    DIRECT,
    EXPLANATION,
    FAMILY_OF_TASK,
    GENERATED_LIST,
    SEQUENTIAL,
    BatchCost,
    Recommender,
    enable_hf_checkpointing,
)
from mfmrec.models.flops import T5Plan, dense
from mfmrec.models.vip5.catalogue import CatalogueTree, catalogue_scores
from mfmrec.models.vip5.config import VIP5Config
from mfmrec.models.vip5.decoding import (
    ItemTrie,
    constrained_beam_search,
    teacher_forced_scores,
    unconstrained_beam_search,
)
from mfmrec.models.vip5.indexing import is_new_token_parameter
from mfmrec.models.vip5.mapping import ItemImageTokens, PromptEmbeddings
from mfmrec.models.vip5.packing import (
    additive_key_mask,
    contiguous_position_bias,
    packable,
    packed_outputs,
)
from mfmrec.models.vip5.prompts.collate import IGNORE_INDEX, pack
from mfmrec.models.vip5.prompts.collate import collate as collate_prompts
from mfmrec.models.vip5.prompts.dataset import PromptDataset
from mfmrec.models.vip5.prompts.inference import (
    direct_prompts,
    explanation_prompts,
    sequential_prompts,
)
from mfmrec.models.vip5.prompts.templates import Template, get_template
from mfmrec.models.vip5.prompts.tokenization import placeholder_id
from mfmrec.peft import is_adapter_parameter, is_layer_norm_parameter

PART_NAMES = ("adapters", "mapping", "layer_norms", "extra_embeddings", "new_tokens",
              "backbone")
LOGIT_BUDGET = 1 << 26  # float logits per scoring pass (256 MiB in fp32)


class VIP5(Recommender):
    """See the module docstring; build it with :func:`mfmrec.models.vip5.build_vip5`."""

    name: ClassVar[str] = "vip5"
    tasks: ClassVar[frozenset[str]] = frozenset({SEQUENTIAL, DIRECT, EXPLANATION})
    produces: ClassVar[str] = GENERATED_LIST  # beam search; exact scores on request
    #: the prompt a call uses when given none (the paper's seen evaluation prompts)
    default_prompts: ClassVar[dict[str, str]] = {SEQUENTIAL: "A-3", DIRECT: "B-5",
                                                 EXPLANATION: "C-3"}

    def __init__(self, config: VIP5Config, backbone: nn.Module, embeddings: PromptEmbeddings,
                 image_tokens: ItemImageTokens | None, prompts: Any, tokenizer: Any,
                 item_targets: list[list[int]]):
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.embeddings = embeddings
        self.image_tokens = image_tokens
        self.prompts = prompts  # mfmrec.models.vip5.prompts.tasks.PromptBuilder (not a module)
        self.tokenizer = tokenizer
        self.placeholder_id = placeholder_id(tokenizer)
        self.item_targets = item_targets  # per item: target token ids ending with </s>
        self.item_trie = ItemTrie(item_targets)
        self._target_table: tuple[torch.Tensor, torch.Tensor] | None = None  # built on use
        self._catalogue = None  # the items' prefix tree by level, built on first use
        self.last_decoding: dict[str, int] = {}  # what paper-style decoding dropped
        self.apply_tuning()

    # ---- parameters ------------------------------------------------------------------
    def part_of(self, name: str) -> str:
        """Which part a parameter name belongs to (for counts and freezing)."""
        if name.startswith("backbone."):
            inner = name[len("backbone."):]
            if is_adapter_parameter(inner):
                return "adapters"
            if is_new_token_parameter(inner):
                return "new_tokens"
            return "layer_norms" if is_layer_norm_parameter(self.backbone, inner) else "backbone"
        return "extra_embeddings" if name.startswith("embeddings.") else "mapping"

    def apply_tuning(self) -> None:
        """Set ``requires_grad`` per part for the configured tuning mode."""
        cfg = self.config
        trainable = set(PART_NAMES)
        if cfg.uses_adapters:
            trainable.discard("backbone")
            if cfg.paper_frozen_embeddings:
                trainable.discard("extra_embeddings")
        for name, param in self.named_parameters():
            param.requires_grad_(self.part_of(name) in trainable)

    def parameter_groups(self) -> dict[str, int]:
        """Trainable counts by part, their ``total`` and ``all_params`` (trainable or not)."""
        counts = dict.fromkeys(PART_NAMES, 0)
        everything = 0
        for name, param in self.named_parameters():
            everything += param.numel()
            if param.requires_grad:
                counts[self.part_of(name)] += param.numel()
        counts["total"] = sum(counts[p] for p in PART_NAMES)
        counts["all_params"] = everything
        return counts

    @functools.cached_property
    def _cost_plan(self) -> T5Plan | None:
        return T5Plan.of(self.backbone)  # the backbone's layers, found once

    def batch_cost(self, batch: dict) -> BatchCost:
        """Real tokens: the encoder's (``attention_mask``) plus the decoder's (``labels``
        other than -100); FLOPs: the analytic T5 count on them (adapters included) plus
        the image mapping of the batch's distinct items."""
        mask, labels = batch["attention_mask"], batch.get("labels")  # (B, L), (B, T)
        enc = mask.sum(1)  # (B,)
        dec = (labels != IGNORE_INDEX).sum(1) if labels is not None else torch.zeros_like(enc)
        padded = mask.numel() + (labels.numel() if labels is not None else 0)
        plan = self._cost_plan
        flops = plan.flops(enc, dec) if plan is not None else None
        if flops is not None and self.image_tokens is not None:
            items = batch["image_items"]  # (B, M), -1 pads
            flops += dense([self.image_tokens.mapping]).times(items[items >= 0].unique().numel())
        return BatchCost(int(enc.sum() + dec.sum()), padded,
                         flops.training if flops is not None else None)

    @property
    def device(self) -> torch.device:
        return self.embeddings.category.weight.device

    # ---- training --------------------------------------------------------------------
    def train_data(self, dataset: Any, split: str = "train", seed: int = 0):
        cfg, items = self.config, self.prompts.items
        # the prompt options build_vip5 derived from the config, so inference and training
        # render alike
        return PromptDataset(
            dataset, self.tokenizer, split=split,
            families=[FAMILY_OF_TASK[t] for t in cfg.tasks], seed=seed,
            templates=cfg.templates, names=items.names, user_buckets=items.user_buckets,
            profiles=items.profiles, **dataclasses.asdict(self.prompts.options),
        )

    def collate(self, samples: list) -> dict:
        """A training batch; packed several samples to a row with ``pack_training``."""
        cfg = self.config
        if not cfg.pack_training:
            return collate_prompts(samples, self.tokenizer)
        return pack(samples, self.tokenizer, self.backbone.config.decoder_start_token_id,
                    max_length=cfg.pack_length or None, max_target_length=cfg.max_target_length)

    def _on_device(self, batch: dict) -> dict:
        return {k: v.to(self.device) if isinstance(v, torch.Tensor) else v
                for k, v in batch.items()}

    def input_embeds(self, batch: dict) -> torch.Tensor:
        """(B, L, d) encoder input: tokens, image tokens in the placeholders, prompt ids."""
        ids = batch["input_ids"]
        embeds = self.backbone.get_input_embeddings()(ids)  # (B, L, d)
        if self.image_tokens is not None:
            embeds = self.image_tokens.fill(embeds, ids == self.placeholder_id,
                                            batch["image_items"])
        return self.embeddings(embeds, batch["whole_word_ids"], batch["category_ids"])

    def forward(self, batch: dict):
        """Teacher-forced outputs (loss, logits). The padding mask is made additive once
        (B, 1, 1, L) and T5's position bias laid out contiguously, as at inference:
        transformers would otherwise expand a 2D mask to (B, 1, Q, L) and select from it
        in every attention call, and add it to a strided bias (same values either way)."""
        batch = self._on_device(batch)
        embeds = self.input_embeds(batch)  # (B, L, d)
        if "segments" in batch:  # packed rows (prompts.collate.pack)
            return packed_outputs(self.backbone, embeds, batch)
        with contiguous_position_bias(self.backbone):
            return self.backbone(
                inputs_embeds=embeds, labels=batch["labels"],
                attention_mask=additive_key_mask(batch["attention_mask"], embeds.dtype))

    def training_loss(self, batch: dict) -> torch.Tensor:
        return self.forward(batch).loss

    def sample_losses(self, batch: dict) -> torch.Tensor:
        """(B,) mean target-token cross-entropy of each sample, in collated order, from a
        plain or a packed batch (``target_segments`` names each token's sample)."""
        logits = self.forward(batch).logits  # (R, T, V)
        labels = batch["labels"].to(logits.device)  # (R, T)
        token = nn.functional.cross_entropy(logits.transpose(1, 2), labels,
                                            ignore_index=IGNORE_INDEX, reduction="none")
        owner = batch.get("target_segments")
        if owner is None:
            owner = torch.arange(len(labels))[:, None].expand_as(labels)
        keep = labels != IGNORE_INDEX
        owner = owner.to(logits.device)[keep]  # (N,) over the target tokens of the batch
        total = token.new_zeros(len(batch["task"])).index_add_(0, owner, token[keep])
        return total / torch.bincount(owner, minlength=len(total))

    def enable_activation_checkpointing(self) -> None:
        """Recompute every T5 block (adapters inside it included) in backward;
        non-reentrant, so blocks whose inputs need no gradient (frozen weights) work."""
        enable_hf_checkpointing(self.backbone)

    # ---- prompts at inference --------------------------------------------------------
    def _template(self, prompt: str | None, default: str, tasks: Sequence[str]) -> Template:
        template = get_template(prompt or default)
        if template.task not in tasks:
            raise ConfigError(f"prompt {template.id} is a {template.task} prompt; this "
                              f"call needs one of: {', '.join(tasks)}")
        return template

    def _ranking_prompts(self, template: Template, users, histories, candidates=None) -> list:
        """One prompt per user: its history (A-*) or its candidate list (B-5..B-8)."""
        if template.is_yes_no:
            raise ConfigError(f"prompt {template.id} answers yes/no and cannot rank items by "
                              "generation; use it with score_candidates")
        if template.task == DIRECT:
            return direct_prompts(self.prompts, users, candidates, template.id)
        return sequential_prompts(self.prompts, users, [h.tolist() for h in histories],
                                  template.id)

    @torch.no_grad()
    def _encode(self, samples: list) -> tuple[BaseModelOutput, torch.Tensor]:
        """Run the encoder once on tokenized prompts; returns its outputs and the mask."""
        batch = self._on_device(collate_prompts(samples, self.tokenizer))
        embeds = self.input_embeds(batch)  # (B, L, d)
        with contiguous_position_bias(self.backbone):
            enc = self.backbone.get_encoder()(
                inputs_embeds=embeds,
                attention_mask=additive_key_mask(batch["attention_mask"], embeds.dtype))
        return BaseModelOutput(last_hidden_state=enc.last_hidden_state), batch["attention_mask"]

    def _beam(self, samples: list, tries, k: int) -> torch.Tensor:
        if self.config.decoding == "paper":
            return self._paper_beam(samples, k)
        enc, mask = self._encode(samples)
        result = constrained_beam_search(
            self.backbone, enc, mask, tries, max(self.config.beams, k),
            decoder_start_token_id=self.backbone.config.decoder_start_token_id,
            eos_token_id=self.tokenizer.eos_token_id, pad_token_id=self.tokenizer.pad_token_id)
        return _padded(result.values, k)

    def _paper_beam(self, samples: list, k: int) -> torch.Tensor:
        """P5/VIP5's decoding, for comparison: free beams, parsed; -1 where a slot stays
        empty because outputs did not parse or repeated an item (counted in
        ``last_decoding``)."""
        enc, mask = self._encode(samples)
        names = {name: item for item, name in enumerate(self.prompts.items.names)}
        result = unconstrained_beam_search(
            self.backbone, enc, mask, max(self.config.beams, k),
            decode=lambda out: self.tokenizer.batch_decode(out, skip_special_tokens=True),
            parse=lambda text: names.get("".join(text.split())),
            max_new_tokens=self.item_trie.max_depth + 2)
        self.last_decoding = {"invalid": result.invalid, "duplicates": result.duplicates}
        return _padded(result.values, k)

    # ---- the scoring contract -------------------------------------------------------
    @torch.no_grad()
    def recommend(self, users: torch.Tensor, histories: list[torch.Tensor], k: int,
                  prompt: str | None = None) -> torch.Tensor:
        """(B, k) items by trie-constrained beam search (``beams`` wide, at least k)."""
        if k > len(self.item_targets):
            raise ValueError(f"k={k} exceeds the {len(self.item_targets)} items")
        template = self._template(prompt, self.default_prompts[SEQUENTIAL], (SEQUENTIAL,))
        return self._beam(self._ranking_prompts(template, users, histories), self.item_trie, k)

    @torch.no_grad()
    def score_items(self, users: torch.Tensor, histories: list[torch.Tensor],
                    prompt: str | None = None) -> torch.Tensor:
        """(B, N) exact log P(item's target ids | prompt) for every item of the catalogue.

        Computed level by level over the items' prefix tree (each shared prefix decoded
        once per user, :func:`~mfmrec.models.vip5.catalogue.catalogue_scores`), so full
        ranking is exact and comparable with score-based models; beam search
        (``recommend``) stays the fast approximation.
        """
        template = self._template(prompt, self.default_prompts[SEQUENTIAL], (SEQUENTIAL,))
        if self._catalogue is None:
            self._catalogue = CatalogueTree.from_trie(self.item_trie)
        enc, mask = self._encode(self._ranking_prompts(template, users, histories))
        start = self.backbone.config.decoder_start_token_id
        return catalogue_scores(self.backbone, enc, mask, self._catalogue,
                                decoder_start_token_id=start)

    @torch.no_grad()
    def recommend_candidates(self, users: torch.Tensor, histories: list[torch.Tensor],
                             candidates: torch.Tensor, k: int,
                             prompt: str | None = None) -> torch.Tensor:
        """(B, k) of each user's own candidates, by beam search over per-user tries."""
        if k > candidates.shape[1]:
            raise ValueError(f"k={k} exceeds the {candidates.shape[1]} candidates")
        template = self._template(prompt, self.default_prompts[DIRECT], (SEQUENTIAL, DIRECT))
        samples = self._ranking_prompts(template, users, histories, candidates)
        tries = [ItemTrie([self.item_targets[i] for i in row], values=row)
                 for row in candidates.tolist()]
        return self._beam(samples, tries, k)

    @torch.no_grad()
    def score_candidates(self, users: torch.Tensor, histories: list[torch.Tensor],
                         candidates: torch.Tensor, prompt: str | None = None) -> torch.Tensor:
        """(B, C) exact scores: log P(candidate's number | prompt) under teacher forcing.

        One encoder pass per user batch; its states are shared by the C candidates. Yes/no
        prompts (A-7, A-8, B-1..B-4) ask about one item each: the score is log P("yes")
        of the prompt about that candidate.
        """
        template = self._template(prompt, self.default_prompts[DIRECT], (SEQUENTIAL, DIRECT))
        if template.is_yes_no:
            return self._yes_no_scores(template, users, histories, candidates)
        enc, mask = self._encode(self._ranking_prompts(template, users, histories, candidates))
        targets = self._target_tensor(candidates.tolist())  # (B, C, T)
        return teacher_forced_scores(self.backbone, enc, mask, targets,
                                     chunk_rows=self._chunk_rows(targets, mask.shape[1]))

    def _chunk_rows(self, targets: torch.Tensor, enc_len: int) -> int:
        """(example, candidate) rows per scoring pass: the configured number, or as many as
        keep the largest float tensor near LOGIT_BUDGET elements: for T5's prefix trees the
        (B, H, N, L + N) attention scores (N <= C*T nodes per example), otherwise the
        (rows, T, V) logits."""
        if self.config.score_chunk_rows:
            return self.config.score_chunk_rows
        _, n_cand, length = targets.shape
        cfg = self.backbone.config
        if packable(self.backbone):
            per_row = length * cfg.num_heads * (enc_len + n_cand * length)
        else:
            per_row = length * cfg.vocab_size
        return max(1, LOGIT_BUDGET // per_row)

    def _target_tensor(self, cands: list[list[int]]) -> torch.Tensor:
        """(B, C, T) target ids of the candidates, padded with -100 to their longest."""
        if self._target_table is None:
            width = max(map(len, self.item_targets))
            table = torch.full((len(self.item_targets), width), -100, dtype=torch.long)
            for item, ids in enumerate(self.item_targets):  # once per model
                table[item, :len(ids)] = torch.tensor(ids)
            self._target_table = (table, torch.tensor(list(map(len, self.item_targets))))
        table, lengths = self._target_table
        index = torch.as_tensor(cands, dtype=torch.long)  # (B, C)
        return table[index, :int(lengths[index].max())].to(self.device)

    def _yes_no_scores(self, template: Template, users, histories, candidates) -> torch.Tensor:
        yes = torch.tensor(self.tokenizer("yes").input_ids, device=self.device)  # yes </s>
        rows = []
        for b in range(len(users)):  # C prompts per user: one encoder batch each
            cands = candidates[b]
            if template.task == DIRECT:
                samples = direct_prompts(self.prompts, users[b:b + 1], cands[None], template.id)
            else:
                samples = sequential_prompts(
                    self.prompts, users[b].repeat(len(cands)),
                    [histories[b].tolist()] * len(cands), template.id, items=cands)
            enc, mask = self._encode(samples)
            target = yes.expand(len(cands), 1, -1)  # (C, 1, T)
            rows.append(teacher_forced_scores(self.backbone, enc, mask, target)[:, 0])
        return torch.stack(rows)  # (B, C)

    @torch.no_grad()
    def explain(self, requests: list[dict], prompt: str | None = None) -> list[str]:
        """Greedy decoding of an explanation per request (user, item, rating, ...). With no
        ``prompt``, a request lacking the default prompt's rating gets one that needs none."""
        template = self._template(prompt, self.default_prompts[EXPLANATION], (EXPLANATION,))
        enc, mask = self._encode(explanation_prompts(self.prompts, requests, template.id,
                                                     fallback=prompt is None))
        out = self.backbone.generate(
            encoder_outputs=enc, attention_mask=mask, do_sample=False, num_beams=1,
            max_new_tokens=self.config.explain_max_tokens)
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]


def _padded(rows: list[list[int]], k: int) -> torch.Tensor:
    """(B, k) item lists; -1 fills slots a search left empty (the evaluator counts them
    as invalid). Constrained search leaves none when the trie holds >= k items."""
    out = torch.full((len(rows), k), -1, dtype=torch.long)
    for b, values in enumerate(rows):
        out[b, :min(k, len(values))] = torch.tensor(values[:k], dtype=torch.long)
    return out
