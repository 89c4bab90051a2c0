"""Cached IISAN on synthetic caches: batches, loss, training, scoring, fallbacks, configs."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch
from iisan_fixtures import IMAGE_WIDTH, TEXT_WIDTH, synthetic_config, walk_raw

from mfmrec.config import build
from mfmrec.data import load_dataset
from mfmrec.data.writer import write_dataset
from mfmrec.errors import ConfigError, DataError
from mfmrec.evaluation.config import EvalConfig
from mfmrec.evaluation.evaluator import evaluate
from mfmrec.models import registry
from mfmrec.models.iisan import IISANConfig
from mfmrec.models.iisan.sequential import (
    PAD,
    ContentSequenceModel,
    collate_unique,
    log_popularity,
)
from mfmrec.models.sasrec import SASRecConfig


def make(dataset, name: str = "iisan", seed: int = 0, **cfg):
    entry = registry.get(name)
    torch.manual_seed(seed)
    return entry.builder(build(entry.config_cls, synthetic_config(**cfg)), dataset)


def first_batch(model, dataset, n: int = 8) -> dict:
    data = model.train_data(dataset, "train", seed=0)
    data.set_epoch(0)
    return model.collate([data[i] for i in range(n)])


def train_steps(model, batch: dict, steps: int = 5, lr: float = 1e-2) -> list[float]:
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        model.train()
        loss = model.training_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def test_collate_keeps_each_batch_item_once_and_points_into_it():
    samples = [{"input": np.array([4, 7]), "target": np.array([7, 9])},
               {"input": np.array([2]), "target": np.array([4])}]
    batch = collate_unique(samples)
    assert batch["items"].tolist() == [2, 4, 7, 9]
    assert batch["input_pos"].tolist() == [[1, 2], [PAD, 0]]
    assert batch["target_pos"].tolist() == [[2, 3], [PAD, 1]]


def test_log_popularity_counts_training_occurrences():
    pop = log_popularity([np.array([0, 1, 1]), np.array([1, 3])], 4)
    assert torch.allclose(pop, torch.tensor([0.0, math.log(3), 0.0, 0.0]))


class FixedVectors(ContentSequenceModel):
    """Item vectors from a plain table, to check the loss by hand."""

    name = "fixed"

    def __init__(self, table: torch.Tensor, log_pop: torch.Tensor, logq: bool):
        cfg = SASRecConfig(hidden=table.shape[1], layers=1, heads=1, inner=4, max_len=3,
                           hidden_dropout=0.0, attn_dropout=0.0, samples="sequence")
        super().__init__(cfg, table.shape[0], log_pop, logq=logq)
        self.table = torch.nn.Parameter(table)

    def item_vectors(self, items):
        return self.table[items]


@pytest.mark.parametrize("logq", [True, False])
def test_in_batch_loss_by_hand(logq):
    torch.manual_seed(0)
    table, log_pop = torch.randn(6, 4), torch.log(torch.tensor([1.0, 2, 3, 4, 5, 6]))
    model = FixedVectors(table, log_pop, logq).eval()
    # user 0: 1 -> 3 -> 5 ; user 1: 3 -> 2
    batch = collate_unique([{"input": np.array([1, 3]), "target": np.array([3, 5])},
                            {"input": np.array([3]), "target": np.array([2])}])
    items = batch["items"].tolist()  # [1, 2, 3, 5]
    with torch.no_grad():
        hidden = model.user_encoder(table[batch["items"]][batch["input_pos"].clamp(min=0)],
                                    batch["input_pos"] != PAD)
    expected = []
    for (b, t), target, own in (((0, 0), 3, {1, 3, 5}), ((0, 1), 5, {1, 3, 5}),
                                ((1, 1), 2, {3, 2})):
        logits = {}
        for j in items:
            if j in own and j != target:
                continue  # the user's other items are not negatives
            logits[j] = float(hidden[b, t] @ table[j]) - (float(log_pop[j]) if logq else 0.0)
        z = np.array(list(logits.values()))
        expected.append(-(logits[target] - np.log(np.exp(z).sum())))
    with torch.no_grad():
        loss = float(model.training_loss(batch))
    assert loss == pytest.approx(np.mean(expected), rel=1e-5)


def test_cached_iisan_trains_and_scores_all_items(synthetic):
    model = make(synthetic)
    assert model.name == "iisan" and model.modalities == ("text", "image")
    assert model.taps == {"text": [2, 4], "image": [2, 4, 6]}  # every second layer
    batch = first_batch(model, synthetic)
    losses = train_steps(model, batch)
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]
    model.eval()
    users, hists, _ = synthetic.targets("test")
    users, hists = torch.as_tensor(users[:4]), [torch.as_tensor(h) for h in hists[:4]]
    scores = model.score_items(users, hists)
    assert scores.shape == (4, synthetic.num_items)
    cands = torch.as_tensor(synthetic.candidates("test").items[:4])
    assert torch.allclose(model.score_candidates(users, hists, cands), scores.gather(1, cands),
                          atol=1e-5)
    table = model.all_item_vectors()
    assert model.all_item_vectors() is table  # kept while in eval mode
    model.train()
    assert model._table is None


def test_cached_training_never_builds_runs_or_changes_an_encoder(synthetic, monkeypatch):
    from mfmrec.features import efficientnet, encoders, text

    def forbidden(*args, **kwargs):
        raise AssertionError("an encoder was used during cached training")

    monkeypatch.setattr(encoders, "build_encoder", forbidden)
    monkeypatch.setattr(text.HFTextEncoder, "__init__", forbidden)
    monkeypatch.setattr(efficientnet.EfficientNetLite0, "forward_layers", forbidden)
    files = sorted((synthetic.root / "features").glob("*-layers.safetensors"))
    before = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    model = make(synthetic)
    from transformers import PreTrainedModel

    assert not any(isinstance(m, (PreTrainedModel, efficientnet.EfficientNetLite0))
                   for m in model.modules())
    train_steps(model, first_batch(model, synthetic), steps=2)
    model.eval()
    model.score_items(torch.tensor([0]), [torch.tensor([1, 2])])
    after = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    assert after == before


def test_missing_photos_use_a_learned_vector(synthetic):
    model = make(synthetic)
    fill = model.item_states.fill["image"]
    states = model.item_states(torch.tensor([5, 6]))["image"]  # item 5 has no photo
    assert torch.equal(states[0], fill.vector) and not torch.equal(states[1], fill.vector)
    batch = first_batch(model, synthetic, n=16)
    assert 5 in batch["items"].tolist()
    model.training_loss(batch).backward()
    assert fill.vector.grad is not None and fill.vector.grad.abs().sum() > 0


def test_titles_only_dataset_falls_back_to_the_text_tower(titles_only):
    model = make(titles_only)
    assert model.modalities == ("text",) and model.side.image is None
    losses = train_steps(model, first_batch(model, titles_only))
    assert losses[-1] < losses[0]
    result = evaluate(model, titles_only, EvalConfig(tasks=["sequential"]), progress=False)
    assert "sequential" in result["tasks"]


def test_photos_without_an_image_cache_is_a_data_error(tmp_path, photos):
    out = tmp_path / "data"
    write_dataset(walk_raw(photos), out, seed=1, num_negatives=5)
    ds = load_dataset(out)
    from iisan_fixtures import write_synthetic_caches

    write_synthetic_caches(ds, image=False)
    with pytest.raises(DataError, match="--encoder syn-image --layers"):
        make(ds)
    assert make(ds, image_encoder=None).modalities == ("text",)


def test_asymmetric_versa_config_trains_and_evaluates(synthetic):
    model = make(synthetic, text_layers=[1, 2, 3, 4], image_layers=[3, 6], align="image_to_text")
    side = model.side
    assert (len(side.text), len(side.image), len(side.inter)) == (4, 2, 2)
    assert [(a.in_features, a.out_features) for a in side.align] == [(IMAGE_WIDTH, TEXT_WIDTH)] * 3
    losses = train_steps(model, first_batch(model, synthetic))
    assert losses[-1] < losses[0]
    result = evaluate(model,
                      synthetic,
                      EvalConfig(tasks=["sequential", "direct"]),
                      progress=False)
    for task in ("sequential", "direct"):
        metrics = result["tasks"][task]["prompts"]["-"]
        assert 0.0 <= metrics["HR@5"] <= metrics["HR@10"] <= 1.0


def test_trainable_state_round_trip_restores_the_scores(synthetic):
    model = make(synthetic, seed=0)
    train_steps(model, first_batch(model, synthetic), steps=3)
    state = model.trainable_state_dict()
    assert not any("cache" in k for k in state)
    other = make(synthetic, seed=1)
    other.load_trainable_state_dict(state)
    model.eval(), other.eval()
    hist = [torch.tensor([1, 2, 3])]
    assert torch.allclose(model.score_items(torch.tensor([0]), hist),
                          other.score_items(torch.tensor([0]), hist))


@pytest.mark.parametrize("field,value,match", [
    ("text_layers", [2, 2], "strictly increasing"),
    ("image_layers", [0, 1], "counted from 1"),
    ("align", "sideways", "model.align"),
    ("fusion", "max", "model.fusion"),
    ("gate_temperature", 0.0, "model.gate_temperature"),
    ("side_dropout", 1.0, "model.side_dropout"),
])
def test_bad_configs_name_the_field(field, value, match):
    with pytest.raises(ConfigError, match=match):
        build(IISANConfig, {field: value}, prefix="model.")


def test_a_tap_beyond_the_encoder_depth_is_a_config_error(synthetic):
    with pytest.raises(ConfigError, match="model.text_layers: layer 5 does not exist"):
        make(synthetic, text_layers=[2, 5])


def test_trainer_run_reloads_and_evaluates(synthetic, tmp_path):
    from mfmrec.training.config import resolve
    from mfmrec.training.runs import load_run, train

    config = resolve({"model": {"name": "iisan", **synthetic_config()},
                      "train": {"epochs": 1, "batch_size": 8, "max_steps": 2}})
    result = train(config, synthetic.root, tmp_path / "run", quiet=True)
    assert result.state.step == 2
    assert result.efficiency["parameters"]["by_part"]["text tower"] > 0
    run = load_run(tmp_path / "run")
    hist = [torch.tensor([1, 2, 3])]
    trained = make(synthetic, seed=5)
    trained.load_trainable_state_dict(result.trainable)
    trained.eval()
    assert torch.allclose(run.model.score_items(torch.tensor([0]), hist),
                          trained.score_items(torch.tensor([0]), hist), atol=1e-6)
