"""VIP5 (Geng et al., 2023): multimodal personalized prompts over T5 with adapters.

``build_vip5(config, dataset)`` assembles the parts -- tokenizer, backbone (adapters
injected), prompt embeddings, item image tokens, prompt builder -- and hands them to
:class:`~mfmrec.models.vip5.model.VIP5`. It is registered as ``vip5``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from safetensors.torch import load_file

from mfmrec.errors import ConfigError
from mfmrec.features.store import MissingAwareFeatures, load_item_features
from mfmrec.ids import SemanticIds, load_code_vectors, load_ids
from mfmrec.models.registry import register
from mfmrec.models.vip5.backbone import (
    backbone_for,
    checkpoint_has_tokenizer,
    is_preset,
    set_attention_dropout,
)
from mfmrec.models.vip5.config import VIP5Config
from mfmrec.models.vip5.export import PROMPT_EMBEDDINGS_FILE
from mfmrec.models.vip5.indexing import (
    SEMANTIC,
    add_tokens,
    code_names,
    code_vocabulary,
    extend_vocabulary,
    init_code_rows,
    user_vocabulary,
)
from mfmrec.models.vip5.mapping import ItemImageTokens, MappingNetwork, PromptEmbeddings
from mfmrec.models.vip5.model import VIP5
from mfmrec.models.vip5.packing import packable
from mfmrec.models.vip5.profiles import profile_depth, user_profiles
from mfmrec.models.vip5.prompts.tasks import PromptBuilder, PromptOptions
from mfmrec.models.vip5.prompts.tokenization import item_target_ids
from mfmrec.models.vip5.prompts.vocab import prepare_tokenizer
from mfmrec.peft import CROSS, FFN, SELF, AdapterSpec, inject_adapters

FALLBACK_VOCAB = 4000

__all__ = ["VIP5", "VIP5Config", "build_vip5", "resolve_tokenizer"]


def resolve_tokenizer(config: VIP5Config, dataset):
    """``model.tokenizer``; else the backbone checkpoint's own; else one trained offline.

    The fallback SentencePiece tokenizer is trained once on the dataset's prompts and kept
    in ``<dataset>/tokenizers/`` so that every run (and ``load_run``) on that dataset
    reuses the very same vocabulary.
    """
    if config.tokenizer:
        return prepare_tokenizer(Path(config.tokenizer).expanduser())
    if checkpoint_has_tokenizer(config.backbone):
        return prepare_tokenizer(Path(config.backbone).expanduser())
    if not is_preset(config.backbone):
        raise ConfigError(f"config field model.tokenizer: {config.backbone} holds no "
                          "tokenizer; set model.tokenizer to a tokenizer folder")
    out_dir = Path(dataset.root) / "tokenizers" / f"sentencepiece-{FALLBACK_VOCAB}"
    try:
        return prepare_tokenizer(None, dataset, out_dir, vocab_size=FALLBACK_VOCAB,
                                 model_max_length=config.max_input_length)
    except OSError as exc:
        raise ConfigError(f"config field model.tokenizer: none given and none can be "
                          f"trained into {out_dir} ({exc})") from None


def _adapter_spec(config: VIP5Config) -> AdapterSpec:
    kinds = {SELF, FFN, CROSS} if config.cross_adapters else {SELF, FFN}
    return AdapterSpec(reduction_factor=config.reduction_factor, kinds=frozenset(kinds),
                       activation=config.adapter_activation)


def _prompt_embeddings(config: VIP5Config, d_model: int) -> PromptEmbeddings:
    """Zero tables (the adapted model starts as the backbone) or the paper's N(0, 1);
    a backbone exported by ``mfmrec pretrain`` brings its trained tables along."""
    emb = PromptEmbeddings(d_model, config.whole_word_positions,
                           init_std=1.0 if config.paper_frozen_embeddings else 0.0)
    saved = Path(config.backbone).expanduser() / PROMPT_EMBEDDINGS_FILE
    if not is_preset(config.backbone) and saved.is_file():
        state = load_file(str(saved))
        if state["whole_word.weight"].shape != emb.whole_word.weight.shape:
            raise ConfigError(f"{saved}: whole-word table {tuple(state['whole_word.weight'].shape)}"
                              f" does not fit model.whole_word_positions="
                              f"{config.whole_word_positions} x d_model={d_model}")
        emb.load_state_dict(state)
    return emb


def _image_tokens(config: VIP5Config, dataset, d_model: int) -> ItemImageTokens | None:
    if config.image_tokens == 0:
        return None
    features = MissingAwareFeatures.from_store(
        load_item_features(dataset, config.image_features, "VIP5"))
    mapping = MappingNetwork(features.dim, d_model, config.image_tokens,
                             config.mapping_hidden or None, config.mapping_activation)
    return ItemImageTokens(features, mapping)


def item_names(config: VIP5Config, dataset
               ) -> tuple[list[str] | None, list[str], list[str] | None, SemanticIds | None]:
    """(per-item names or None for numbers, new tokens to add, per-user profiles or None,
    the semantic ID set or None) of ``model.indexing``, ``model.user_tokens`` and
    ``model.user_profile``."""
    indexing = config.item_indexing
    names, tokens, profiles, ids = None, [], None, None
    if indexing.kind == SEMANTIC:
        ids = load_ids(dataset.root, indexing.ids_name, item_ids=list(dataset.item_ids))
        names, tokens = code_names(ids.codes), code_vocabulary(ids.codes)
        if config.user_profile:
            depth = profile_depth(config.user_profile_depth, ids.levels)
            profiles = user_profiles(ids.codes, dataset.train_sequences,
                                     config.user_profile, depth)
    return names, tokens + user_vocabulary(config.user_tokens), profiles, ids


def _with_tokens(tokenizer, tokens: list[str]):
    """A copy of ``tokenizer`` with ``tokens`` added (the caller's stays as it was), and
    the id of the first new token."""
    start = len(tokenizer)
    vocab = tokenizer.get_vocab()
    if all(t in vocab for t in tokens):
        return tokenizer, start
    tokenizer = copy.deepcopy(tokenizer)
    add_tokens(tokenizer, tokens)
    return tokenizer, start


def _targets(tokenizer, names: list[str] | None, numbers) -> list[list[int]]:
    if names is None:
        return item_target_ids(tokenizer, numbers)
    targets = [list(x) for x in tokenizer(names, verbose=False).input_ids]
    for name, ids in zip(names, targets, strict=True):
        if tokenizer.unk_token_id in ids:
            raise ConfigError(f"semantic ID {name}: the tokenizer does not know its tokens")
    return targets


def build_vip5(config: VIP5Config, dataset, tokenizer=None, model_class: type = VIP5) -> VIP5:
    """Assemble VIP5 (or a subclass, e.g. TIGER) for ``dataset``; every random part is
    drawn from ``init_seed``."""
    # first: a missing ID set fails fast
    names, new_tokens, profiles, ids = item_names(config, dataset)
    tokenizer = tokenizer if tokenizer is not None else resolve_tokenizer(config, dataset)
    tokenizer, start = _with_tokens(tokenizer, new_tokens)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.init_seed)
        backbone = backbone_for(config.backbone, start,
                                pad_token_id=tokenizer.pad_token_id,
                                eos_token_id=tokenizer.eos_token_id, seed=config.init_seed,
                                dropout=config.dropout)
        if config.attention_dropout is not None:
            set_attention_dropout(backbone, config.attention_dropout)
        if config.pack_training and not packable(backbone):
            raise ConfigError(f"config field model.pack_training: needs a T5-family backbone "
                              f"(relative positions); {config.backbone} is a "
                              f"{backbone.config.model_type}")
        extend_vocabulary(backbone, start, len(tokenizer), frozen_base=config.uses_adapters,
                          seed=config.init_seed + 1)
        if config.code_init == "features":
            init_code_rows(backbone, tokenizer, start, load_code_vectors(dataset.root, ids))
        if config.uses_adapters:
            inject_adapters(backbone, _adapter_spec(config))
        d_model = backbone.config.d_model
        embeddings = _prompt_embeddings(config, d_model)
        image_tokens = _image_tokens(config, dataset, d_model)
    options = PromptOptions(
        image_tokens=config.image_tokens, max_history=config.max_history,
        max_length=config.max_input_length, max_target_length=config.max_target_length,
        num_negatives=config.num_negatives, sampling=config.sampling,
        sequential_target=config.sequential_target)
    prompts = PromptBuilder(dataset, tokenizer, options, names=names,
                            user_buckets=config.user_tokens, profiles=profiles)
    targets = _targets(tokenizer, names, dataset.numbers)
    return model_class(config, backbone, embeddings, image_tokens, prompts, tokenizer, targets)


@register("vip5", VIP5Config, "VIP5: T5 + adapters over multimodal personalized prompts")
def _build(config: VIP5Config, dataset) -> VIP5:
    return build_vip5(config, dataset)
