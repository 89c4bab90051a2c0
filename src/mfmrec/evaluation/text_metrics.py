"""Text metrics for explanation generation: BLEU-4 and ROUGE-1/2/L, always x100.

Two labelled modes, because published numbers depend on the exact definition:

``standard``
    sacrebleu's corpus BLEU (BLEU-4, its default ``13a`` tokenizer and default ``exp``
    smoothing) and rouge-score's F1 (its default tokenizer: lower-cased alphanumeric
    tokens, no stemmer), ROUGE averaged over sentence pairs.

``p5``
    The definitions used by the P5/VIP5 papers, implemented here from the formulas, on
    whitespace tokens taken verbatim (no lower-casing):

    * corpus BLEU-4 without smoothing: modified n-gram precisions ``p_n`` (each
      hypothesis n-gram count clipped by the reference count, summed over the corpus),
      ``BLEU = BP * exp(mean(log p_1..p_4))`` and ``0`` if any ``p_n`` is 0; brevity
      penalty ``BP = exp(1 - r/c)`` when the hypothesis length ``c <= r`` (reference
      length, both summed over the corpus), else 1;
    * ROUGE-N F1 per sentence pair from clipped n-gram overlap (``P = overlap / #hyp
      n-grams``, ``R = overlap / #ref n-grams``, ``F1 = 2PR / (P + R)``), ROUGE-L F1 from
      the longest common subsequence of tokens; averaged over pairs.

Nothing is computed on characters.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import sacrebleu

TEXT_MODES = ("standard", "p5")
TEXT_METRICS = ("BLEU-4", "ROUGE-1", "ROUGE-2", "ROUGE-L")


def _check(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        raise ValueError("no sentence pairs to score")
    for text in (*hypotheses, *references):
        if not isinstance(text, str):
            raise TypeError(f"expected strings, got {type(text).__name__}: {text!r}")


# ---- p5 mode: formulas on whitespace tokens -----------------------------------------
def ngram_counts(tokens: Sequence[str], n: int) -> Counter:
    """Multiset of the n-grams (tuples) of ``tokens``."""
    return Counter(tuple(tokens[i: i + n]) for i in range(len(tokens) - n + 1))


def clipped_overlap(hyp: Sequence[str], ref: Sequence[str], n: int) -> int:
    """Hypothesis n-grams matched in the reference, each counted at most as often as
    it occurs there."""
    h, r = ngram_counts(hyp, n), ngram_counts(ref, n)
    return sum(min(c, r[g]) for g, c in h.items())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (dynamic programming, O(len a * len b))."""
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, start=1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def _f1(overlap: int, hyp_total: int, ref_total: int) -> float:
    if overlap == 0 or hyp_total == 0 or ref_total == 0:
        return 0.0
    p, r = overlap / hyp_total, overlap / ref_total
    return 2 * p * r / (p + r)


def bleu_p5(hypotheses: Sequence[str], references: Sequence[str], max_n: int = 4) -> float:
    """Corpus BLEU-``max_n`` without smoothing on whitespace tokens, x100."""
    _check(hypotheses, references)
    matches, possible = [0] * max_n, [0] * max_n
    c = r = 0
    for hyp_text, ref_text in zip(hypotheses, references, strict=True):
        hyp, ref = hyp_text.split(), ref_text.split()
        c, r = c + len(hyp), r + len(ref)
        for n in range(1, max_n + 1):
            matches[n - 1] += clipped_overlap(hyp, ref, n)
            possible[n - 1] += max(len(hyp) - n + 1, 0)
    if c == 0 or min(matches) == 0:
        return 0.0  # no smoothing: a zero precision zeroes the geometric mean
    log_mean = sum(math.log(m / p) for m, p in zip(matches, possible, strict=True)) / max_n
    bp = 1.0 if c > r else math.exp(1 - r / c)
    return 100.0 * bp * math.exp(log_mean)


def rouge_p5(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """ROUGE-1/2/L F1 per sentence pair on whitespace tokens, averaged, x100."""
    _check(hypotheses, references)
    totals = dict.fromkeys(TEXT_METRICS[1:], 0.0)
    for hyp_text, ref_text in zip(hypotheses, references, strict=True):
        hyp, ref = hyp_text.split(), ref_text.split()
        for n in (1, 2):
            totals[f"ROUGE-{n}"] += _f1(clipped_overlap(hyp, ref, n),
                                        max(len(hyp) - n + 1, 0), max(len(ref) - n + 1, 0))
        totals["ROUGE-L"] += _f1(lcs_length(hyp, ref), len(hyp), len(ref))
    return {k: 100.0 * v / len(hypotheses) for k, v in totals.items()}


# ---- standard mode: the reference libraries ------------------------------------------
def bleu_standard(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """sacrebleu corpus BLEU-4 (x100, its default tokenizer and smoothing)."""
    _check(hypotheses, references)
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)


def rouge_standard(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """rouge-score F1 for ROUGE-1/2/L averaged over sentence pairs, x100."""
    from rouge_score import rouge_scorer  # lazy: pulls nltk and scipy (~1.3 s); standard mode only

    _check(hypotheses, references)
    keys = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L"}
    scorer = rouge_scorer.RougeScorer(list(keys), use_stemmer=False)
    totals = dict.fromkeys(keys.values(), 0.0)
    for hyp, ref in zip(hypotheses, references, strict=True):
        scores = scorer.score(ref, hyp)  # rouge-score takes (target, prediction)
        for key, name in keys.items():
            totals[name] += scores[key].fmeasure
    return {k: 100.0 * v / len(hypotheses) for k, v in totals.items()}


def text_metrics(
    hypotheses: Sequence[str], references: Sequence[str], mode: str = "p5"
) -> dict[str, float]:
    """``{"BLEU-4", "ROUGE-1", "ROUGE-2", "ROUGE-L"}`` (x100) in the given mode."""
    if mode == "p5":
        return {"BLEU-4": bleu_p5(hypotheses, references), **rouge_p5(hypotheses, references)}
    if mode == "standard":
        return {"BLEU-4": bleu_standard(hypotheses, references),
                **rouge_standard(hypotheses, references)}
    raise ValueError(f"text metric mode must be one of {TEXT_MODES}, got {mode!r}")
