"""The template table: 29 rows, the paper's exact strings, held-out and seen markers."""

from __future__ import annotations

import pytest

from mfmrec.errors import ConfigError
from mfmrec.models.vip5.prompts.templates import (
    BY_ID,
    HELD_OUT,
    SEEN_EVAL,
    TEMPLATES,
    Template,
    get_template,
    templates_of,
)


def test_table_has_the_29_templates_in_three_families():
    ids = [t.id for t in TEMPLATES]
    assert ids == ([f"A-{i}" for i in range(1, 10)] + [f"B-{i}" for i in range(1, 9)]
                   + [f"C-{i}" for i in range(1, 13)])
    assert {t.task for t in TEMPLATES} == {"sequential", "direct", "explanation"}


def test_held_out_and_seen_markers():
    assert HELD_OUT == {"A": "A-9", "B": "B-8", "C": "C-12"}
    assert SEEN_EVAL == {"A": "A-3", "B": "B-5", "C": "C-3"}
    assert [t.id for t in TEMPLATES if t.held_out] == ["A-9", "B-8", "C-12"]
    training = [t.id for f in "ABC" for t in templates_of(f, training=True)]
    assert len(training) == 26 and not {"A-9", "B-8", "C-12"} & set(training)
    assert [t.id for t in templates_of("B", training=False)] == ["B-8"]


def test_exact_strings_with_real_newlines():
    assert BY_ID["A-1"].input == ("Given the following purchase history of user_{} : \n {} \n"
                                  " predict next possible item to be purchased by the user ?")
    assert "\\n" not in "".join(t.input for t in TEMPLATES)
    assert BY_ID["A-8"].input.startswith("According to {} 's purchase history list : \n {} \n")
    assert BY_ID["B-3"].input == "For {}, do you think it is good to recommend {} {} ?"
    # the paper's string has two spaces after the full stop; kept verbatim
    assert "user_{} .  Select the best item" in BY_ID["B-8"].input
    assert BY_ID["C-8"].input.endswith("( 1 being lowest and 5 being highest )")
    assert BY_ID["C-7"].target == BY_ID["C-8"].target == "{} , {}"
    assert {t.target for t in TEMPLATES if t.id not in ("C-7", "C-8")} == {"{}"}


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.id)
def test_every_hole_has_a_slot(template: Template):
    assert template.input.count("{}") == len(template.input_slots)
    assert template.target.count("{}") == len(template.target_slots)
    if "item_id" in template.input_slots and template.family != "A":
        # an item written by number is always followed by its photo
        pos = template.input_slots.index("item_id")
        assert template.input_slots[pos + 1] == "item_photo"


def test_slot_kinds_per_family():
    assert {t.target_slots for t in templates_of("A")} == {("item_id",), ("yes_no",)}
    assert [t.id for t in TEMPLATES if t.is_yes_no] == ["A-7", "A-8", "B-1", "B-2", "B-3",
                                                        "B-4"]
    assert [t.id for t in TEMPLATES if "candidates" in t.input_slots] == ["B-5", "B-6",
                                                                          "B-7", "B-8"]
    assert BY_ID["C-7"].target_slots == ("star_rating", "explanation")


def test_unknown_ids_are_config_errors():
    assert get_template("C-3") is BY_ID["C-3"]
    with pytest.raises(ConfigError, match="D-1"):
        get_template("D-1")
    with pytest.raises(ConfigError, match="family"):
        templates_of("D")


def test_a_malformed_row_is_refused():
    with pytest.raises(ValueError, match="holes"):
        Template("A-99", "A", "user_{} {}", ("user_id",), ("item_id",))
    with pytest.raises(ValueError, match="unknown slots"):
        Template("A-99", "A", "{}", ("colour",), ("item_id",))
