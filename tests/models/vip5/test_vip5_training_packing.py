"""Sequence packing in VIP5 training (issue 15): several prompts per row under
block-diagonal masks; each sample's loss, the batch loss and the gradients are those of
the plain batch (within 1e-5)."""

from __future__ import annotations

import pytest
import torch

from mfmrec.config import build
from mfmrec.errors import ConfigError
from mfmrec.models.vip5 import VIP5Config
from mfmrec.models.vip5.packing import segment_mask
from mfmrec.models.vip5.prompts.collate import collate, pack_rows

MIN = torch.finfo(torch.float32).min


def keeps(mask: torch.Tensor) -> list[list[bool]]:
    return (mask[0] == 0).tolist()  # (1, Q, K) additive -> which keys each query sees


# ---- masks and row assignment ---------------------------------------------------------------
def test_segment_masks_are_block_diagonal():
    enc = torch.tensor([0, 0, 1, 1, 1, -1])  # two samples, one pad token
    mask = segment_mask(enc, enc, torch.float32)
    assert mask.shape == (1, 6, 6) and set(mask.unique().tolist()) == {0.0, MIN}
    assert keeps(mask) == [[True, True, False, False, False, False],
                           [True, True, False, False, False, False],
                           [False, False, True, True, True, False],
                           [False, False, True, True, True, False],
                           [False, False, True, True, True, False],
                           [False, False, False, False, False, True]]  # padding: itself
    dec = torch.tensor([0, 0, 0, 1, 1, -1])
    causal = keeps(segment_mask(dec, dec, torch.float32, causal=True))
    assert causal == [[True, False, False, False, False, False],
                      [True, True, False, False, False, False],
                      [True, True, True, False, False, False],
                      [False, False, False, True, False, False],
                      [False, False, False, True, True, False],
                      [False, False, False, False, False, True]]
    cross = keeps(segment_mask(dec, enc, torch.float32))  # (T, L): own sample's encoder only
    assert cross[0] == cross[2] == [True, True, False, False, False, False]
    assert cross[3] == [False, False, True, True, True, False]
    batched = segment_mask(torch.stack([dec, dec.flip(0)]), torch.stack([enc, enc]),
                           torch.float32)
    assert batched.shape == (2, 1, 6, 6)  # (R, 1, T, L) as transformers takes it


def test_rows_are_first_fit_decreasing_within_both_budgets():
    lengths, targets = [5, 3, 4, 2, 6, 9], [1, 1, 1, 1, 1, 1]
    # longest first: 9 (over budget: alone), 6, 5, 4, 3, 2 -> [6,2], [5,3], [4]
    assert pack_rows(lengths, targets, 8, 4) == [[5], [4, 3], [0, 1], [2]]
    # the decoder budget stops a row that still has encoder room
    assert pack_rows([2, 2, 2], [3, 3, 1], 8, 4) == [[0, 2], [1]]
    assert pack_rows([1, 1], [1, 1], 8, 4) == [[0, 1]]


# ---- the model on real prompts -------------------------------------------------------------
def mixed_samples(data, per_family: int = 3) -> list:
    """The shortest samples of each family (sequential, direct, explanation) and the
    shortest yes/no prompt."""
    picked: dict[str, list[int]] = {"A": [], "B": [], "C": [], "yes/no": []}
    for i in data.lengths(0).argsort(kind="stable").tolist():
        template = data.render(i)[0]
        group = "yes/no" if template.is_yes_no else template.family
        if len(picked[group]) < (1 if group == "yes/no" else per_family):
            picked[group].append(i)
        if all(len(v) == (1 if k == "yes/no" else per_family) for k, v in picked.items()):
            break
    return [data[i] for group in picked.values() for i in group]


@pytest.fixture(scope="module")
def models(make_vip5, t5_tokenizer):
    """(plain, packed) models with the same weights (same init seed)."""
    fields = dict(tasks=["sequential", "direct", "explanation"], max_input_length=256)
    return (make_vip5(t5_tokenizer, **fields),
            make_vip5(t5_tokenizer, pack_training=True, pack_length=256, **fields))


@pytest.fixture(scope="module")
def samples(models, dataset):
    return mixed_samples(models[0].train_data(dataset, "train", seed=0))


def test_a_packed_batch_holds_whole_samples_in_fewer_rows(models, samples, t5_tokenizer):
    _, model = models
    batch, plain = model.collate(samples), collate(samples, t5_tokenizer)
    rows, width = batch["input_ids"].shape
    assert rows < len(samples) and width <= 256
    assert {s.template_id[0] for s in samples} == {"A", "B", "C"}
    assert any(s.target in ("yes", "no") for s in samples)  # a yes/no prompt among them
    seg, dec = batch["segments"], batch["target_segments"]
    for i, sample in enumerate(samples):
        r = int((seg == i).any(1).nonzero()[0, 0])
        assert batch["input_ids"][r][seg[r] == i].tolist() == sample.input_ids
        assert batch["labels"][r][dec[r] == i].tolist() == sample.labels
        shifted = batch["decoder_input_ids"][r][dec[r] == i].tolist()
        assert shifted == [model.backbone.config.decoder_start_token_id, *sample.labels[:-1]]
    # image items stay in placeholder order, row by row
    filled = batch["image_items"][batch["image_items"] >= 0]
    assert filled.numel() == int((batch["category_ids"] == 1).sum())
    assert sorted(filled.tolist()) == sorted(plain["image_items"][plain["image_items"] >= 0]
                                             .tolist())


def test_packed_losses_equal_unpacked_per_sample_and_per_batch(models, samples):
    plain_model, model = models
    packed = model.collate(samples)
    with torch.no_grad():
        together, alone = model.sample_losses(packed), plain_model.sample_losses(
            plain_model.collate(samples))
        loss, plain_loss = model.training_loss(packed), plain_model.training_loss(
            plain_model.collate(samples))
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loss, plain_loss, rtol=1e-5, atol=1e-5)
    # the yes/no and explanation samples share a row with another sample, losses unchanged
    shared = {i for r in packed["segments"] for i in r.unique().tolist() if i >= 0
              and len(r.unique()) > 2}
    assert any(samples[i].target in ("yes", "no") for i in shared)
    assert any(samples[i].template_id.startswith("C") for i in shared)


def grads(model, batch) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    model.training_loss(batch).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_packed_gradients_equal_unpacked(models, samples):
    plain_model, model = models
    ours, theirs = grads(model, model.collate(samples)), grads(plain_model,
                                                                plain_model.collate(samples))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert ours.keys() == theirs.keys() and len(ours) > 0.9 * len(trainable)
    for name, grad in theirs.items():
        scale = float(grad.abs().max()) or 1.0
        torch.testing.assert_close(ours[name], grad, rtol=1e-5, atol=1e-5 * scale, msg=name)


def test_packing_with_activation_checkpointing(make_vip5, t5_tokenizer, samples, models):
    model = make_vip5(t5_tokenizer, pack_training=True, pack_length=256, max_input_length=256,
                      tasks=["sequential", "direct", "explanation"])
    model.enable_activation_checkpointing()
    model.train()
    batch = model.collate(samples)
    torch.testing.assert_close(model.training_loss(batch).detach(),
                               models[0].training_loss(collate(samples, model.tokenizer)),
                               rtol=1e-5, atol=1e-5)


def test_default_budget_never_lengthens_a_row(make_vip5, t5_tokenizer, samples):
    model = make_vip5(t5_tokenizer, pack_training=True, max_input_length=256,
                      tasks=["sequential", "direct", "explanation"])
    batch, plain = model.collate(samples), collate(samples, t5_tokenizer)
    assert batch["input_ids"].shape[1] <= plain["input_ids"].shape[1]
    assert batch["input_ids"].shape[0] < len(samples)


def test_a_batch_that_packs_into_as_many_rows_stays_plain(models, samples):
    _, model = models
    lone = max(samples, key=lambda s: len(s.input_ids))
    batch = model.collate([lone, lone])  # 2 x >128 tokens: no two fit in 256
    assert len(lone.input_ids) > 128 and "segments" not in batch
    assert batch["input_ids"].shape[0] == 2


def test_inference_batches_are_never_packed(models):
    plain_model, model = models
    users, histories = torch.tensor([0, 1, 2]), [torch.tensor([3, 4]), torch.tensor([5]),
                                                 torch.tensor([6, 7, 8])]
    torch.testing.assert_close(model.score_items(users, histories),
                               plain_model.score_items(users, histories))


# ---- configuration ---------------------------------------------------------------------------
@pytest.mark.parametrize("value", [-1, 513])
def test_pack_length_is_checked(value):
    with pytest.raises(ConfigError, match=r"^config field model.pack_length: must be in"):
        build(VIP5Config, {"backbone": "tiny", "image_tokens": 0, "pack_length": value})


def test_pack_training_needs_a_t5_backbone(make_vip5, t5_tokenizer, monkeypatch):
    import mfmrec.models.vip5 as vip5

    real = vip5.backbone_for

    def not_t5(*args, **kwargs):
        model = real(*args, **kwargs)
        model.config.model_type = "bart"  # absolute positions: packing would change losses
        return model

    monkeypatch.setattr(vip5, "backbone_for", not_t5)
    with pytest.raises(ConfigError, match=r"^config field model.pack_training: needs a T5"):
        make_vip5(t5_tokenizer, pack_training=True)
    make_vip5(t5_tokenizer, tuning="full")  # packing off (and no adapters): it builds
