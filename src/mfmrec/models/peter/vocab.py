"""A word vocabulary built deterministically from training explanations (for PETER).

Rebuilding it from the same training reviews always gives the same ids, so a checkpoint
that stores only tensors can be loaded into a freshly built model.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)

# words (letters, digits, inner apostrophes: "don't") or single punctuation marks
_TOKEN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
# marks written against the previous word when tokens are joined back into text
_CLOSING = frozenset(".,!?;:%)]}")


def tokenize(text: str | None, lowercase: bool = False) -> list[str]:
    """Words and punctuation marks: ``"It's GREAT!"`` -> ``["It's", "GREAT", "!"]``."""
    if not text:
        return []
    return _TOKEN.findall(text.lower() if lowercase else text)


def detokenize(tokens: list[str]) -> str:
    """Tokens joined by spaces, closing punctuation attached: ``["ok", "."]`` -> ``"ok."``.

    Generated explanations then read like the raw review text they are scored against
    (whitespace-token metrics would otherwise see ``ok .`` as two tokens).
    """
    out = ""
    for tok in tokens:
        out += tok if (not out or tok in _CLOSING) else " " + tok
    return out


def feature_token(feature: str | None, lowercase: bool = False) -> str | None:
    """A review's aspect/feature as one vocabulary entry (multi-word features stay whole)."""
    if feature is None:
        return None
    token = " ".join((feature.lower() if lowercase else feature).split())
    return token or None


@dataclass
class Vocabulary:
    """Specials first, then words by descending count (ties: alphabetical)."""

    words: list[str]
    index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        if tuple(self.words[:4]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}")
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, texts: Iterable[list[str]], extra: Iterable[str] = (), *,
              max_size: int = 20_000, min_count: int = 1) -> Vocabulary:
        """From tokenised texts plus extra whole tokens (features); at most ``max_size``."""
        counts: Counter[str] = Counter()
        for tokens in texts:
            counts.update(tokens)
        counts.update(t for t in extra if t)
        ranked = sorted((w for w, c in counts.items() if c >= min_count and w not in SPECIALS),
                        key=lambda w: (-counts[w], w))
        return cls(list(SPECIALS) + ranked[: max(0, max_size - len(SPECIALS))])

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, tokens: list[str]) -> list[int]:
        return [self.index.get(t, UNK_ID) for t in tokens]

    def id_of(self, token: str | None) -> int:
        return self.index.get(token, UNK_ID) if token else UNK_ID

    def decode(self, ids: Iterable[int]) -> str:
        """Words up to the first ``<eos>``, specials dropped, detokenized."""
        out = []
        for i in ids:
            if i == EOS_ID:
                break
            if i >= len(SPECIALS):
                out.append(self.words[i])
        return detokenize(out)
