"""The training data of prompt-based models: a torch Dataset mixing the three families.

Mixture (``PromptOptions.sampling``):

* ``per_template`` (default): each training user gives one sequential sample per training
  template of family A (8) and one direct sample per template of family B (7); each
  training review gives one explanation sample per template of family C (11) that it can
  fill (templates naming a headline or a feature word need the review to have one).
* ``paper``: VIP5's mix, 10 sequential and 10 direct samples per user and 1 explanation
  sample per review, each with a template drawn at random from its family.

Sources for ``split="train"`` (training data only): sequential — the user's last
training item is the target (``sequential_target="last"``; with ``"any"`` a random
training position drawn per sample, so every prefix serves), the items before it the
history (``max_history`` most
recent; users with fewer than 2 training items are skipped); direct — a random training
item of the user is the positive; explanation — ``reviews_of("train")`` rows with an
explanation. For ``valid``/``test`` (e.g. a validation loss): the leave-one-out targets,
the stored candidates and the reviews of that split, with " , " separators.

Every random choice (template, separator, negatives, yes/no) comes from a generator
seeded with ``(seed, epoch, index)``, so a sample is a pure function of them and resuming
an epoch midway reproduces it exactly. Held-out templates are used only when listed in
``templates`` explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mfmrec.errors import ConfigError
from mfmrec.models.vip5.prompts.render import USER_BUCKETS, Rendered, render
from mfmrec.models.vip5.prompts.tasks import PromptBuilder, PromptOptions, PromptSample
from mfmrec.models.vip5.prompts.templates import FAMILIES, Template, get_template, templates_of

PAPER_COUNTS = {"A": 10, "B": 10, "C": 1}
REVIEW_FIELDS = ("user", "item", "rating", "summary", "feature", "explanation", "reviewer_name")
_NEEDS = {"review_headline": "summary", "feature": "feature"}


def _has_text(values: list) -> np.ndarray:
    return np.asarray([isinstance(v, str) and bool(v.strip()) for v in values], dtype=bool)


class PromptDataset(torch.utils.data.Dataset):
    """Tokenized multimodal prompts of one split; see the module docstring."""

    def __init__(self, dataset, tokenizer, split: str = "train",
                 families: Sequence[str] = ("A", "B", "C"), image_tokens: int = 2,
                 seed: int = 0, templates: Sequence[str] | None = None,
                 names: Sequence[str] | None = None, user_buckets: int = USER_BUCKETS,
                 profiles: Sequence[str] | None = None, **options):
        if split not in ("train", "valid", "test"):
            raise ConfigError(f"split must be train, valid or test, got {split!r}")
        unknown = [f for f in families if f not in FAMILIES]
        if unknown:
            raise ConfigError(f"unknown prompt families {unknown} (known: A, B, C)")
        self.options = PromptOptions(image_tokens=image_tokens, **options)
        self.builder = PromptBuilder(dataset, tokenizer, self.options, names=names,
                                     user_buckets=user_buckets, profiles=profiles)
        self.data, self.split, self.seed, self.epoch = dataset, split, int(seed), 0
        self.templates = self._choose(families, templates)
        self._load_sources()
        self._build_index()

    @staticmethod
    def _choose(families, ids) -> dict[str, list[Template]]:
        if ids is None:
            chosen = {f: templates_of(f, training=True) for f in families}
        else:
            picked = [get_template(t) for t in ids]
            chosen = {f: [t for t in picked if t.family == f] for f in families}
        return {f: ts for f, ts in chosen.items() if ts}

    def set_epoch(self, epoch: int) -> None:
        """Select the random draws of ``epoch`` (call before each epoch)."""
        self.epoch = int(epoch)

    # ---- sources and index ---------------------------------------------------------------
    def _load_sources(self) -> None:
        d = self.data
        if self.split == "train":
            seqs = d.train_sequences
            self.seq_users = np.asarray([u for u, s in enumerate(seqs) if len(s) >= 2], np.int64)
            self.dir_users = np.asarray([u for u, s in enumerate(seqs) if len(s) >= 1], np.int64)
        else:
            self.seq_users, self.seq_hists, self.seq_targets = d.targets(self.split)
            self.cands = d.candidates(self.split)
            self.dir_users = self.cands.users
        table = d.reviews_of(self.split) if d.has_reviews else None
        cols = {c: (table.column(c).to_pylist() if table is not None else [])
                for c in REVIEW_FIELDS}
        keep = np.flatnonzero(_has_text(cols["explanation"]))
        self.reviews = {c: [v[i] for i in keep] for c, v in cols.items()}
        self._present = {f: _has_text(self.reviews[f]) for f in set(_NEEDS.values())}
        self._fit_cache: dict[str, np.ndarray] = {}

    def _fits(self, template: Template) -> np.ndarray:
        """(R,) bool: which reviews can fill ``template``."""
        if template.id not in self._fit_cache:
            ok = np.ones(len(self.reviews["explanation"]), dtype=bool)
            for slot, field in _NEEDS.items():
                if slot in template.input_slots:
                    ok &= self._present[field]
            self._fit_cache[template.id] = ok
        return self._fit_cache[template.id]

    def _build_index(self) -> None:
        fams, srcs, tpls = [], [], []
        sizes = {"A": len(self.seq_users), "B": len(self.dir_users),
                 "C": len(self.reviews["explanation"])}
        for code, family in enumerate(FAMILIES):
            ts = self.templates.get(family)
            if not ts or not sizes[family]:
                continue
            if self.options.sampling == "paper":
                src = np.repeat(np.arange(sizes[family]), PAPER_COUNTS[family])
                tpl = np.full(len(src), -1)
            else:
                fit = np.stack([self._fits(t) if family == "C"
                                else np.ones(sizes[family], bool) for t in ts], axis=1)
                src, tpl = np.nonzero(fit)  # row-major: per source, one per template
            fams.append(np.full(len(src), code, np.int8))
            srcs.append(src.astype(np.int64))
            tpls.append(tpl.astype(np.int16))
        self._fam = np.concatenate(fams) if fams else np.zeros(0, np.int8)
        self._src = np.concatenate(srcs) if srcs else np.zeros(0, np.int64)
        self._tpl = np.concatenate(tpls) if tpls else np.zeros(0, np.int16)

    def __len__(self) -> int:
        return len(self._fam)

    def composition(self) -> dict[str, int]:
        """Samples per family in one epoch."""
        counts = np.bincount(self._fam, minlength=len(FAMILIES))
        return {f: int(c) for f, c in zip(FAMILIES, counts, strict=True)}

    # ---- samples -------------------------------------------------------------------------
    def _template(self, family: str, index: int, rng) -> Template:
        ts, tpl = self.templates[family], int(self._tpl[index])
        if tpl >= 0:
            return ts[tpl]
        if family == "C":
            src = int(self._src[index])
            ts = [t for t in ts if self._fits(t)[src]]
        return ts[int(rng.integers(len(ts)))]

    def context(self, index: int, epoch: int | None = None):
        """(template, context) of sample ``index`` in ``epoch`` (default: the current one)."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        epoch = self.epoch if epoch is None else int(epoch)
        rng = np.random.default_rng([self.seed, epoch, int(index)])
        family = list(FAMILIES)[int(self._fam[index])]
        src = int(self._src[index])
        template = self._template(family, index, rng)
        b, train = self.builder, self.split == "train"
        if family == "A":
            user = int(self.seq_users[src])
            if train:
                seq = self.data.train_sequences[user]
                cut = (int(rng.integers(1, len(seq))) if self.options.sequential_target == "any"
                       else len(seq) - 1)
                hist, target = seq[:cut], seq[cut]
            else:
                hist, target = self.seq_hists[src], self.seq_targets[src]
            return template, b.sequential_context(template, user, hist, target, rng,
                                                  mix_separators=train)
        if family == "B":
            user = int(self.dir_users[src])
            if train:
                seq = self.data.train_sequences[user]
                return template, b.direct_context(template, user,
                                                  seq[int(rng.integers(len(seq)))], rng=rng)
            return template, b.direct_context(template, user, self.cands.positives[src],
                                              self.cands.items[src].tolist(), rng=rng)
        review = {c: v[src] for c, v in self.reviews.items()}
        return template, b.explanation_context(review)

    def render(self, index: int) -> tuple[Template, Rendered]:
        """The rendered text of sample ``index`` (no tokenizer needed)."""
        template, ctx = self.context(index)
        return template, render(template, ctx, self.builder.items, self.options.image_tokens)

    def lengths(self, epoch: int, chunk: int = 2048) -> np.ndarray:
        """(N,) encoder tokens of every sample of ``epoch``, capped at the maximum length,
        for length bucketing: the rendered prompts tokenized in batches (without the
        whole-word bookkeeping of :meth:`__getitem__`, so ~5x cheaper). A prompt that
        :meth:`__getitem__` would shorten counts as the maximum length."""
        tok, k = self.builder.tokenizer, self.options.image_tokens
        out = np.zeros(len(self), dtype=np.int64)
        for start in range(0, len(self), chunk):
            texts = []
            for index in range(start, min(start + chunk, len(self))):
                template, ctx = self.context(index, epoch)
                texts.append(render(template, ctx, self.builder.items, k).text)
            ids = tok(texts, verbose=False).input_ids
            out[start:start + len(texts)] = [len(x) for x in ids]
        return np.minimum(out, self.options.max_length)

    def __getitem__(self, index: int) -> PromptSample:
        template, ctx = self.context(index)
        return self.builder.encode(template, ctx, with_target=True, protect_target=True)
