"""T5 backbones: named random-init presets, or any local Hugging Face T5 checkpoint.

``backbone: small`` builds a randomly initialised model of t5-small's shape, ``tiny`` a
toy one for tests, ``base`` t5-base's shape; ``backbone: /path/to/checkpoint`` loads a
saved ``T5ForConditionalGeneration`` (``mfmrec pretrain`` writes one). Presets are data;
one generic builder turns any of them into a model. Random weights are drawn from a
private generator state seeded by ``init_seed``, so a PEFT checkpoint, which stores only
trainable tensors, can rebuild the same frozen backbone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import T5Config, T5ForConditionalGeneration
from transformers.utils import logging as hf_logging

from mfmrec.errors import ConfigError


@dataclass(frozen=True)
class T5Shape:
    """The architecture hyper-parameters of a T5 encoder-decoder."""

    num_layers: int
    num_decoder_layers: int
    d_model: int
    num_heads: int
    d_kv: int
    d_ff: int
    feed_forward_proj: str = "relu"


PRESETS: dict[str, T5Shape] = {
    "tiny": T5Shape(num_layers=2, num_decoder_layers=2, d_model=64, num_heads=4, d_kv=16,
                    d_ff=128),
    "small": T5Shape(num_layers=6, num_decoder_layers=6, d_model=512, num_heads=8, d_kv=64,
                     d_ff=2048),
    # TIGER's generative retriever (Rajput et al., 2023): 4 + 4 layers, 6 heads of 64
    "tiger": T5Shape(num_layers=4, num_decoder_layers=4, d_model=128, num_heads=6, d_kv=64,
                     d_ff=1024),
    "base": T5Shape(num_layers=12, num_decoder_layers=12, d_model=768, num_heads=12, d_kv=64,
                    d_ff=3072),
}


def is_preset(spec: str) -> bool:
    return spec in PRESETS


def build_t5(shape: T5Shape, vocab_size: int, *, pad_token_id: int, eos_token_id: int,
             seed: int, dropout: float = 0.1) -> T5ForConditionalGeneration:
    """A randomly initialised T5 of ``shape``, identical for identical arguments."""
    config = T5Config(
        vocab_size=vocab_size, dropout_rate=dropout, pad_token_id=pad_token_id,
        eos_token_id=eos_token_id, decoder_start_token_id=pad_token_id, **asdict(shape),
    )
    # a forked RNG: building a model must not move the caller's global random state
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = T5ForConditionalGeneration(config)
    return model.eval()


@contextlib.contextmanager
def no_loading_bar() -> Iterator[None]:
    """Hide transformers' "Loading weights" bar (stderr noise on every mfmrec command that
    loads a local backbone) for the block only; the previous setting is restored."""
    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def load_t5(path: str | Path) -> T5ForConditionalGeneration:
    """Load a local T5 checkpoint directory (config.json + weights)."""
    path = Path(path).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(f"config field model.backbone: {path} is neither a preset "
                          f"({', '.join(PRESETS)}) nor a checkpoint directory with config.json")
    try:
        with no_loading_bar():
            model = T5ForConditionalGeneration.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"config field model.backbone: cannot load {path} "
                          f"({str(exc).splitlines()[0]})") from None
    if getattr(model.config, "decoder_start_token_id", None) is None:
        # T5 starts decoding from pad; older/hand-written configs may omit the field
        model.config.decoder_start_token_id = model.config.pad_token_id
        model.generation_config.decoder_start_token_id = model.config.pad_token_id
    return model.eval()


def set_dropout(model: torch.nn.Module, p: float) -> None:
    """Set every dropout probability, the attention probabilities' included (a
    checkpoint's own rate is kept unless asked)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
    set_attention_dropout(model, p)
    if hasattr(model, "config"):
        model.config.dropout_rate = p


def set_attention_dropout(model: torch.nn.Module, p: float) -> None:
    """Set the dropout on the attention probabilities alone: T5's attention modules keep it
    as a float (``T5Attention.dropout``) that they pass to the attention function."""
    for module in model.modules():
        if hasattr(module, "has_relative_attention_bias") and isinstance(
                getattr(module, "dropout", None), float):
            module.dropout = float(p)


def backbone_for(spec: str, vocab_size: int, *, pad_token_id: int, eos_token_id: int,
                 seed: int, dropout: float | None = None) -> T5ForConditionalGeneration:
    """A preset name or a checkpoint path -> a T5 whose vocabulary covers the tokenizer."""
    if is_preset(spec):
        return build_t5(PRESETS[spec], vocab_size, pad_token_id=pad_token_id,
                        eos_token_id=eos_token_id, seed=seed,
                        dropout=0.1 if dropout is None else dropout)
    model = load_t5(spec)
    if model.config.vocab_size < vocab_size:
        raise ConfigError(f"config field model.backbone: {spec} has {model.config.vocab_size} "
                          f"token embeddings but the tokenizer has {vocab_size} tokens")
    if dropout is not None:
        set_dropout(model, dropout)
    return model


def checkpoint_has_tokenizer(spec: str) -> bool:
    """Whether a backbone directory also holds a tokenizer (as ``mfmrec pretrain`` saves)."""
    if is_preset(spec):
        return False
    path = Path(spec).expanduser()
    return any((path / name).is_file() for name in
               ("tokenizer.json", "spiece.model", "tokenizer_config.json"))
