"""The 29 VIP5 prompt templates, as data.

Each template has an input string and a target string with positional ``{}`` holes, and
the names of the slots that fill them, in order. Rendering (``render.py``) has one
function per slot kind, so adding a template is adding a row here.

Families (the paper's three task families):

* ``A`` sequential recommendation (A-1 .. A-9),
* ``B`` direct recommendation (B-1 .. B-8),
* ``C`` explanation generation (C-1 .. C-12).

Beyond the paper, ``BARE_TEMPLATES`` holds ``A-bare``: TIGER's input, a hashed user token
and the history's item names joined by spaces, with no prompt text. It is used only when
named (``model.templates``, ``--prompts``), never in VIP5's default training mix.

``held_out`` templates (A-9, B-8, C-12) never appear in training; they measure zero-shot
generalisation to unseen prompts. ``seen_eval`` templates (A-3, B-5, C-3) are the
training prompts the paper reports its main evaluation with.

The strings are the paper's, with real newline characters where its code has ``\\n``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mfmrec.errors import ConfigError
from mfmrec.models.base import PROMPT_FAMILIES as FAMILIES

#: Slots an input string may name; each has one renderer in ``render.py``.
INPUT_SLOTS = frozenset({
    "user_id", "user_token", "user_desc", "purchase_history", "candidates", "item_id", "item_photo",
    "item_title", "review_headline", "star_rating", "feature",
})
#: Slots a target string may name.
TARGET_SLOTS = frozenset({"item_id", "yes_no", "groundtruth_item_ids", "explanation",
                          "star_rating"})


@dataclass(frozen=True)
class Template:
    """One prompt: ``input.format(*input slots)`` -> ``target.format(*target slots)``."""

    id: str
    family: str
    input: str
    input_slots: tuple[str, ...]
    target_slots: tuple[str, ...]
    target: str = "{}"
    held_out: bool = False
    seen_eval: bool = False
    separator: str | None = None  # joins the history; None: " , " or " -> " (the paper's)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES or not self.id.startswith(self.family + "-"):
            raise ValueError(f"template {self.id}: family {self.family!r} does not match")
        for text, slots, known in ((self.input, self.input_slots, INPUT_SLOTS),
                                   (self.target, self.target_slots, TARGET_SLOTS)):
            if text.count("{}") != len(slots):
                raise ValueError(f"template {self.id}: {text.count('{}')} holes but "
                                 f"{len(slots)} slots {slots}")
            unknown = set(slots) - known
            if unknown:
                raise ValueError(f"template {self.id}: unknown slots {sorted(unknown)}")

    @property
    def task(self) -> str:
        """``sequential`` / ``direct`` / ``explanation``."""
        return FAMILIES[self.family]

    @property
    def slots(self) -> tuple[str, ...]:
        return self.input_slots + self.target_slots

    @property
    def is_yes_no(self) -> bool:
        """Binary templates ask about one item and expect ``yes``/``no``."""
        return self.target_slots == ("yes_no",)

    @property
    def lists_items(self) -> bool:
        """Whether the input holds a history or candidate list (truncatable)."""
        return "purchase_history" in self.input_slots or "candidates" in self.input_slots


def _t(tid: str, text: str, slots: str, targets: str = "item_id", **kw) -> Template:
    return Template(id=tid, family=tid[0], input=text, input_slots=tuple(slots.split()),
                    target_slots=tuple(targets.split()), **kw)


_H = "user_id purchase_history"
_D = "user_desc purchase_history"
_YN = "yes_no"
_GT = "groundtruth_item_ids"
_EX = "explanation"

TEMPLATES: tuple[Template, ...] = (
    # ---- A: sequential recommendation ------------------------------------------------
    _t("A-1", "Given the following purchase history of user_{} : \n {} \n predict next "
              "possible item to be purchased by the user ?", _H),
    _t("A-2", "I find the purchase history list of user_{} : \n {} \n I wonder what is the "
              "next item to recommend to the user . Can you help me decide ?", _H),
    _t("A-3", "Here is the purchase history list of user_{} : \n {} \n try to recommend next "
              "item to the user", _H, seen_eval=True),
    _t("A-4", "Given the following purchase history of {} : \n {} \n predict next possible "
              "item for the user", _D),
    _t("A-5", "Based on the purchase history of {} : \n {} \n Can you decide the next item "
              "likely to be purchased by the user ?", _D),
    _t("A-6", "Here is the purchase history of {} : \n {} \n What to recommend next for the "
              "user ?", _D),
    _t("A-7", "user_{} has the following purchase history : \n {} \n does the user likely to "
              "buy {} {} next ?", _H + " item_id item_photo", _YN),
    _t("A-8", "According to {} 's purchase history list : \n {} \n Predict whether the user "
              "will purchase {} {} next ?", _D + " item_id item_photo", _YN),
    _t("A-9", "According to the purchase history of {} : \n {} \n Can you recommend the next "
              "possible item to the user ?", _D, held_out=True),
    # ---- B: direct recommendation ----------------------------------------------------
    _t("B-1", "Will user_{} likely to interact with item_{} {} ?",
       "user_id item_id item_photo", _YN),
    _t("B-2", "Shall we recommend item_{} {} to {} ?", "item_id item_photo user_desc", _YN),
    _t("B-3", "For {}, do you think it is good to recommend {} {} ?",
       "user_desc item_title item_photo", _YN),
    _t("B-4", "I would like to recommend some items for user_{} . Is the following item a "
              "good choice ? \n {} {}", "user_id item_title item_photo", _YN),
    _t("B-5", "Which item of the following to recommend for {} ? \n {}",
       "user_desc candidates", _GT, seen_eval=True),
    _t("B-6", "Choose the best item from the candidates to recommend for {} ? \n {}",
       "user_desc candidates", _GT),
    _t("B-7", "Pick the most suitable item from the following list and recommend to "
              "user_{} : \n {}", "user_id candidates", _GT),
    _t("B-8", "We want to make recommendation for user_{} .  Select the best item from these "
              "candidates : \n {}", "user_id candidates", _GT, held_out=True),
    # ---- C: explanation generation ---------------------------------------------------
    _t("C-1", "Generate an explanation for user_{} about this product : {} {}",
       "user_id item_title item_photo", _EX),
    _t("C-2", "Given the following review headline \n {} \n can you help generate an "
              "explanation of user_{} for item_{} {} ?",
       "review_headline user_id item_id item_photo", _EX),
    _t("C-3", "Help user_{} generate a {}-star explanation about this product : \n {} {}",
       "user_id star_rating item_title item_photo", _EX, seen_eval=True),
    _t("C-4", "Generate an explanation for {} about this product : {} {}",
       "user_desc item_title item_photo", _EX),
    _t("C-5", "Based on the following review headline : \n {} \n Generate {} 's purchase "
              "explanation about {} {}", "review_headline user_desc item_title item_photo", _EX),
    _t("C-6", "Help {} generate a {}-star explanation for item_{} {}",
       "user_desc star_rating item_id item_photo", _EX),
    _t("C-7", "Predict the star rating , then use {} as feature word to generate user_{} 's "
              "purchase explanation for item_{} {}", "feature user_id item_id item_photo",
       "star_rating explanation", target="{} , {}"),
    _t("C-8", "What score will {} rate item_{} {} ? Then give an explanation for the rating "
              "score . ( 1 being lowest and 5 being highest )",
       "user_desc item_id item_photo", "star_rating explanation", target="{} , {}"),
    _t("C-9", "Based on the feature word {} , generate an explanation for user_{} about this "
              "product : {} {}", "feature user_id item_title item_photo", _EX),
    _t("C-10", "Given the word {} , can you help generate an explanation for {} about the "
               "product : \n {} {}", "feature user_desc item_title item_photo", _EX),
    _t("C-11", "Using the word {} , write a {}-star explanation for user_{} about item_{} {}",
       "feature star_rating user_id item_id item_photo", _EX),
    _t("C-12", "According to the feature word {} , generate a {}-star explanation for {} "
               "about item_{} {}", "feature star_rating user_desc item_id item_photo", _EX,
       held_out=True),
)

#: Inputs that are not the paper's prompts: used only when named.
BARE_TEMPLATES: tuple[Template, ...] = (
    _t("A-bare", "{} {}", "user_token purchase_history", separator=" "),
)

BY_ID: dict[str, Template] = {t.id: t for t in TEMPLATES + BARE_TEMPLATES}

#: The paper's seen-prompt evaluation template of each family.
SEEN_EVAL = {t.family: t.id for t in TEMPLATES if t.seen_eval}
#: The held-out (zero-shot) template of each family.
HELD_OUT = {t.family: t.id for t in TEMPLATES if t.held_out}


def get_template(template_id: str) -> Template:
    """The template with this id (``"A-3"``); a ConfigError names the known ids."""
    try:
        return BY_ID[template_id]
    except KeyError:
        raise ConfigError(f"unknown prompt template {template_id!r} (known: A-1..A-9, "
                          "B-1..B-8, C-1..C-12, A-bare)") from None


def templates_of(family: str, training: bool | None = None) -> list[Template]:
    """The templates of one family; ``training=True`` drops held-out ones, ``False`` keeps
    only them, ``None`` keeps all."""
    if family not in FAMILIES:
        raise ConfigError(f"unknown prompt family {family!r} (known: A, B, C)")
    out = [t for t in TEMPLATES if t.family == family]
    if training is None:
        return out
    return [t for t in out if t.held_out != training]
