"""Rendering without a tokenizer: golden strings, slot rules, image items."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from mfmrec.errors import DataError
from mfmrec.models.vip5.prompts.render import ARROW, PromptContext, render
from mfmrec.models.vip5.prompts.templates import BY_ID

# item i has prompt number NUMBERS[i]
DATA = SimpleNamespace(numbers=np.array([17, 4, 250, 9]),
                       titles=["red lipstick", None, "rose <extra_id_0> perfume", "toner"])
PH = "<extra_id_0>"


def test_sequential_history_with_two_image_tokens_per_item():
    ctx = PromptContext(user=6, history=[0, 2], target=3)
    out = render(BY_ID["A-3"], ctx, DATA, image_tokens=2)
    assert out.text == (f"Here is the purchase history list of user_7 : \n 17 {PH} {PH} , "
                        f"250 {PH} {PH} \n try to recommend next item to the user")
    assert out.target == "9"
    assert out.image_items == (0, 2)


def test_arrow_separator_and_text_only():
    ctx = PromptContext(user=0, history=[1, 0, 3], target=2, separator=ARROW)
    out = render(BY_ID["A-1"], ctx, DATA, image_tokens=0)
    assert "user_1 : \n 4 -> 17 -> 9 \n predict" in out.text
    assert PH not in out.text and out.image_items == ()


def test_user_desc_is_the_name_or_a_numbered_fallback():
    named = render(BY_ID["A-6"], PromptContext(user=2, user_name=" Ann  Lee ", history=[0],
                                               target=1), DATA, 1)
    assert named.text.startswith("Here is the purchase history of Ann Lee : \n 17 ")
    anon = render(BY_ID["A-6"], PromptContext(user=2, history=[0], target=1), DATA, 1)
    assert anon.text.startswith("Here is the purchase history of user_3 : ")


def test_yes_no_asks_about_one_item_after_the_history():
    ctx = PromptContext(user=0, history=[0, 1], item=3, label=False)
    out = render(BY_ID["A-7"], ctx, DATA, image_tokens=1)
    assert out.text.endswith(f"does the user likely to buy 9 {PH} next ?")
    assert out.target == "no" and out.image_items == (0, 1, 3)
    out = render(BY_ID["B-1"], PromptContext(user=4, item=2, label=True), DATA, 3)
    assert out.text == f"Will user_5 likely to interact with item_250 {PH} {PH} {PH} ?"
    assert out.target == "yes" and out.image_items == (2,)


def test_titles_unknown_and_sentinels_removed():
    out = render(BY_ID["B-4"], PromptContext(user=0, item=1, label=True), DATA, 1)
    assert out.text.endswith(f"Is the following item a good choice ? \n unknown title {PH}")
    out = render(BY_ID["B-3"], PromptContext(user=0, user_name="Bo", item=2, label=True),
                 DATA, 1)
    # a title holding the placeholder must not add an image slot
    assert out.text == f"For Bo, do you think it is good to recommend rose perfume {PH} ?"
    assert out.text.count(PH) == 1


def test_candidates_always_use_commas():
    ctx = PromptContext(user=1, candidates=[3, 0, 1], target=0, separator=ARROW)
    out = render(BY_ID["B-7"], ctx, DATA, 1)
    assert out.text.endswith(f"user_2 : \n 9 {PH} , 17 {PH} , 4 {PH}")
    assert out.target == "17" and out.image_items == (3, 0, 1)


def test_explanation_targets_and_ratings():
    ctx = PromptContext(user=0, item=0, rating=4.6, summary="Lovely", feature="sound",
                        explanation="great  sound")
    out = render(BY_ID["C-7"], ctx, DATA, 2)
    assert out.text == ("Predict the star rating , then use sound as feature word to generate "
                        f"user_1 's purchase explanation for item_17 {PH} {PH}")
    assert out.target == "5 , great sound"
    out = render(BY_ID["C-3"], ctx, DATA, 2)
    assert out.text == (f"Help user_1 generate a 5-star explanation about this product : \n "
                        f"red lipstick {PH} {PH}")
    assert out.target == "great sound"
    out = render(BY_ID["C-2"], ctx, DATA, 0)
    assert out.text.startswith("Given the following review headline \n Lovely \n can you")


def test_missing_fields_name_the_slot():
    with pytest.raises(DataError, match="feature"):
        render(BY_ID["C-9"], PromptContext(user=0, item=0, explanation="x"), DATA, 1)
    out = render(BY_ID["C-9"], PromptContext(user=0, item=0, feature="hue"), DATA, 1,
                 with_target=False)
    assert out.target is None and out.text.startswith("Based on the feature word hue ,")


def test_semantic_names_replace_numbers_in_inputs_and_targets():
    from mfmrec.models.vip5.prompts.render import ItemText

    names = ["<a_1><b_0>", "<a_0><b_2>", "<a_1><b_1>", "<a_2><b_0>"]
    items = ItemText(DATA, names)
    ctx = PromptContext(user=6, history=[0, 2], target=3)
    out = render(BY_ID["A-3"], ctx, items, image_tokens=1)
    assert f"<a_1><b_0> {PH} , <a_1><b_1> {PH}" in out.text
    assert out.target == "<a_2><b_0>" and "17" not in out.text
    out = render(BY_ID["B-1"], PromptContext(user=4, item=1, label=True), items, 1)
    assert "<a_0><b_2>" in out.text and "4 " not in out.text.split("item_")[-1]


def test_bare_template_is_a_user_token_and_space_joined_names():
    from mfmrec.models.vip5.prompts.render import ItemText, user_token
    from mfmrec.models.vip5.prompts.templates import TEMPLATES

    names = ["<a_1>", "<a_0>", "<a_2>", "<a_3>"]
    ctx = PromptContext(user=6, history=[0, 2, 1], target=3, separator=ARROW)
    out = render(BY_ID["A-bare"], ctx, ItemText(DATA, names, user_buckets=50), 0)
    assert out.text == f"{user_token(6, 50)} <a_1> <a_2> <a_0>"
    assert out.target == "<a_3>"
    # the user's index modulo the buckets: one token per user when there are enough
    assert user_token(6, 50) == "<u_6>" and user_token(56, 50) == "<u_6>"
    assert len({user_token(u, 200) for u in range(200)}) == 200
    # with user tokens every user slot holds the token, not the number
    out = render(BY_ID["A-3"], ctx, ItemText(DATA, names, user_buckets=50), 0)
    assert "user_<u_6> :" in out.text
    with pytest.raises(DataError, match="user tokens"):
        render(BY_ID["A-bare"], ctx, ItemText(DATA, names), 0)
    assert "A-bare" not in {t.id for t in TEMPLATES}  # not one of the paper's 29
