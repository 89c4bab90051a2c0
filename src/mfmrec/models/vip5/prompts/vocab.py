"""A tokenizer for a dataset: the real one from a path, or one trained offline on the
dataset's own prompt text when no pretrained tokenizer is at hand.

The corpus (:func:`tokenizer_corpus`) is text-only training prompts (k = 0) with their
targets, sampled with a fixed seed, plus every item number, user number and item title
and the bare template strings, so the vocabulary can spell every item number and every
prompt word. Only training reviews enter it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mfmrec.errors import ConfigError
from mfmrec.models.vip5.prompts.dataset import PromptDataset
from mfmrec.models.vip5.prompts.render import UNKNOWN_TITLE, user_number
from mfmrec.models.vip5.prompts.templates import TEMPLATES
from mfmrec.models.vip5.prompts.tokenization import load_tokenizer, train_sentencepiece


def tokenizer_corpus(dataset, max_prompts: int = 20000, seed: int = 0) -> list[str]:
    """Lines of text to train a tokenizer for ``dataset`` on (deterministic)."""
    prompts = PromptDataset(dataset, None, image_tokens=0, seed=seed)
    n = len(prompts)
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(n, size=min(n, max_prompts), replace=False)) if n else []
    # the template words are few but in every prompt: weight them like many prompts
    lines = [t.input.replace("{}", " ") for t in TEMPLATES] * 50 + ["yes no", UNKNOWN_TITLE]
    for index in picked:
        _, rendered = prompts.render(int(index))
        lines += [rendered.text, rendered.target or ""]
    numbers = [str(int(x)) for x in dataset.numbers]
    lines += [" ".join(numbers[i: i + 50]) for i in range(0, len(numbers), 50)]
    users = [f"user_{user_number(u)}" for u in range(dataset.num_users)]
    lines += [" ".join(users[i: i + 50]) for i in range(0, len(users), 50)]
    lines += [t for t in dataset.titles if t]
    lines += [n for n in dataset.user_names if n]
    return lines


def prepare_tokenizer(path: str | Path | None, dataset=None, out_dir: str | Path | None = None,
                      vocab_size: int = 4000, max_prompts: int = 20000,
                      model_max_length: int = 512):
    """The tokenizer at ``path``; with no ``path``, the one already trained in ``out_dir``,
    or a SentencePiece tokenizer trained now on ``dataset`` and saved to ``out_dir``.

    ``out_dir`` must be a folder of its own (it is replaced when trained). Keep it with a
    run: a model's token embeddings are only meaningful with the same tokenizer.
    """
    if path is not None:
        return load_tokenizer(path)
    if out_dir is None:
        raise ConfigError("no tokenizer path given and no folder to train one into "
                          "(set a tokenizer path, or an output folder)")
    out_dir = Path(out_dir)
    if (out_dir / "tokenizer_config.json").is_file():
        return load_tokenizer(out_dir)
    if dataset is None:
        raise ConfigError(f"{out_dir}: no tokenizer there and no dataset to train one on")
    lines = tokenizer_corpus(dataset, max_prompts=max_prompts)
    return train_sentencepiece(lines, out_dir, vocab_size=vocab_size,
                               model_max_length=model_max_length)
