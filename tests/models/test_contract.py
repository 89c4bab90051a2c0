"""Every registered model through the shared Recommender checks (parametrised tables):
the baselines in depth, and every model in the registry, VIP5 and IISAN included."""

from __future__ import annotations

import iisan_fixtures as mm
import pytest
import torch
from safetensors.torch import load_file, save_file

from mfmrec.config import build
from mfmrec.evaluation.config import EvalConfig
from mfmrec.evaluation.evaluator import evaluate
from mfmrec.models import registry
from mfmrec.models.base import (
    EXPLANATION,
    GENERATED_LIST,
    RATING,
    SCORES,
    SEQUENTIAL,
    TASKS,
    Recommender,
    task_of_prompt,
)

TINY = {
    "sasrec": {"hidden": 16, "layers": 2, "heads": 2, "inner": 32, "max_len": 6},
    "bpr-mf": {"dim": 8},
    "bpr-mlp": {"dim": 8, "layers": [16, 8]},
    "vbpr": {"dim": 4, "visual_dim": 4},
    "peter": {"hidden": 16, "heads": 2, "ffn": 32, "layers": 1, "max_words": 8},
    "peter+": {"hidden": 16, "heads": 2, "ffn": 32, "layers": 1, "max_words": 8},
}
BASELINES = ["sasrec", "bpr-mf", "bpr-mlp", "vbpr", "peter", "peter+"]


def test_every_baseline_is_registered():
    assert set(BASELINES) <= set(registry.names())
    assert set(TINY) == set(BASELINES)


def make(name: str, dataset, seed: int = 0) -> Recommender:
    entry = registry.get(name)
    torch.manual_seed(seed)
    model = entry.builder(build(entry.config_cls, TINY[name]), dataset)
    assert isinstance(model, Recommender) and model.name == name
    return model


def fixed_batch(model: Recommender, dataset) -> dict:
    data = model.train_data(dataset, "train", seed=0)
    data.set_epoch(0)
    assert len(data) > 0
    return model.collate([data[i] for i in range(min(24, len(data)))])


def eval_loss(model: Recommender, batch: dict) -> float:
    model.eval()
    with torch.no_grad():
        return float(model.training_loss(batch))


def outputs(model: Recommender, dataset) -> dict[str, torch.Tensor | list]:
    """What a model produces for the evaluator, on a fixed set of users/reviews."""
    model.eval()
    users, hists, _ = dataset.targets("test")
    users, hists = torch.as_tensor(users[:5]), [torch.as_tensor(h) for h in hists[:5]]
    with torch.no_grad():
        if EXPLANATION in model.tasks:
            reviews = dataset.reviews_of("test").slice(0, 4).to_pylist()
            return {"text": model.explain(reviews),
                    "rating": model.predict_rating(torch.tensor([r["user"] for r in reviews]),
                                                   torch.tensor([r["item"] for r in reviews]))}
        return {"scores": model.score_items(users, hists)}


@pytest.mark.parametrize("name", BASELINES)
def test_training_steps_lower_the_loss_on_a_fixed_batch(name, walk):
    model = make(name, walk)
    batch = fixed_batch(model, walk)
    before = eval_loss(model, batch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(5):
        model.train()
        loss = model.training_loss(batch)
        assert loss.ndim == 0 and torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert eval_loss(model, batch) < before


@pytest.mark.parametrize("name", BASELINES)
def test_trainable_state_round_trip_gives_identical_outputs(name, walk, tmp_path):
    model = make(name, walk, seed=0)
    batch = fixed_batch(model, walk)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss = model.training_loss(batch)
    loss.backward()
    opt.step()  # move away from the initialisation a fresh build reproduces
    state = model.trainable_state_dict()
    assert state and all(not t.requires_grad for t in state.values())
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "m.safetensors"))
    fresh = make(name, walk, seed=123)
    fresh.load_trainable_state_dict(load_file(str(tmp_path / "m.safetensors")))
    want, got = outputs(model, walk), outputs(fresh, walk)
    for key, value in want.items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(got[key], value, rtol=0, atol=0)
        else:
            assert got[key] == value


@pytest.mark.parametrize("name", [n for n in BASELINES if not n.startswith("peter")])
def test_scores_have_the_right_shapes_and_agree(name, walk):
    model = make(name, walk).eval()
    assert SEQUENTIAL in model.tasks
    users, hists, targets = walk.targets("test")
    users, hists = torch.as_tensor(users[:7]), [torch.as_tensor(h) for h in hists[:7]]
    with torch.no_grad():
        scores = model.score_items(users, hists)
        assert scores.shape == (7, walk.num_items) and torch.isfinite(scores).all()
        cands = torch.as_tensor(walk.candidates("test").items[:7])
        by_cand = model.score_candidates(users, hists, cands)
        top = model.recommend(users, hists, k=3)
    assert by_cand.shape == (7, 4)
    torch.testing.assert_close(by_cand, scores.gather(1, cands), rtol=1e-5, atol=1e-5)
    assert top.shape == (7, 3)
    assert torch.equal(top[:, 0], scores.argmax(1))


@pytest.mark.parametrize("name", ["peter", "peter+"])
def test_explanation_models_return_one_string_per_request(name, walk):
    model = make(name, walk).eval()
    reviews = walk.reviews_of("test").slice(0, 3).to_pylist()
    texts = model.explain(reviews)
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    assert all(len(t.split()) <= TINY[name]["max_words"] for t in texts)
    assert model.explain([]) == []
    ratings = model.predict_rating(torch.tensor([0, 1]), torch.tensor([2, 3]))
    assert ratings.shape == (2,)


@pytest.mark.parametrize("name", BASELINES)
def test_unknown_config_keys_are_refused(name):
    from mfmrec.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown config key"):
        build(registry.get(name).config_cls, {"no_such_field": 1})


# ---- every registered model, VIP5 and IISAN included ---------------------------------------
# (dataset fixture, tiny model config) per registry name; a new model must add its row
VIP5_TINY = {"backbone": "tiny", "image_features": "efficientnet-lite0", "beams": 3,
             "max_input_length": 128, "image_tokens": 1}
ALL_MODELS = {
    **{name: ("walk", fields) for name, fields in TINY.items()},
    "popularity": ("walk", {}),
    "most-frequent-explanation": ("walk", {}),
    "vip5": ("walk_ids", VIP5_TINY),
    "tiger": ("walk_ids", {"backbone": "tiny", "indexing": "semantic:contract",
                           "user_tokens": 8, "beams": 3}),
    "iisan": ("synthetic", mm.synthetic_config()),
    "iisan-uncached": ("encoded_paths", {}),
    "mm-full-ft": ("encoded_paths", {}),
    "mm-encoder-adapters": ("encoded_paths", {}),
}
SMALL_EVAL = {"users": 4, "batch_size": 2, "hr_ks": [1, 5], "ndcg_ks": [5]}


@pytest.fixture(scope="module")
def walk_ids(walk):
    """The walk with a semantic ID set ``contract`` built from its image features."""
    from mfmrec.ids import IdBuildConfig, build_ids

    build_ids(walk.root, "contract", IdBuildConfig(levels=2, codebook=3,
                                                   features=["efficientnet-lite0"]))
    return walk


@pytest.fixture(scope="module")
def encoded_paths(encoded, tiny_encoders):
    return encoded, mm.encoded_config(tiny_encoders)


def _dataset_and_fields(request, name: str):
    fixture, fields = ALL_MODELS[name]
    value = request.getfixturevalue(fixture)
    return value if isinstance(value, tuple) else (value, fields)


def test_the_contract_table_covers_every_registered_model():
    shipped = {name for name in registry.names()  # tests register models of their own
               if registry.get(name).builder.__module__.startswith("mfmrec.")}
    assert set(ALL_MODELS) == shipped


def _check_declarations(model: Recommender) -> None:
    assert model.tasks and model.tasks <= set(TASKS)
    assert model.produces in (SCORES, GENERATED_LIST)
    for task in model.tasks - {RATING}:
        prompt = model.default_prompts.get(task)
        assert prompt is None or task_of_prompt(prompt) == task


def _one_training_step(model: Recommender, dataset) -> None:
    """A step on a real batch changes the trainable tensors (models that train)."""
    if not any(p.requires_grad for p in model.parameters()):
        return
    data = model.train_data(dataset, "train", seed=0)
    batch = model.collate([data[i] for i in range(min(4, len(data)))])
    before = {k: v.clone() for k, v in model.trainable_state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    loss = model.training_loss(batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    opt.step()
    after = model.trainable_state_dict()
    assert set(after) == set(before)
    assert any(not torch.equal(after[k], before[k]) for k in before)


@pytest.mark.parametrize("name", sorted(ALL_MODELS))
def test_every_registered_model_trains_and_evaluates_through_the_contract(name, request):
    dataset, fields = _dataset_and_fields(request, name)
    entry = registry.get(name)
    torch.manual_seed(0)
    model = entry.builder(build(entry.config_cls, fields, prefix="model."), dataset)
    assert isinstance(model, Recommender)
    _check_declarations(model)
    _one_training_step(model, dataset)
    results = evaluate(model, dataset, EvalConfig(**SMALL_EVAL), progress=False)
    # every declared task is evaluated, or skipped for a reason of the data, not the model
    assert set(results["tasks"]) | set(results["skipped"]) == set(model.tasks)
    assert not any("does not support" in why for why in results["skipped"].values())
    assert results["tasks"], f"{name}: nothing evaluated"
    for task, body in results["tasks"].items():
        for entry_ in body["prompts"].values():
            values = [entry_[k] for k in ("HR@1", "HR@5", "NDCG@5") if k in entry_]
            assert all(0.0 <= v <= 1.0 for v in values), (task, entry_)


def test_plugins_that_cannot_load_fail_in_one_line(tmp_path):
    from mfmrec.errors import ConfigError

    with pytest.raises(ConfigError, match="nowhere.py not found"):
        registry.load_plugin("nowhere.py", tmp_path)
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ConfigError, match="broken.py failed to import .RuntimeError: boom"):
        registry.load_plugin("broken.py", tmp_path)
    with pytest.raises(ConfigError, match="cannot import 'no_such_module_here'"):
        registry.load_plugin("no_such_module_here")
