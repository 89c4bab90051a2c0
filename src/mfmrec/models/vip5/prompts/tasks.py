"""From a dataset and a template to one tokenized sample, for training and evaluation.

:class:`PromptBuilder` owns the tokenizer, the dataset and the :class:`PromptOptions`. It
builds a :class:`~.render.PromptContext` per family (training contexts draw
their randomness from a ``numpy.random.Generator`` handed in), renders it, tokenizes it
and truncates it to ``max_length`` without cutting through a placeholder group: the
oldest history items go first, then the last candidates (never the positive one in
training); only a prompt still too long after that is cut token-wise, and then whole
placeholder groups are dropped with their items.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mfmrec.config import check
from mfmrec.errors import DataError
from mfmrec.models.vip5.prompts.render import (
    ARROW,
    COMMA,
    USER_BUCKETS,
    ItemText,
    PromptContext,
    render,
)
from mfmrec.models.vip5.prompts.templates import Template
from mfmrec.models.vip5.prompts.tokenization import (
    Encoded,
    encode_input,
    encode_target,
    placeholder_id,
)

SAMPLINGS = ("per_template", "paper")


SEQUENTIAL_TARGETS = ("last", "any")


@dataclass(frozen=True)
class PromptOptions:
    """How prompts are rendered and tokenized."""

    image_tokens: int = 2
    """k: image placeholder tokens per item (0 = text-only prompts)."""
    max_history: int = 20
    """Most recent history items kept in sequential prompts."""
    max_length: int = 512
    """Encoder input length limit in tokens, ``</s>`` included."""
    max_target_length: int = 64
    """Target length limit in tokens, ``</s>`` included."""
    num_negatives: int = 99
    """Random negatives joined to the positive in training candidate lists (B-5..B-8)."""
    sampling: str = "per_template"
    """'per_template': every training user/review once per template of its family;
    'paper': VIP5's mix, 10 samples per user for A and for B and 1 per review for C, each
    with a template drawn at random."""
    sequential_target: str = "last"
    """Training target of a sequential sample: 'last' (the user's last training item,
    every time) or 'any' (a random training position with at least one item before it,
    drawn per sample: every prefix of the sequence is a training example, as SASRec's)."""

    def __post_init__(self) -> None:
        check(self.image_tokens >= 0, "image_tokens", f"must be >= 0, got {self.image_tokens}")
        check(self.max_history >= 1, "max_history", f"must be >= 1, got {self.max_history}")
        check(self.max_length >= 8, "max_length", f"must be >= 8, got {self.max_length}")
        check(self.max_target_length >= 2, "max_target_length",
              f"must be >= 2, got {self.max_target_length}")
        check(self.num_negatives >= 1, "num_negatives", f"must be >= 1, got {self.num_negatives}")
        check(self.sampling in SAMPLINGS, "sampling",
              f"must be one of {', '.join(SAMPLINGS)}, got {self.sampling!r}")
        check(self.sequential_target in SEQUENTIAL_TARGETS, "sequential_target",
              f"must be one of {', '.join(SEQUENTIAL_TARGETS)}, got {self.sequential_target!r}")


@dataclass
class PromptSample:
    """One tokenized prompt, ready for :func:`mfmrec.models.vip5.prompts.collate.collate`."""

    input_ids: list[int]
    whole_word_ids: list[int]
    category_ids: list[int]
    image_items: list[int]  # internal item index of each placeholder token, in order
    labels: list[int] | None  # target ids ending with </s>; None when unknown
    task: str
    template_id: str
    text: str
    target: str | None


def sample_negatives(rng: np.random.Generator, num_items: int, exclude: Sequence[int],
                     n: int) -> list[int]:
    """``n`` distinct items drawn uniformly from those not in ``exclude``."""
    seen = {int(x) for x in exclude}
    if num_items - len(seen) < n:
        raise DataError(f"cannot draw {n} negatives: only {num_items - len(seen)} items "
                        "are left after removing the user's own")
    out: list[int] = []
    while len(out) < n:
        for x in rng.integers(0, num_items, size=2 * (n - len(out)) + 4).tolist():
            if x not in seen:
                seen.add(x)
                out.append(x)
                if len(out) == n:
                    break
    return out


class PromptBuilder:
    """Renders and tokenizes prompts of one dataset with one tokenizer."""

    def __init__(self, dataset, tokenizer, options: PromptOptions | None = None,
                 names: Sequence[str] | None = None, user_buckets: int = USER_BUCKETS,
                 profiles: Sequence[str] | None = None):
        self.data = dataset
        # item names (numbers or codes), user tokens and profiles
        self.items = ItemText(dataset, names, user_buckets, profiles)
        self.tokenizer = tokenizer  # None: render-only (e.g. to build a tokenizer corpus)
        self.options = options or PromptOptions()
        self.pid = placeholder_id(tokenizer) if tokenizer is not None else None
        self._warned_dropped = False

    # ---- contexts ------------------------------------------------------------------------
    def user_name(self, user: int) -> str | None:
        names = self.data.user_names
        return names[user] if names is not None else None

    def negative(self, rng: np.random.Generator, user: int) -> int:
        return sample_negatives(rng, self.data.num_items, self.data.sequences[user], 1)[0]

    def sequential_context(self, template: Template, user: int, history: Sequence[int],
                           target: int | None, rng: np.random.Generator | None = None,
                           item: int | None = None, mix_separators: bool = False
                           ) -> PromptContext:
        """A sequential context. With ``mix_separators`` (training) the history is joined
        by " , " or " -> " at random; yes/no templates ask about ``item``, or, when it is
        None, about the target or a random negative (half each, drawn from ``rng``)."""
        ctx = PromptContext(user=int(user), user_name=self.user_name(user),
                            history=[int(i) for i in history[-self.options.max_history:]],
                            target=None if target is None else int(target))
        if mix_separators:
            ctx.separator = COMMA if rng.random() < 0.5 else ARROW
        self._ask(ctx, template, rng, item)
        return ctx

    def direct_context(self, template: Template, user: int, target: int | None,
                       candidates: Sequence[int] | None = None,
                       rng: np.random.Generator | None = None,
                       item: int | None = None) -> PromptContext:
        """A direct context; training (``rng``, no ``candidates``) lists the target with
        ``num_negatives`` random items the user never interacted with (all there are, if
        fewer), shuffled."""
        ctx = PromptContext(user=int(user), user_name=self.user_name(user),
                            target=None if target is None else int(target))
        if template.lists_items:
            if candidates is None:
                own = self.data.sequences[user]
                # a catalogue smaller than num_negatives + the user's items gives fewer
                n = min(self.options.num_negatives, self.data.num_items - len(set(own.tolist())))
                negs = sample_negatives(rng, self.data.num_items, own, n)
                candidates = negs + [int(target)]
                rng.shuffle(candidates)
            ctx.candidates = [int(c) for c in candidates]
        self._ask(ctx, template, rng, item)
        return ctx

    def _ask(self, ctx: PromptContext, template: Template, rng, item: int | None) -> None:
        if not template.is_yes_no:
            return
        if item is None:
            ctx.label = bool(rng.random() < 0.5)
            ctx.item = ctx.target if ctx.label else self.negative(rng, ctx.user)
        else:
            ctx.item = int(item)
            ctx.label = None if ctx.target is None else bool(int(item) == int(ctx.target))

    @staticmethod
    def explanation_context(review: dict) -> PromptContext:
        """A context from one review / explanation request (a dict of review columns)."""
        return PromptContext(
            user=int(review["user"]), user_name=review.get("reviewer_name"),
            item=int(review["item"]), rating=review.get("rating"),
            summary=review.get("summary"), feature=review.get("feature"),
            explanation=review.get("explanation"))

    # ---- rendering, tokenizing and truncating -------------------------------------------
    def encode(self, template: Template, ctx: PromptContext, with_target: bool = True,
               protect_target: bool = False) -> PromptSample:
        """Render, tokenize and fit ``ctx`` into ``max_length``; ``protect_target`` keeps
        the positive in a candidate list that must be shortened (training)."""
        if self.tokenizer is None:
            raise ValueError("this PromptBuilder renders only: it was built without a tokenizer")
        k, limit = self.options.image_tokens, self.options.max_length
        rendered = render(template, ctx, self.items, k, with_target)
        enc = encode_input(self.tokenizer, rendered.text, self.pid)
        listed = len(ctx.candidates)
        while len(enc.input_ids) > limit and self._list_len(template, ctx) > 0:
            ctx = self._shorten(template, ctx, len(enc.input_ids), protect_target)
            rendered = render(template, ctx, self.items, k, with_target)
            enc = encode_input(self.tokenizer, rendered.text, self.pid)
        if len(ctx.candidates) < listed and not protect_target:
            self._warn_dropped(template, listed, len(ctx.candidates))
        image_items = [i for i in rendered.image_items for _ in range(k)]
        if len(enc.input_ids) > limit:
            enc, image_items = self._cut(enc, image_items)
        if sum(enc.category_ids) != len(image_items):
            raise DataError(f"prompt {template.id}: {sum(enc.category_ids)} placeholder "
                            f"tokens but {len(image_items)} image slots in {rendered.text!r}")
        labels = None
        if rendered.target is not None:
            labels = encode_target(self.tokenizer, rendered.target,
                                   self.options.max_target_length)
        return PromptSample(enc.input_ids, enc.whole_word_ids, enc.category_ids, image_items,
                            labels, template.task, template.id, rendered.text,
                            rendered.target)

    def _warn_dropped(self, template: Template, listed: int, kept: int) -> None:
        """Once per builder: a ranking prompt lost candidates, so the model is asked to
        pick from fewer items than are scored (the unlisted ones are at a disadvantage)."""
        if self._warned_dropped:
            return
        self._warned_dropped = True
        warnings.warn(f"prompt {template.id}: only {kept} of {listed} candidates fit "
                      f"model.max_input_length={self.options.max_length} tokens; the others "
                      "are scored without being listed. Raise model.max_input_length (and "
                      "model.whole_word_positions) to list them all", stacklevel=3)

    @staticmethod
    def _list_len(template: Template, ctx: PromptContext) -> int:
        if "purchase_history" in template.input_slots:
            return len(ctx.history)
        if "candidates" in template.input_slots:
            # the protected positive can't be dropped; one entry always stays
            return max(0, len(ctx.candidates) - 1)
        return 0

    def _shorten(self, template: Template, ctx: PromptContext, length: int,
                 protect_target: bool) -> PromptContext:
        """Drop about enough list entries to bring ``length`` tokens under the limit."""
        field = "history" if "purchase_history" in template.input_slots else "candidates"
        items = list(getattr(ctx, field))
        bare = render(template, dataclasses.replace(ctx, **{field: []}), self.items,
                      self.options.image_tokens, with_target=False)
        base = len(encode_input(self.tokenizer, bare.text, self.pid).input_ids)
        per_entry = max(1.0, (length - base) / max(1, len(items)))
        excess = length - self.options.max_length
        drop = min(self._list_len(template, ctx), max(1, math.ceil(excess / per_entry)))
        if field == "history":  # the oldest purchases matter least
            return dataclasses.replace(ctx, history=items[drop:])
        for _ in range(drop):
            idx = next(j for j in range(len(items) - 1, -1, -1)
                       if not (protect_target and items[j] == ctx.target))
            items.pop(idx)
        return dataclasses.replace(ctx, candidates=items)

    def _cut(self, enc: Encoded, image_items: list[int]) -> tuple[Encoded, list[int]]:
        """Cut tokens to ``max_length`` keeping ``</s>``; drop a placeholder group cut in
        two, so every kept item keeps all of its k tokens."""
        n = self.options.max_length - 1
        ids, words, cats = enc.input_ids[:n], enc.whole_word_ids[:n], enc.category_ids[:n]
        k = self.options.image_tokens
        partial = sum(cats) % k if k else 0
        if partial:
            ids, words, cats = ids[:-partial], words[:-partial], cats[:-partial]
        eos = self.tokenizer.eos_token_id
        return (Encoded(ids + [eos], words + [0], cats + [0]),
                image_items[: sum(cats)])
