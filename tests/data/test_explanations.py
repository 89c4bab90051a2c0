"""The deterministic explanation/feature extractor, on hand-computed examples."""

from __future__ import annotations

from mfmrec.data.explanations import (
    METHOD,
    aspect_ranks,
    explain_one,
    extract_explanations,
    split_sentences,
)

TEXTS = [
    "The strap is long. The strap feels soft and the buckle holds well.",
    "Nice buckle on this strap! Great.",
    "Works.",
    "",
    "",
]
SUMMARIES = ["Five stars", "Good", "Good tone", "Solid strap", ""]


def test_split_sentences_handles_missing_space_after_full_stop():
    text = "It is affordable.I did not know.\nNew line here!  And more"
    assert split_sentences(text) == [
        "It is affordable.", "I did not know.", "New line here!", "And more"]
    assert split_sentences("") == []


def test_aspect_ranks_by_document_frequency_then_alphabet():
    # strap and buckle appear in 2 reviews each (tie -> alphabetical); feels/soft/holds in 1
    assert aspect_ranks(TEXTS, min_df=2) == {"buckle": 0, "strap": 1}
    assert aspect_ranks(TEXTS, min_df=1, vocab_size=3) == {"buckle": 0, "strap": 1, "feels": 2}


def test_extract_explanations_golden():
    out = extract_explanations(TEXTS, SUMMARIES)
    assert out.sentences == [
        "The strap feels soft and the buckle holds well.",  # holds the top aspect 'buckle'
        "Nice buckle on this strap!",  # 'Great.' is too short to be an explanation
        "Works.",  # fallback: the first sentence
        "Solid strap",  # fallback: no text, the summary
        "",
    ]
    # fallbacks: 'tone' is the summary's first candidate word; 'strap' a known aspect
    assert out.features == ["buckle", "buckle", "tone", "strap", None]
    assert out.meta["method"] == METHOD
    assert out.meta["with_aspect_sentence"] == 2
    assert out.meta["without_feature"] == 1
    assert out.meta["top_aspects"] == ["buckle", "strap"]


def test_long_sentences_are_cut_to_max_words():
    long = " ".join(f"word{k}" for k in range(50)) + "."
    sentence, feature, found = explain_one(long, "", {}, max_words=40)
    assert sentence.split() == [f"word{k}" for k in range(40)]
    assert (feature, found) == (None, False)


def test_result_does_not_depend_on_review_order():
    forward = extract_explanations(TEXTS, SUMMARIES)
    backward = extract_explanations(TEXTS[::-1], SUMMARIES[::-1])
    assert backward.sentences[::-1] == forward.sentences
    assert backward.features[::-1] == forward.features
