"""Text metrics in both modes against hand-worked sentence pairs."""

import math

import pytest

from mfmrec.evaluation.text_metrics import (
    bleu_p5,
    bleu_standard,
    clipped_overlap,
    lcs_length,
    rouge_p5,
    rouge_standard,
    text_metrics,
)

H1, R1 = "the cat sat on the mat", "the cat is on the mat"
H2 = R2 = "a b c d e"


def test_building_blocks():
    # unigrams of H1 vs R1: the x2, cat, on, mat match; "sat" does not -> 5
    assert clipped_overlap(H1.split(), R1.split(), 1) == 5
    # "the the the" vs "the cat": "the" clipped to the reference count 1
    assert clipped_overlap(["the", "the", "the"], ["the", "cat"], 1) == 1
    # LCS: the cat _ on the mat -> 5; order matters for "b a" vs "a b" -> 1
    assert lcs_length(H1.split(), R1.split()) == 5
    assert lcs_length(["b", "a"], ["a", "b"]) == 1
    assert lcs_length([], ["a"]) == 0


def test_bleu_p5_single_pair_without_smoothing_is_zero():
    # 4-grams of H1 (the cat sat on / cat sat on the / sat on the mat) never occur in R1
    # -> p4 = 0 and, without smoothing, BLEU = 0
    assert bleu_p5([H1], [R1]) == 0.0


def test_bleu_p5_corpus_by_hand():
    # corpus = (H1, R1) + (H2, R2 identical), counts summed over both pairs:
    # p1 = (5+5)/(6+5) = 10/11   p2 = (3+4)/(5+4) = 7/9
    # p3 = (1+3)/(4+3) = 4/7     p4 = (0+2)/(3+2) = 2/5
    # c = r = 11 -> BP = 1;  BLEU = (10/11 * 7/9 * 4/7 * 2/5) ** (1/4) = (16/99) ** 0.25
    assert bleu_p5([H1, H2], [R1, R2]) == pytest.approx(100 * (16 / 99) ** 0.25)  # 63.40...


def test_bleu_p5_brevity_penalty():
    # every n-gram of "a b c d" is in the reference -> all p_n = 1
    # c = 4 <= r = 8 -> BP = exp(1 - 8/4) = exp(-1)
    assert bleu_p5(["a b c d"], ["a b c d e f g h"]) == pytest.approx(100 * math.exp(-1))
    # a longer hypothesis has no penalty: "a b c d e" vs "a b c d": p = 4/5, 3/4, 2/3, 1/2
    expected = 100 * (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25
    assert bleu_p5(["a b c d e"], ["a b c d"]) == pytest.approx(expected)
    assert bleu_p5([""], ["a b"]) == 0.0


def test_rouge_p5_by_hand():
    # H1/R1: R-1 overlap 5 of 6 and 6 -> F1 = 5/6; R-2 overlap 3 of 5 and 5 -> 3/5;
    # R-L: LCS 5 of 6 and 6 -> 5/6
    assert rouge_p5([H1], [R1]) == pytest.approx(
        {"ROUGE-1": 500 / 6, "ROUGE-2": 60.0, "ROUGE-L": 500 / 6})
    # "the cat sat" vs "the cat sat on the mat": R-1 P = 3/3, R = 3/6 -> F1 = 2/3;
    # R-2 P = 2/2, R = 2/5 -> F1 = 2 * 0.4 / 1.4 = 4/7; R-L = LCS 3 -> 2/3
    short = rouge_p5(["the cat sat"], ["the cat sat on the mat"])
    assert short == pytest.approx({"ROUGE-1": 200 / 3, "ROUGE-2": 400 / 7, "ROUGE-L": 200 / 3})
    # averaged over pairs, not pooled: (5/6 + 2/3) / 2 = 3/4
    pair_mean = rouge_p5([H1, "the cat sat"], [R1, "the cat sat on the mat"])
    assert pair_mean["ROUGE-1"] == pytest.approx(75.0)
    # clipping: "the the the" vs "the cat": P = 1/3, R = 1/2 -> F1 = 0.4
    assert rouge_p5(["the the the"], ["the cat"])["ROUGE-1"] == pytest.approx(40.0)
    # order: "b a" vs "a b": R-1 = 1, R-2 = 0, R-L = LCS 1 -> 0.5
    assert rouge_p5(["b a"], ["a b"]) == pytest.approx(
        {"ROUGE-1": 100.0, "ROUGE-2": 0.0, "ROUGE-L": 50.0})


def test_standard_mode_libraries():
    assert bleu_standard([H2], [R2]) == pytest.approx(100.0)
    # "a b c d e" vs "a b c d f": p = 4/5, 3/4, 2/3, 1/2, BP = 1 (no zero, no smoothing
    # effect) -> the same value as the formula in p5 mode
    expected = 100 * (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25  # 66.87
    assert bleu_standard(["a b c d e"], ["a b c d f"]) == pytest.approx(expected)
    assert bleu_p5(["a b c d e"], ["a b c d f"]) == pytest.approx(expected)
    assert rouge_standard([H1], [R1]) == pytest.approx(rouge_p5([H1], [R1]))


def test_modes_differ_where_documented():
    # standard tokenizers split punctuation / lower-case; p5 compares whitespace tokens
    # verbatim: "Mat." != "mat" -> 5 of 6 unigrams
    hyp, ref = "the cat sat on the Mat.", "the cat sat on the mat"
    assert rouge_standard([hyp], [ref])["ROUGE-1"] == pytest.approx(100.0)
    assert rouge_p5([hyp], [ref])["ROUGE-1"] == pytest.approx(500 / 6)
    # sacrebleu smooths a zero 4-gram precision; p5 mode does not
    assert bleu_standard([H1], [R1]) > 0.0
    assert bleu_p5([H1], [R1]) == 0.0


def test_text_metrics_keys_and_errors():
    for mode in ("standard", "p5"):
        out = text_metrics([R1], [R1], mode)
        assert out == pytest.approx(
            {"BLEU-4": 100.0, "ROUGE-1": 100.0, "ROUGE-2": 100.0, "ROUGE-L": 100.0})
    with pytest.raises(ValueError, match="mode"):
        text_metrics([R1], [R1], "chars")
    with pytest.raises(ValueError):
        text_metrics([R1], [], "p5")
    with pytest.raises(ValueError):
        text_metrics([], [], "p5")
    with pytest.raises(TypeError):
        text_metrics([None], [R1], "p5")
