"""The four registered models of the IISAN comparison: their configs, classes, builders.

* ``iisan`` (cached): the side network reads every tapped state from the memory-mapped
  layer caches (:mod:`.cache`); no encoder exists in the model, so training and scoring
  cost only the side network and the user encoder.
* ``iisan-uncached``: the same states from the frozen encoders run under ``no_grad`` at
  every step (the paper's "IISAN without caching"): same trainable parameters, same
  function, the encoders' forward passes on top.
* ``mm-full-ft``: full fine-tuning; both encoders run and every weight trains.
* ``mm-encoder-adapters``: encoders frozen, bottleneck adapters injected *inside* them
  train (few parameters, yet gradients still flow back through every encoder layer, so
  time and memory stay close to full fine-tuning: the point IISAN makes).

The end-to-end baselines fuse the encoders' final pooled states (projection + fusion as
in the side network); user encoder, samples and loss are IISAN's, so the comparison
differs only in how item vectors are produced. A dataset without photos (Beauty, Sports)
falls back to the text tower / text encoder alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from mfmrec.config import check
from mfmrec.errors import DataError
from mfmrec.features.store import feature_path, layers_name
from mfmrec.models.flops import Flops, dense
from mfmrec.models.iisan.cache import CachedStates, LayerCache, MissingFill
from mfmrec.models.iisan.encoders import (
    ImageLayers,
    LiveStates,
    TextLayers,
    cache_name,
    inject_encoder_adapters,
    renamed_legacy_adapters,
)
from mfmrec.models.iisan.sequential import ContentSequenceModel, log_popularity
from mfmrec.models.iisan.towers import ALIGNS, FUSIONS, IMAGE, TEXT, Fusion, SideNetwork
from mfmrec.models.sampling import model_device
from mfmrec.models.sasrec import SASRecConfig

log = logging.getLogger(__name__)


# ---- configs ---------------------------------------------------------------------------
@dataclass
class ContentConfig:
    """Shared fields: item encoders, user encoder, loss."""

    text_encoder: str = "minilm"  # feature-store name of the title encoder: minilm | hf-<folder>
    image_encoder: str | None = "efficientnet-lite0"  # photo encoder; null: titles only
    text_model_path: str | None = None  # model folder when the encoder runs (null: packaged)
    image_model_path: str | None = None  # weights when the encoder runs (null: packaged)
    max_title_tokens: int | None = None  # truncate titles (null: as the feature pipeline)
    hidden: int = 64  # item vector and user encoder width
    layers: int = 2  # self-attention blocks of the user encoder
    heads: int = 2  # attention heads; must divide hidden
    inner: int = 256  # feed-forward width of the user encoder
    max_len: int = 10  # most recent items the user encoder reads
    dropout: float = 0.1  # hidden and attention dropout of the user encoder
    norm_first: bool = False  # pre-LN user encoder blocks (false: post-LN as RecBole)
    logq: bool = True  # subtract log(popularity) of in-batch items from the logits
    score_chunk: int = 256  # items per chunk when computing every item's vector

    def __post_init__(self) -> None:
        for name in ("hidden", "layers", "heads", "inner", "max_len", "score_chunk"):
            check(getattr(self, name) >= 1, f"model.{name}", "must be >= 1")
        check(self.hidden % self.heads == 0, "model.heads",
              f"must divide model.hidden={self.hidden}, got {self.heads}")
        check(0.0 <= self.dropout < 1.0, "model.dropout", "must be in [0, 1)")
        check(bool(self.text_encoder), "model.text_encoder", "must name an encoder")
        if self.image_encoder in ("", "none"):
            self.image_encoder = None
        check(self.max_title_tokens is None or self.max_title_tokens >= 2,
              "model.max_title_tokens", "must be >= 2 or null")

    def user_config(self) -> SASRecConfig:
        """The user encoder's hyper-parameters, in SASRec's terms (one sample per user)."""
        return SASRecConfig(hidden=self.hidden, layers=self.layers, heads=self.heads,
                            inner=self.inner, max_len=self.max_len,
                            hidden_dropout=self.dropout, attn_dropout=self.dropout,
                            samples="sequence", norm_first=self.norm_first)


def _check_taps(taps: list[int] | None, field: str) -> list[int] | None:
    if taps is None:
        return None
    taps = [int(t) for t in taps]
    check(len(taps) >= 1, field, "needs at least one layer (or null: every second layer)")
    check(all(t >= 1 for t in taps), field, f"layers are counted from 1, got {taps}")
    check(all(a < b for a, b in zip(taps, taps[1:], strict=False)), field,
          f"must be strictly increasing, got {taps}")
    return taps


@dataclass
class IISANConfig(ContentConfig):
    """IISAN / IISAN-Versa: side networks over tapped encoder layers."""

    text_layers: list[int] | None = None  # tapped text layers 1..L (null: every 2nd, e.g. 2,4,6)
    image_layers: list[int] | None = None  # tapped image states, 1..L (null: every second)
    adapter_dim: int = 64  # bottleneck width of each side adapter block
    gate_temperature: float = 0.1  # T in g = sigmoid(p / T)
    align: str = "text_to_image"  # inter-modal width: text_to_image | image_to_text
    fusion: str = "concat"  # concat (+ linear) | sum | mean of the projected towers
    side_dropout: float = 0.0  # dropout in the side blocks and on the tower outputs

    def __post_init__(self) -> None:
        super().__post_init__()
        check(0.0 <= self.side_dropout < 1.0, "model.side_dropout", "must be in [0, 1)")
        self.text_layers = _check_taps(self.text_layers, "model.text_layers")
        self.image_layers = _check_taps(self.image_layers, "model.image_layers")
        check(self.adapter_dim >= 1, "model.adapter_dim", "must be >= 1")
        check(self.gate_temperature > 0, "model.gate_temperature", "must be > 0")
        check(self.align in ALIGNS, "model.align",
              f"expected one of {', '.join(ALIGNS)}, got {self.align!r}")
        check(self.fusion in FUSIONS, "model.fusion",
              f"expected one of {', '.join(FUSIONS)}, got {self.fusion!r}")


@dataclass
class EncoderTuneConfig(ContentConfig):
    """End-to-end baselines: both encoders run and train (fully, or through adapters)."""

    adapter_dim: int = 64  # bottleneck width of adapters inside the encoders (adapter variant)
    fusion: str = "concat"  # how the two encoders' final states are fused

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.adapter_dim >= 1, "model.adapter_dim", "must be >= 1")
        check(self.fusion in FUSIONS, "model.fusion",
              f"expected one of {', '.join(FUSIONS)}, got {self.fusion!r}")


def resolve_taps(taps: list[int] | None, num_states: int, field: str) -> list[int]:
    """Tapped layers for an encoder with ``num_states`` = L + 1 pooled states."""
    depth = num_states - 1
    check(depth >= 1, field, f"the encoder has no layers to tap ({num_states} states)")
    if taps is None:
        return list(range(depth, 0, -2))[::-1]  # every second layer, ending at the last
    check(taps[-1] <= depth, field, f"layer {taps[-1]} does not exist: the encoder has "
          f"{depth} layers (1..{depth})")
    return list(taps)


# ---- IISAN ----------------------------------------------------------------------------
class IISAN(ContentSequenceModel):
    """Side network (towers + fusion) over item states, SASRec user encoder on top."""

    name = "iisan"

    def __init__(self, cfg: IISANConfig, num_items: int, log_pop: torch.Tensor,
                 states: nn.Module, side: SideNetwork, taps: dict[str, list[int]]):
        super().__init__(cfg.user_config(), num_items, log_pop, cfg.logq, cfg.score_chunk)
        self.cfg, self.taps = cfg, taps
        self.item_states, self.side = states, side

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.side.modalities

    def item_vectors(self, items: torch.Tensor) -> torch.Tensor:
        states = self.item_states(items.to(model_device(self)))
        return self.side(states[TEXT], states.get(IMAGE))  # (U, hidden)

    def item_vector_flops(self, n_items: int) -> Flops | None:
        """The side network, each of its layers once per item, over cached states (live
        encoders are not counted)."""
        if not isinstance(self.item_states, CachedStates):
            return None
        return dense([self.side]).times(n_items)

    def parameter_groups(self) -> dict[str, int]:
        def count(module: nn.Module | None) -> int:
            if module is None:
                return 0
            return sum(p.numel() for p in module.parameters() if p.requires_grad)

        side = self.side
        return {"text tower": count(side.text), "image tower": count(side.image),
                "inter-modal tower": count(side.inter), "alignment": count(side.align),
                "fusion": count(side.fusion), "missing inputs": count(self.item_states),
                "user encoder": count(self.user_encoder)}


class IISANUncached(IISAN):
    name = "iisan-uncached"


def has_images(dataset) -> bool:
    return any(p is not None for p in dataset.image_paths())


def image_modality(cfg: ContentConfig, dataset, cached: bool) -> str | None:
    """The image encoder to use, or None: titles only (no encoder configured, or a
    dataset without photos such as Beauty)."""
    if cfg.image_encoder is None:
        return None
    if cached and feature_path(dataset.root, layers_name(cfg.image_encoder)).is_file():
        return cfg.image_encoder
    if not has_images(dataset):
        log.info("%s has no item photos: IISAN uses the text tower alone", dataset.root)
        return None
    if cached:
        raise DataError(f"{dataset.root}: items have photos but no layer cache for "
                        f"{cfg.image_encoder!r}; run `mfmrec features extract {dataset.root} "
                        f"--encoder {cfg.image_encoder} --layers`")
    return cfg.image_encoder


def live_encoders(cfg: ContentConfig, dataset) -> dict[str, nn.Module]:
    """The text (and image) encoders that run in the loop, loaded from their weights.

    Loading runs ``from_pretrained``, which may draw random numbers; the global RNG is
    restored afterwards, so the trainable parts start from the same values as in the
    cached model built from the same seed (same function, same start).
    """
    with torch.random.fork_rng(devices=[]):
        encoders: dict[str, nn.Module] = {
            TEXT: TextLayers(cfg.text_encoder, cfg.text_model_path, dataset.titles,
                             cfg.max_title_tokens)}
        image = image_modality(cfg, dataset, cached=False)
        if image is not None:
            encoders[IMAGE] = ImageLayers(image, cfg.image_model_path, dataset.image_paths())
    return encoders


def _side(cfg: IISANConfig, widths: dict[str, int], taps: dict[str, list[int]]) -> SideNetwork:
    return SideNetwork(widths[TEXT], widths.get(IMAGE), len(taps[TEXT]),
                       len(taps.get(IMAGE, ())), cfg.hidden, cfg.adapter_dim,
                       cfg.gate_temperature, cfg.align, cfg.fusion, cfg.side_dropout)


def _taps(cfg: IISANConfig, depths: dict[str, int]) -> dict[str, list[int]]:
    fields = {TEXT: ("text_layers", cfg.text_layers), IMAGE: ("image_layers", cfg.image_layers)}
    return {m: resolve_taps(fields[m][1], n, f"model.{fields[m][0]}") for m, n in depths.items()}


def build_cached(cfg: IISANConfig, dataset) -> IISAN:
    """IISAN over the memory-mapped caches of the dataset."""
    caches = {TEXT: LayerCache.open(dataset, cache_name(cfg.text_encoder, cfg.text_model_path))}
    image = image_modality(cfg, dataset, cached=True)
    if image is not None:
        caches[IMAGE] = LayerCache.open(dataset, image)
    taps = _taps(cfg, {m: c.num_states for m, c in caches.items()})
    states = CachedStates(caches, {m: [0] + t for m, t in taps.items()})
    side = _side(cfg, {m: c.dim for m, c in caches.items()}, taps)
    log_pop = log_popularity(dataset.train_sequences, dataset.num_items)
    return IISAN(cfg, dataset.num_items, log_pop, states, side, taps)


def build_uncached(cfg: IISANConfig, dataset) -> IISANUncached:
    """IISAN whose frozen encoders run at every step instead of reading a cache."""
    encoders = live_encoders(cfg, dataset)
    taps = _taps(cfg, {m: e.num_states for m, e in encoders.items()})
    states = LiveStates(encoders, {m: [0] + t for m, t in taps.items()})
    side = _side(cfg, {m: e.width for m, e in encoders.items()}, taps)
    log_pop = log_popularity(dataset.train_sequences, dataset.num_items)
    return IISANUncached(cfg, dataset.num_items, log_pop, states, side, taps)


# ---- end-to-end baselines --------------------------------------------------------------
LAST = [-1]  # only the final pooled state of each encoder


class EncoderTuned(ContentSequenceModel):
    """Item vectors straight from trainable (or adapted) encoders."""

    name = "mm-full-ft"

    def __init__(self, cfg: EncoderTuneConfig, num_items: int, log_pop: torch.Tensor,
                 encoders: dict[str, nn.Module]):
        super().__init__(cfg.user_config(), num_items, log_pop, cfg.logq, cfg.score_chunk)
        self.cfg = cfg
        self.encoders = nn.ModuleDict(encoders)
        self.fill = nn.ModuleDict({m: MissingFill(1, e.width) for m, e in encoders.items()})
        self.fusion = Fusion({m: e.width for m, e in encoders.items()}, cfg.hidden, cfg.fusion)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.encoders)

    def item_vectors(self, items: torch.Tensor) -> torch.Tensor:
        items = items.to(model_device(self))
        finals = {}
        for m, encoder in self.encoders.items():
            states, missing = encoder(items, LAST)  # (U, 1, d), (U,)
            finals[m] = self.fill[m](states, missing)[:, 0]  # (U, d)
        return self.fusion(finals)  # (U, hidden)

    def enable_activation_checkpointing(self) -> None:
        """Recompute the live encoders' layers in backward (they train or carry adapters)."""
        for encoder in self.encoders.values():
            encoder.enable_activation_checkpointing()

    def parameter_groups(self) -> dict[str, int]:
        groups = {}
        for m, encoder in self.encoders.items():
            groups[f"{m} encoder"] = sum(p.numel() for p in encoder.parameters()
                                         if p.requires_grad)
        groups["fusion"] = sum(p.numel() for p in self.fusion.parameters())
        groups["missing inputs"] = sum(p.numel() for p in self.fill.parameters())
        groups["user encoder"] = sum(p.numel() for p in self.user_encoder.parameters())
        return groups


class EncoderAdapted(EncoderTuned):
    """Frozen encoders with trainable bottleneck adapters inside them."""

    name = "mm-encoder-adapters"

    def __init__(self, cfg: EncoderTuneConfig, num_items: int, log_pop: torch.Tensor,
                 encoders: dict[str, nn.Module]):
        for encoder in encoders.values():
            encoder.requires_grad_(False)
        count = inject_encoder_adapters(encoders[TEXT].model, cfg.adapter_dim,
                                        "model.text_encoder")
        super().__init__(cfg, num_items, log_pop, encoders)
        self.text_adapter_count = count
        if IMAGE in encoders:
            self.image_adapter_count = inject_encoder_adapters(
                encoders[IMAGE].model, cfg.adapter_dim, "model.image_encoder")

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if IMAGE in self.encoders:  # checkpoints from before the one injector load too
            state = renamed_legacy_adapters(state, f"encoders.{IMAGE}.",
                                            self.encoders[IMAGE].model)
        super().load_trainable_state_dict(state)


def build_full_ft(cfg: EncoderTuneConfig, dataset) -> EncoderTuned:
    log_pop = log_popularity(dataset.train_sequences, dataset.num_items)
    return EncoderTuned(cfg, dataset.num_items, log_pop, live_encoders(cfg, dataset))


def build_encoder_adapters(cfg: EncoderTuneConfig, dataset) -> EncoderAdapted:
    log_pop = log_popularity(dataset.train_sequences, dataset.num_items)
    return EncoderAdapted(cfg, dataset.num_items, log_pop, live_encoders(cfg, dataset))
