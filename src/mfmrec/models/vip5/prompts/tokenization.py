"""Tokenizers for multimodal prompts: loading, whole-word and category ids, and an
offline SentencePiece fallback wrapped as a transformers T5 tokenizer.

Conventions of the encoder input (VIP5's):

* ``whole_word_ids``: all sentencepiece pieces of one whitespace-separated word share an
  id, words counted from 1 in order; each image placeholder is its own word; ``</s>``
  and padding are 0. Ids therefore stay below the input length.
* ``category_ids``: 1 on image placeholder tokens, 0 elsewhere (text, ``</s>``, padding).

The image placeholder is looked up by name (``<extra_id_0>``), never by number.

Item numbers: T5-style tokenizers split on whitespace before applying sentencepiece, so a
number inside a history (``... , 1234 <extra_id_0> , ...``) gets the same pieces as the
same number alone; :func:`item_target_ids` gives those pieces plus ``</s>``, which is
what a model's constrained decoding must produce for each item.
"""

from __future__ import annotations

import io
import json
import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import sentencepiece as spm
from tokenizers import AddedToken
from transformers import AutoTokenizer

from mfmrec.errors import ConfigError
from mfmrec.io import atomic_dir
from mfmrec.models.vip5.prompts.render import PLACEHOLDER

SPECIAL = {"pad": (0, "<pad>"), "eos": (1, "</s>"), "unk": (2, "<unk>")}
EXTRA_IDS = 100


def load_tokenizer(path: str | Path):
    """A Hugging Face tokenizer from a local folder (``AutoTokenizer.from_pretrained``)."""
    path = Path(path)
    if not (path / "tokenizer_config.json").is_file():
        raise ConfigError(f"{path}: not a tokenizer folder (no tokenizer_config.json)")
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    placeholder_id(tokenizer)  # fail early on a tokenizer without image placeholders
    return tokenizer


def placeholder_id(tokenizer) -> int:
    """The id of ``<extra_id_0>``; a ConfigError if the tokenizer would split it."""
    pid = tokenizer.convert_tokens_to_ids(PLACEHOLDER)
    ids = tokenizer(PLACEHOLDER, add_special_tokens=False).input_ids
    if pid is None or pid == tokenizer.unk_token_id or ids != [pid]:
        raise ConfigError(f"tokenizer {getattr(tokenizer, 'name_or_path', '')}: "
                          f"{PLACEHOLDER} is not a single token (got {ids})")
    return int(pid)


@dataclass(frozen=True)
class Encoded:
    """One tokenized encoder input; the three lists have equal length."""

    input_ids: list[int]
    whole_word_ids: list[int]
    category_ids: list[int]


def _word_ids(text: str, offsets: Sequence[tuple[int, int]], special: list[bool]) -> list[int]:
    starts = [m.start() for m in re.finditer(r"\S+", text)]
    # 1-based index of the word a token starts in; special tokens (</s>, pad) get 0
    raw = [0 if sp else max(1, bisect_right(starts, s))
           for (s, _), sp in zip(offsets, special, strict=True)]
    # renumber so ids run 1, 2, 3... even if a word produced no token
    seen: dict[int, int] = {}
    return [0 if w == 0 else seen.setdefault(w, len(seen) + 1) for w in raw]


def encode_input(tokenizer, text: str, pid: int | None = None) -> Encoded:
    """Token ids with ``</s>``, whole-word ids and category ids of one prompt."""
    pid = placeholder_id(tokenizer) if pid is None else pid
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError("prompt encoding needs a fast (tokenizers-backed) tokenizer")
    enc = tokenizer(text, return_offsets_mapping=True, verbose=False)
    ids = list(enc.input_ids)
    special_ids = set(tokenizer.all_special_ids) - {pid}
    special = [i in special_ids for i in ids]
    words = _word_ids(text, enc.offset_mapping, special)
    return Encoded(ids, words, [int(i == pid) for i in ids])


def encode_target(tokenizer, text: str, max_length: int = 64) -> list[int]:
    """Target ids ending with ``</s>``, cut to ``max_length`` (the ``</s>`` is kept)."""
    ids = list(tokenizer(text, verbose=False).input_ids)
    if len(ids) > max_length:
        ids = ids[: max_length - 1] + [tokenizer.eos_token_id]
    return ids


def item_target_ids(tokenizer, numbers: Iterable[int]) -> list[list[int]]:
    """Per item number, the decoder ids that spell it, ending with ``</s>``."""
    texts = [str(int(n)) for n in numbers]
    if not texts:
        return []
    return [list(x) for x in tokenizer(texts, verbose=False).input_ids]


# ---- SentencePiece fallback ---------------------------------------------------------------
def train_sentencepiece(lines: Iterable[str], out_dir: str | Path, vocab_size: int = 4000,
                        model_max_length: int = 512):
    """Train a unigram SentencePiece model on ``lines``; write a T5 tokenizer to ``out_dir``.

    Ids follow T5: ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2; ``<extra_id_0..99>`` are
    user-defined pieces (so sentencepiece itself never splits them). Every character of
    the corpus is kept (``character_coverage=1.0``); characters never seen map to
    ``<unk>`` — transformers rebuilds T5 tokenizers without byte fallback, so byte pieces
    would be dead weight. ``vocab_size`` is an upper bound: a tiny corpus gets fewer pieces,
    and it is raised when the corpus has more distinct characters than it allows.
    ``out_dir`` is written atomically and *replaced* if it exists, so give the tokenizer its
    own folder. Returns the tokenizer, reloadable with ``AutoTokenizer.from_pretrained``.
    """
    corpus = [" ".join(line.split()) for line in lines]
    corpus = [line for line in corpus if line]
    if not corpus:
        raise ConfigError("cannot train a tokenizer on an empty corpus")
    chars = set("".join(corpus)) - {" "}
    vocab_size = max(vocab_size, len(chars) + len(SPECIAL) + EXTRA_IDS + 2)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=model, model_type="unigram",
        vocab_size=vocab_size, hard_vocab_limit=False, character_coverage=1.0,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, pad_piece="<pad>", eos_piece="</s>",
        unk_piece="<unk>", user_defined_symbols=[f"<extra_id_{i}>" for i in range(EXTRA_IDS)],
        byte_fallback=False, max_sentence_length=1 << 16, input_sentence_size=0,
        num_threads=1, minloglevel=2,
    )
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        (tmp / "spiece.model").write_bytes(model.getvalue())
        _wrap_t5(tmp, model_max_length)
    return load_tokenizer(out_dir)


def _wrap_t5(folder: Path, model_max_length: int) -> None:
    """Turn a folder holding ``spiece.model`` into a transformers T5 tokenizer folder."""
    config = {"tokenizer_class": "T5Tokenizer", "eos_token": "</s>", "pad_token": "<pad>",
              "unk_token": "<unk>", "extra_ids": 0, "model_max_length": model_max_length}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    # transformers converts spiece.model on load; saving writes tokenizer.json next to it
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    # the sentinels come in as plain user-defined pieces: flag them special, as in T5, so
    # that decoding with skip_special_tokens drops them (they keep their ids)
    tokenizer.add_tokens([AddedToken(f"<extra_id_{i}>", special=True, normalized=False)
                          for i in range(EXTRA_IDS)], special_tokens=True)
    tokenizer.save_pretrained(str(folder))
