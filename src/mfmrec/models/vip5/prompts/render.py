"""Render a template with one function per slot kind.

A :class:`PromptContext` holds everything any template may ask about one sample (the
user, the history, the candidates, the item in question, the review); a template picks
what it needs by slot name. Rendering needs no tokenizer.

Slot rules (as in the paper's code):

* ``user_id`` is the user's number, internal index + 1 (P5's numbering also starts at 1);
* with user tokens (``user_buckets > 0``), ``user_id`` is the user's own token ``<u_H>``
  instead of its number, and ``user_token`` (TIGER's bare input) is that token alone (see
  :func:`user_token`);
* ``user_desc`` is the reviewer name, or ``user_<number>`` when the dataset has none;
* with user profiles (``model.user_profile``), ``user_id`` and ``user_desc`` are followed by
  the user's profile words, e.g. ``12 <a_3><b_5> <a_6><b_2>``
  (:mod:`mfmrec.models.vip5.profiles`); ``user_token`` stays bare;
* items are written as their name followed by ``k`` image placeholders
  (``<extra_id_0>``), e.g. ``1234 <extra_id_0> <extra_id_0>``; the name is the prompt
  number (``dataset.numbers[item]``) unless ``names`` gives one per item (semantic IDs:
  ``<a_12><b_7><c_3><d_0>``, one word of code tokens);
  histories and candidate lists join such entries with ``" , "`` or ``" -> "``;
* ``item_id`` (input) is the bare number of the item in question; its picture comes from
  the ``item_photo`` slot that follows it;
* a missing title is ``unknown title``; star ratings are integers.

``Rendered.image_items`` lists the internal index of the item behind each placeholder
*group*, in order of appearance in the text; each group is ``k`` consecutive tokens.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mfmrec.errors import DataError
from mfmrec.models.vip5.prompts.templates import Template

PLACEHOLDER = "<extra_id_0>"
COMMA, ARROW = " , ", " -> "
SEPARATORS = (COMMA, ARROW)
UNKNOWN_TITLE = "unknown title"
_SENTINEL = re.compile(r"<extra_id_\d+>")
USER_BUCKETS = 0  # 0: users are written as numbers (the paper)


def user_token(user: int, buckets: int) -> str:
    """``<u_H>``, ``H`` = the user's internal index modulo ``buckets``: with at least as many
    buckets as users every user has a token of its own; fewer share them (TIGER hashes
    users into 2,000 tokens)."""
    if buckets < 1:
        raise ValueError(f"user tokens need buckets >= 1, got {buckets}")
    return f"<u_{int(user) % buckets}>"


class ItemText:
    """What rendering reads about items (a title and a name, number or code word, each)
    and about users (token buckets; optional profiles written after the user)."""

    def __init__(self, data, names=None, user_buckets: int = USER_BUCKETS, profiles=None):
        self.titles = data.titles
        self.names = (list(names) if names is not None
                      else [str(int(n)) for n in data.numbers])
        self.user_buckets = user_buckets
        self.profiles = list(profiles) if profiles is not None else None

    def name(self, item: int) -> str:
        return self.names[int(item)]

    def profile(self, user: int) -> str:
        """`` <a_3><b_5> ...`` (with its leading space) or '' (no profiles; see
        :mod:`mfmrec.models.vip5.profiles`)."""
        if self.profiles is None or not self.profiles[int(user)]:
            return ""
        return " " + self.profiles[int(user)]


@dataclass
class PromptContext:
    """What a template may ask about one sample; unused fields stay ``None``/empty."""

    user: int  # internal user index
    user_name: str | None = None
    history: Sequence[int] = ()  # internal item indices, oldest first
    candidates: Sequence[int] = ()  # internal item indices, in prompt order
    item: int | None = None  # the item a single-item prompt asks or talks about
    target: int | None = None  # the item to predict (sequential, candidate list)
    label: bool | None = None  # the yes/no answer of a binary prompt
    rating: float | None = None
    summary: str | None = None
    feature: str | None = None
    explanation: str | None = None
    separator: str = COMMA


@dataclass(frozen=True)
class Rendered:
    """A rendered prompt: input text, target text (``None`` if unknown), image items."""

    text: str
    target: str | None
    image_items: tuple[int, ...]  # one internal item index per placeholder group


Piece = tuple[str, tuple[int, ...]]


def user_number(user: int) -> int:
    """The number that stands for internal user ``user`` in prompts."""
    return int(user) + 1


def _need(ctx: PromptContext, field: str, slot: str) -> Any:
    value = getattr(ctx, field)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(f"prompt slot {slot!r} needs {field}, which is missing "
                        f"(user #{ctx.user})")
    return value


def _clean(text: object) -> str:
    """Free text with sentinel tokens removed (a title holding ``<extra_id_0>`` would
    otherwise add an image slot) and whitespace collapsed."""
    return " ".join(_SENTINEL.sub(" ", str(text)).split())


def _photo(item: int, k: int) -> Piece:
    return " ".join([PLACEHOLDER] * k), ((int(item),) if k else ())


def _entry(data: ItemText, item: int, k: int) -> str:
    return data.name(item) + (" " + " ".join([PLACEHOLDER] * k) if k else "")


def _item_list(data, items: Sequence[int], sep: str, k: int) -> Piece:
    text = sep.join(_entry(data, i, k) for i in items)
    return text, (tuple(int(i) for i in items) if k else ())


# ---- input slots: (ctx, data, k) -> (text, image items) -------------------------------
def _user_name(ctx, data) -> str:
    if data.user_buckets:
        return user_token(ctx.user, data.user_buckets)
    return str(user_number(ctx.user))


def _user_id(ctx, data, k) -> Piece:
    return _user_name(ctx, data) + data.profile(ctx.user), ()


def _user_token(ctx, data, k) -> Piece:
    if not data.user_buckets:
        raise DataError("prompt slot 'user_token' needs user tokens (set model.user_tokens)")
    return user_token(ctx.user, data.user_buckets), ()


def _user_desc(ctx, data, k) -> Piece:
    name = _clean(ctx.user_name or "") or f"user_{_user_name(ctx, data)}"
    return name + data.profile(ctx.user), ()


def _history(ctx, data, k) -> Piece:
    return _item_list(data, ctx.history, ctx.separator, k)


def _candidates(ctx, data, k) -> Piece:
    # the paper always lists candidates with commas, in training too
    return _item_list(data, ctx.candidates, COMMA, k)


def _item_id(ctx, data, k) -> Piece:
    return data.name(_need(ctx, "item", "item_id")), ()


def _item_photo(ctx, data, k) -> Piece:
    return _photo(_need(ctx, "item", "item_photo"), k)


def _item_title(ctx, data, k) -> Piece:
    title = data.titles[_need(ctx, "item", "item_title")]
    return (_clean(title or "") or UNKNOWN_TITLE), ()


def _headline(ctx, data, k) -> Piece:
    return _clean(_need(ctx, "summary", "review_headline")), ()


def _star(ctx, data, k) -> Piece:
    return str(int(round(float(_need(ctx, "rating", "star_rating"))))), ()


def _feature(ctx, data, k) -> Piece:
    return _clean(_need(ctx, "feature", "feature")), ()


INPUT_RENDERERS: dict[str, Callable[[PromptContext, Any, int], Piece]] = {
    "user_id": _user_id, "user_token": _user_token, "user_desc": _user_desc,
    "purchase_history": _history,
    "candidates": _candidates, "item_id": _item_id, "item_photo": _item_photo,
    "item_title": _item_title, "review_headline": _headline, "star_rating": _star,
    "feature": _feature,
}


# ---- target slots: (ctx, data) -> text -------------------------------------------------
def _target_item(ctx, data) -> str:
    return data.name(_need(ctx, "target", "item_id"))


def _yes_no(ctx, data) -> str:
    return "yes" if _need(ctx, "label", "yes_no") else "no"


def _explanation(ctx, data) -> str:
    return _clean(_need(ctx, "explanation", "explanation"))


TARGET_RENDERERS: dict[str, Callable[[PromptContext, Any], str]] = {
    "item_id": _target_item, "groundtruth_item_ids": _target_item, "yes_no": _yes_no,
    "explanation": _explanation, "star_rating": lambda ctx, data: _star(ctx, data, 0)[0],
}


def render(template: Template, ctx: PromptContext, data, image_tokens: int = 2,
           with_target: bool = True) -> Rendered:
    """Fill ``template`` from ``ctx``; ``data`` is an :class:`ItemText`, or a dataset
    (anything with ``numbers`` and ``titles`` per item: items named by number).

    With ``with_target=False`` (inference) the target is ``None`` and its fields may be
    missing from ``ctx``.
    """
    if not isinstance(data, ItemText):
        data = ItemText(data)
    if template.separator is not None:
        ctx = dataclasses.replace(ctx, separator=template.separator)
    if image_tokens < 0:
        raise ValueError(f"image_tokens must be >= 0, got {image_tokens}")
    texts, items = [], []
    for slot in template.input_slots:
        text, slot_items = INPUT_RENDERERS[slot](ctx, data, image_tokens)
        texts.append(text)
        items.extend(slot_items)
    target = None
    if with_target:
        target = template.target.format(*(TARGET_RENDERERS[s](ctx, data)
                                          for s in template.target_slots))
    return Rendered(template.input.format(*texts), target, tuple(items))
