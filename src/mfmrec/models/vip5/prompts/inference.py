"""Encoder inputs for evaluation: a chosen prompt, the stored data, no randomness.

Histories and candidates are internal item indices; lists are joined with " , " and kept
in the order given (stored candidate order). Targets are optional: with them, samples
carry ``labels`` (e.g. for a validation loss), without them ``labels`` is ``None``.

* :func:`sequential_prompts` — one sample per user (``A-*``). The yes/no templates A-7 and
  A-8 ask about ``items[b]`` and need it.
* :func:`direct_prompts` — candidate-list templates (B-5..B-8): one sample per user
  listing its candidates; yes/no templates (B-1..B-4): one sample per (user, candidate),
  row-major, i.e. sample ``b * C + c`` asks about ``candidates[b, c]``.
* :func:`explanation_prompts` — one sample per request (``C-*``): a dict with ``user``,
  ``item``, ``rating``, ``summary``, ``feature``, ``reviewer_name`` and optionally
  ``explanation`` (then the sample has labels).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mfmrec.errors import ConfigError, DataError
from mfmrec.models.vip5.prompts.tasks import PromptBuilder, PromptSample
from mfmrec.models.vip5.prompts.templates import Template, get_template, templates_of


def _array(x) -> np.ndarray:
    """int64 array from a list, an array or a (possibly GPU) tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.int64)


def _ints(x) -> list[int]:
    return _array(x).reshape(-1).tolist()


def _template(prompt: str, family: str) -> Template:
    template = get_template(prompt)
    if template.family != family:
        raise ConfigError(f"prompt {prompt} is a family {template.family} template; "
                          f"this task needs family {family}")
    return template


def sequential_prompts(builder: PromptBuilder, users, histories: Sequence,
                       prompt: str = "A-3", items=None, targets=None) -> list[PromptSample]:
    """Sequential prompts for ``users`` with their ``histories`` (oldest first)."""
    template = _template(prompt, "A")
    users = _ints(users)
    if len(histories) != len(users):
        raise ValueError(f"{len(users)} users but {len(histories)} histories")
    if template.is_yes_no and items is None:
        raise ConfigError(f"prompt {prompt} asks about one item: pass items=")
    items = _ints(items) if items is not None else [None] * len(users)
    targets = _ints(targets) if targets is not None else [None] * len(users)
    out = []
    for user, hist, item, target in zip(users, histories, items, targets, strict=True):
        ctx = builder.sequential_context(template, user, _ints(hist), target, item=item)
        out.append(builder.encode(template, ctx, with_target=target is not None))
    return out


def direct_prompts(builder: PromptBuilder, users, candidates, prompt: str = "B-5",
                   targets=None) -> list[PromptSample]:
    """Direct prompts over ``candidates`` ((B, C) internal item indices)."""
    template = _template(prompt, "B")
    users = _ints(users)
    cands = _array(candidates).reshape(len(users), -1)  # (B, C)
    targets = _ints(targets) if targets is not None else [None] * len(users)
    out = []
    for user, row, target in zip(users, cands, targets, strict=True):
        if template.lists_items:
            ctx = builder.direct_context(template, user, target, candidates=_ints(row))
            out.append(builder.encode(template, ctx, with_target=target is not None))
            continue
        for item in _ints(row):
            ctx = builder.direct_context(template, user, target, item=item)
            out.append(builder.encode(template, ctx, with_target=target is not None))
    return out


#: Input slots of explanation prompts filled from a request field, and what it is called.
REQUEST_FIELDS = {"star_rating": ("rating", "a star rating"),
                  "review_headline": ("summary", "a review headline"),
                  "feature": ("feature", "a feature word")}


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def lacking(template: Template, request: dict) -> list[str]:
    """The request fields ``template`` needs and ``request`` lacks."""
    return [REQUEST_FIELDS[s][0] for s in template.input_slots
            if s in REQUEST_FIELDS and not _present(request.get(REQUEST_FIELDS[s][0]))]


def _fallback(template: Template, request: dict) -> Template:
    """``template``, or else the first training template of family C the request fills."""
    if not lacking(template, request):
        return template
    return next(t for t in templates_of("C", training=True) if not lacking(t, request))


def _check(template: Template, request: dict) -> Template:
    missing = lacking(template, request)
    if missing:
        what = " and ".join(d for s, (f, d) in REQUEST_FIELDS.items() if f in missing)
        alt = _fallback(template, request).id
        raise DataError(f"prompt {template.id} needs {what} ({', '.join(missing)}), which the "
                        f"request for user #{request['user']} and item #{request['item']} "
                        f"lacks (no review of it); give it, or use a prompt that needs none, "
                        f"e.g. {alt}")
    return template


def explanation_prompts(builder: PromptBuilder, requests: Sequence[dict],
                        prompt: str = "C-3", fallback: bool = False) -> list[PromptSample]:
    """Explanation prompts, one per request dict. A request lacking a field ``prompt``
    needs (a rating, a headline, a feature word) is refused in one line naming it, or,
    with ``fallback``, gets the first training template it fills (C-1 needs none)."""
    template = _template(prompt, "C")
    out = []
    for request in requests:
        chosen = _fallback(template, request) if fallback else _check(template, request)
        ctx = builder.explanation_context(request)
        has_target = isinstance(ctx.explanation, str) and bool(ctx.explanation.strip())
        out.append(builder.encode(chosen, ctx, with_target=has_target))
    return out
