"""Variants whose encoders run in the loop: IISAN uncached, full fine-tuning, adapters inside
the encoders (tiny random BERT and CLIP folders; EfficientNet-Lite0 for the CNN hooks)."""

from __future__ import annotations

import pytest
import torch
from iisan_fixtures import NUM_ITEMS, encoded_config

from mfmrec.config import build
from mfmrec.models import registry
from mfmrec.models.iisan.cache import LayerCache
from mfmrec.models.iisan.encoders import ImageLayers, TextLayers, inject_encoder_adapters
from mfmrec.peft import AdaptedDropout, adapters_of, is_adapter_parameter


def make(name: str, dataset, paths, seed: int = 0, **cfg):
    entry = registry.get(name)
    torch.manual_seed(seed)
    return entry.builder(build(entry.config_cls, encoded_config(paths, **cfg)), dataset)


def batch_of(model, dataset, n: int = 6) -> dict:
    data = model.train_data(dataset, "train", seed=0)
    data.set_epoch(0)
    return model.collate([data[i] for i in range(n)])


def step(model, batch: dict, lr: float = 1e-2) -> float:
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    loss = model.training_loss(batch)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss.detach())


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_live_states_equal_the_cached_ones(encoded, tiny_encoders):
    items = torch.arange(NUM_ITEMS)
    text = TextLayers("hf-bert", str(tiny_encoders["bert"]), encoded.titles).eval()
    image = ImageLayers("clip-vit-b32", str(tiny_encoders["clip"]), encoded.image_paths()).eval()
    with torch.no_grad():
        t_states, t_missing = text(items, [0, 2, 4])
        i_states, i_missing = image(items, [0, 3])
    assert not t_missing.any() and not i_missing.any()
    assert torch.allclose(t_states, LayerCache.open(encoded, "hf-bert").rows(items, [0, 2, 4]),
                          atol=1e-5)
    assert torch.allclose(i_states, LayerCache.open(encoded, "clip-vit-b32").rows(items, [0, 3]),
                          atol=1e-5)


def test_uncached_iisan_computes_the_cached_function(encoded, tiny_encoders):
    cached = make("iisan", encoded, tiny_encoders).eval()
    live = make("iisan-uncached", encoded, tiny_encoders).eval()
    assert live.taps == cached.taps == {"text": [2, 4], "image": [1, 3]}
    # loading the encoders leaves the RNG alone: the same seed gives the same start
    start, live_start = cached.trainable_state_dict(), live.trainable_state_dict()
    assert start.keys() == live_start.keys()
    assert all(torch.equal(start[k], live_start[k]) for k in start)
    hist = [torch.tensor([1, 2, 3]), torch.tensor([7])]
    assert torch.allclose(live.score_items(torch.tensor([0, 1]), hist),
                          cached.score_items(torch.tensor([0, 1]), hist), atol=1e-4)
    batch = batch_of(cached, encoded)
    for model in (cached, live):  # dropout off: the two trajectories must coincide
        model.user_encoder.drop.p = 0.0
        for block in model.user_encoder.blocks:
            block.drop.p, block.attn.dropout = 0.0, 0.0
    losses = [[step(m, batch) for _ in range(2)] for m in (cached, live)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)
    cached.eval(), live.eval()
    assert torch.allclose(live.score_items(torch.tensor([0, 1]), hist),
                          cached.score_items(torch.tensor([0, 1]), hist), atol=1e-3)


def test_uncached_training_leaves_the_frozen_encoders_untouched(encoded, tiny_encoders):
    model = make("iisan-uncached", encoded, tiny_encoders)
    encoders = model.item_states.encoders
    before = snapshot(encoders)
    losses = [step(model, batch_of(model, encoded)) for _ in range(3)]
    assert losses[-1] < losses[0]
    assert not encoders.training  # dropout off even while the side network trains
    assert all(p.grad is None and not p.requires_grad for p in encoders.parameters())
    assert all(torch.equal(v, before[k]) for k, v in snapshot(encoders).items())
    assert not any(k.startswith("item_states.encoders") for k in model.trainable_state_dict())


def test_full_fine_tuning_trains_the_encoders(encoded, tiny_encoders):
    model = make("mm-full-ft", encoded, tiny_encoders)
    assert model.modalities == ("text", "image")
    before = snapshot(model.encoders)
    batch = batch_of(model, encoded)
    losses = [step(model, batch) for _ in range(3)]
    assert losses[-1] < losses[0]
    changed = [k for k, v in snapshot(model.encoders).items() if not torch.equal(v, before[k])]
    assert any(k.startswith("text.model.") for k in changed)
    assert any(k.startswith("image.model.") for k in changed)
    groups = model.parameter_groups()
    assert groups["text encoder"] > 0 and groups["image encoder"] > 0


def test_full_fine_tuning_trains_only_parameters_that_get_gradients(encoded, tiny_encoders):
    # unused heads (BERT's pooler, CLIP's projection) must be frozen: a trainable parameter
    # without a gradient has no optimizer state, and resuming from a checkpoint then fails
    model = make("mm-full-ft", encoded, tiny_encoders)
    model.train()
    model.training_loss(batch_of(model, encoded)).backward()
    no_grad = [k for k, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []
    assert not model.encoders["text"].model.pooler.dense.weight.requires_grad


def test_adapters_inside_the_encoders_start_as_the_identity(encoded, tiny_encoders):
    plain = make("mm-full-ft", encoded, tiny_encoders).eval()
    adapted = make("mm-encoder-adapters", encoded, tiny_encoders).eval()
    assert adapted.text_adapter_count == 8  # attention + FFN output of each of 4 layers
    wrapped = [m for m in adapted.encoders["text"].modules() if isinstance(m, AdaptedDropout)]
    assert len(wrapped) == 8
    assert adapted.image_adapter_count == 6  # attention + MLP of 3 ViT layers
    assert len(adapters_of(adapted.encoders["image"].model)) == 6
    items = torch.arange(NUM_ITEMS)
    with torch.no_grad():
        for m in ("text", "image"):
            states_plain, _ = plain.encoders[m](items, [-1])
            states_adapted, _ = adapted.encoders[m](items, [-1])
            assert torch.allclose(states_plain, states_adapted, atol=1e-6)


def test_adapter_training_changes_only_adapters_and_heads(encoded, tiny_encoders):
    model = make("mm-encoder-adapters", encoded, tiny_encoders)
    trainable = {k for k, p in model.named_parameters() if p.requires_grad}
    encoder_names = {k for k in trainable if k.startswith("encoders.")}
    assert encoder_names and all(is_adapter_parameter(k) for k in encoder_names)
    frozen = {k: v.clone() for k, v in model.encoders.state_dict().items() if "adapter" not in k}
    adapters = {k: v.clone() for k, v in model.encoders.state_dict().items() if "adapter" in k}
    step(model, batch_of(model, encoded))
    after = model.encoders.state_dict()
    assert all(torch.equal(after[k], v) for k, v in frozen.items())
    moved = {k.split(".")[0] for k, v in adapters.items() if not torch.equal(after[k], v)}
    assert moved == {"text", "image"}


def test_checkpoints_with_the_legacy_image_adapter_names_load(encoded, tiny_encoders):
    trained = make("mm-encoder-adapters", encoded, tiny_encoders, seed=1)
    step(trained, batch_of(trained, encoded))
    state = trained.trainable_state_dict()
    image = list(adapters_of(trained.encoders["image"].model))
    legacy = {}
    for key, value in state.items():  # the names HookedAdapters gave them
        for i, name in enumerate(image):
            key = key.replace(f"encoders.image.model.{name}.adapter.",
                              f"encoders.image.adapters.adapter.{i}.")
        legacy[key] = value
    assert sum(k.startswith("encoders.image.adapters.adapter.") for k in legacy) == 4 * 6
    fresh = make("mm-encoder-adapters", encoded, tiny_encoders, seed=2)
    fresh.load_trainable_state_dict(legacy)
    loaded = fresh.trainable_state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_cnn_adapters_hook_every_block_and_start_as_the_identity():
    from mfmrec.features.efficientnet import EfficientNetLite0

    torch.manual_seed(0)
    cnn = EfficientNetLite0().eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        plain = cnn.features(x)
        assert inject_encoder_adapters(cnn, 8, "model.image_encoder") == len(cnn._blocks) == 16
        assert torch.allclose(cnn.features(x), plain, rtol=1e-5, atol=0)
        list(adapters_of(cnn).values())[3].up.weight.fill_(0.05)
        assert not torch.allclose(cnn.features(x), plain, rtol=1e-2, atol=0)


@pytest.mark.parametrize("name", ["iisan-uncached", "mm-full-ft", "mm-encoder-adapters"])
def test_titles_only_data_runs_the_text_encoder_alone(name, titles_only, tiny_encoders):
    cfg = encoded_config(tiny_encoders)
    entry = registry.get(name)
    model = entry.builder(build(entry.config_cls, cfg), titles_only)
    assert model.modalities == ("text",)
    assert torch.isfinite(torch.tensor(step(model, batch_of(model, titles_only))))
