"""Derive an explanation sentence and a feature word from raw review text.

VIP5's explanation prompts need, per review, a short explanation sentence and the
feature (aspect) it talks about. P5 took them from the Sentires toolkit; a raw Amazon
dump has only the review text. :func:`extract_explanations` is a documented,
deterministic stand-in (no POS tagger, no model, no randomness):

1. **Candidate words** are lowercase alphabetic tokens of 3+ letters that are not in
   :data:`STOP_WORDS` (function words plus the verbs, adjectives and adverbs that
   dominate reviews: ``great``, ``works``, ``really``...), so what is left is mostly
   nouns such as ``sound``, ``strings``, ``price``.
2. **Aspect vocabulary**: the ``vocab_size`` candidate words with the highest document
   frequency over all review texts, each appearing in at least ``min_df`` reviews.
   A word's rank is (document frequency descending, then alphabetical).
3. **Per review**: the text is split into sentences (``.``, ``!``, ``?``, newlines;
   Amazon texts often lack the space after a full stop, so ``word.Next`` splits too).
   Among sentences of ``min_words``..``max_words`` words, the one containing the
   best-ranked aspect word wins (earliest sentence on ties); that word is the feature.
4. **Fallbacks**: with no such sentence the explanation is the first sentence of
   acceptable length, else the first sentence cut to ``max_words`` words, else the
   summary; the feature is the best-ranked aspect word anywhere in text or summary,
   else the first candidate word of the summary, else ``None``.

The method and its parameters are recorded in ``dataset.json`` under ``explanations``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

METHOD = "mfmrec.aspect-sentence/v1"

_WORD = re.compile(r"[a-z]+")
# a sentence ends at . ! ? (also when the next sentence follows without a space) or a newline
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[a-z][.!?])(?=[A-Z])|\n+")

_STOP_TEXT = """
a able about above absolutely actually after again against all almost along already also
although always am amazing amazon among an and another any anyone anything anyway are
aren around as at away awesome back bad be because been before being below best better
between big bit both bought but buy buying by came can cannot certainly cheap come comes
completely cool could couldn couple day days definitely did didn different do does doesn
doing don done down during each easily easy eight either else enough especially etc even
ever every everyone everything exactly excellent expensive extremely fairly far fast
feel felt few find fine first five for found four from full further get gets getting
give going good got great guy guys had hadn half happy hard has hasn have haven having
he heavy her here hers herself high highly him himself his how however into isn item
items its itself just keep know last least less let light like liked likely likes little
ll long look looked looking looks lot lots love loved loves low made make makes making
many may maybe might mine month months more most much must myself need needed needs
neither never new next nice nine nor not nothing now off often okay old once one ones
only onto order ordered other others otherwise our ours ourselves out over overall own
people per perfect perhaps play played playing pretty probably product products purchase
purchased put quick quite rather real really recommend recommended review reviews right
said same say see seem seemed seems seen set seven several shall she should shouldn
simple simply since six slow small solid some somehow someone something sometimes star
stars still sturdy such super sure take tell ten than thank thanks that the their theirs
them themselves then there these they thing things think this those though thought three
through thus time times told too totally toward towards tried try two under until upon
use used uses using very via want wanted wants was wasn way ways week weeks well went
were weren what whatever when where whether which while who whom whose why will with
within without won work worked working works worse worst would wouldn year years yes yet
you your yours yourself yourselves
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())


@dataclass(frozen=True)
class Explanations:
    """One explanation sentence and feature word per review, and how they were made."""

    sentences: list[str]
    features: list[str | None]
    meta: dict = field(default_factory=dict)


def _candidates(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if len(w) >= 3 and w not in STOP_WORDS]


def split_sentences(text: str) -> list[str]:
    """Split review text into stripped, non-empty sentences."""
    return [s.strip() for s in _SENTENCE_END.split(text or "") if s and s.strip()]


def aspect_ranks(texts: Sequence[str], min_df: int = 2, vocab_size: int = 500) -> dict[str, int]:
    """Aspect word -> rank (0 = most frequent) by document frequency over ``texts``."""
    df: Counter[str] = Counter()
    for text in texts:
        df.update(set(_candidates(text)))
    ranked = sorted((w for w, c in df.items() if c >= min_df), key=lambda w: (-df[w], w))
    return {w: r for r, w in enumerate(ranked[:vocab_size])}


def _best_word(words: list[str], ranks: dict[str, int]) -> str | None:
    known = [w for w in words if w in ranks]
    return min(known, key=ranks.__getitem__) if known else None


def explain_one(
    text: str, summary: str, ranks: dict[str, int], min_words: int = 4, max_words: int = 40
) -> tuple[str, str | None, bool]:
    """(explanation, feature, found) for one review; ``found`` is False on fallback."""
    sentences = split_sentences(text)
    fitting = [s for s in sentences if min_words <= len(s.split()) <= max_words]
    best: tuple[int, str, str] | None = None  # (rank, word, sentence)
    for sentence in fitting:
        word = _best_word(_candidates(sentence), ranks)
        if word is not None and (best is None or ranks[word] < best[0]):
            best = (ranks[word], word, sentence)
    if best is not None:
        return best[2], best[1], True
    if fitting:
        sentence = fitting[0]
    elif sentences:
        sentence = " ".join(sentences[0].split()[:max_words])
    else:
        sentence = (summary or "").strip()
    feature = _best_word(_candidates(f"{text} {summary}"), ranks)
    if feature is None:
        words = _candidates(summary or "")
        feature = words[0] if words else None
    return sentence, feature, False


def extract_explanations(
    texts: Sequence[str], summaries: Sequence[str] | None = None, *, min_df: int = 2,
    vocab_size: int = 500, min_words: int = 4, max_words: int = 40,
) -> Explanations:
    """Explanation sentence and feature word for every review (see the module doc)."""
    summaries = summaries if summaries is not None else [""] * len(texts)
    if len(summaries) != len(texts):
        raise ValueError("one summary per text expected")
    ranks = aspect_ranks(texts, min_df=min_df, vocab_size=vocab_size)
    sentences: list[str] = []
    features: list[str | None] = []
    found = 0
    for text, summary in zip(texts, summaries, strict=True):
        sentence, feature, ok = explain_one(text or "", summary or "", ranks,
                                            min_words, max_words)
        sentences.append(sentence)
        features.append(feature)
        found += ok
    top = sorted(ranks, key=ranks.__getitem__)[:10]
    meta = {
        "method": METHOD,
        "source": "derived from review text by mfmrec.data.explanations (deterministic)",
        "rule": "sentence of min_words..max_words words containing the most frequent "
                "aspect word (candidate noun by document frequency); that word is the "
                "feature; fallback: first sentence / summary",
        "min_df": min_df, "vocab_size": vocab_size, "min_words": min_words,
        "max_words": max_words, "aspect_vocabulary": len(ranks), "top_aspects": top,
        "reviews": len(texts), "with_aspect_sentence": found,
        "without_feature": sum(f is None for f in features),
    }
    return Explanations(sentences, features, meta)
