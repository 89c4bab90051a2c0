"""Every shipped ``configs/*.yaml`` loads as it is and trains one step through the trainer.

The list is whatever ``configs/`` holds: a new config is tested the day it lands. Loading
uses the file unchanged (the model's config class from the registry refuses unknown
keys); the training step shrinks sizes with the per-model overrides in ``TINY`` (so a
t5-small-shaped VIP5 becomes the ``tiny`` preset) and runs on a small SIMULATED demo
dataset with random image features for every feature name a config asks for.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml

from mfmrec.training.config import load_run_config
from mfmrec.training.runs import load_run, train

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))

# per registry name: overrides that make one step cheap without changing what runs
TINY = {
    "vip5": ["model.backbone=tiny", "model.num_negatives=4", "model.beams=2",
             "model.max_input_length=128", "model.max_target_length=16",
             "model.explain_max_tokens=8"],
    "peter": ["model.hidden=16", "model.ffn=32", "model.vocab_size=200"],
    "peter+": ["model.hidden=16", "model.ffn=32", "model.vocab_size=200"],
    "sasrec": ["model.hidden=16", "model.inner=32", "model.max_len=10"],
    "bpr-mf": ["model.dim=8"], "bpr-mlp": ["model.dim=8", "model.layers=[8,4]"],
    "vbpr": ["model.dim=4", "model.visual_dim=4"],
    "tiger": ["model.backbone=tiny", "model.beams=2", "model.user_tokens=16",
              "model.max_input_length=64"],
}
_SMALL_USER_ENCODER = ["model.hidden=8", "model.layers=1", "model.heads=2", "model.inner=16",
                       "model.max_len=6"]
for _name in ("iisan", "iisan-uncached", "mm-full-ft", "mm-encoder-adapters"):
    TINY[_name] = [*_SMALL_USER_ENCODER, "model.adapter_dim=4"]
ONE_STEP = ["train.epochs=1", "train.max_steps=1", "train.batch_size=4", "train.precision=no",
            "train.checkpoint_every=0", "train.num_workers=0", "train.gradient_accumulation=1",
            "train.log_every=1", "train.cpu=true"]


def _model_sections() -> list[dict]:
    return [(yaml.safe_load(p.read_text()) or {}).get("model") or {} for p in CONFIGS]


def _write_simulated_features(ds) -> None:
    """Random stores, labelled simulated, for every feature name the configs ask for:
    item features (``image_features``) and per-layer caches (``*_encoder`` fields)."""
    from mfmrec.features.store import layers_name, save_features

    gen = torch.Generator().manual_seed(0)
    none = torch.zeros(ds.num_items, dtype=torch.bool)
    flat = {m["image_features"] for m in _model_sections()
            if isinstance(m.get("image_features"), str)}
    layered = {(key.split("_")[0], value) for m in _model_sections()
               for key, value in m.items() if key.endswith("_encoder") and isinstance(value, str)}
    for name in sorted(flat):  # (N, d)
        save_features(ds, name, torch.randn(ds.num_items, 16, generator=gen), none,
                      {"encoder": "random features for config tests (simulated)"})
    for modality, name in sorted(layered):  # (N, L+1, d): 8 layers cover every shipped tap
        save_features(ds, layers_name(name), torch.randn(ds.num_items, 9, 8, generator=gen),
                      none, {"encoder": "random layer states for config tests (simulated)",
                             "modality": modality})
    _build_semantic_ids(ds, gen)


def _build_semantic_ids(ds, gen) -> None:
    """Semantic ID sets (``indexing: semantic:NAME``) from a random store, simulated."""
    from mfmrec.features.store import save_features
    from mfmrec.ids import IdBuildConfig, build_ids

    names = {str(m["indexing"]).split(":", 1)[1] for m in _model_sections()
             if str(m.get("indexing", "")).startswith("semantic:")}
    if names:
        save_features(ds, "random-ids-input", torch.randn(ds.num_items, 8, generator=gen),
                      torch.zeros(ds.num_items, dtype=torch.bool),
                      {"encoder": "random features for config tests (simulated)"})
    for name in sorted(names):
        build_ids(ds.root, name, IdBuildConfig(levels=2, codebook=4,
                                               features=["random-ids-input"]))


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    from mfmrec.data import load_dataset
    from mfmrec.data.demo import build_demo

    root = build_demo(tmp_path_factory.mktemp("configs") / "demo", seed=0, num_users=16,
                      num_items=110, min_len=5, max_len=8, image_size=16)
    _write_simulated_features(load_dataset(root))
    return root


def test_configs_exist():
    assert CONFIGS, "configs/ ships no *.yaml; every config must be tested here"


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_loads_unchanged(path):
    config = load_run_config(path)
    raw = yaml.safe_load(path.read_text())
    for key, value in (raw.get("train") or {}).items():
        got = getattr(config.train, key)
        assert got == (tuple(value) if isinstance(value, list) else value), key
    assert config.model_name == raw["model"]["name"]
    # every section is its typed dataclass, with the YAML's values
    from mfmrec.evaluation.config import EvalConfig
    from mfmrec.models import registry

    assert type(config.model) is registry.get(config.model_name).config_cls
    for key, value in raw["model"].items():
        if key != "name":
            got = getattr(config.model, key)
            assert got == value or list(got) == value, f"model.{key}"
    assert isinstance(config.eval, EvalConfig)
    for key, value in (raw.get("eval") or {}).items():
        assert getattr(config.eval, key) == value, f"eval.{key}"


@pytest.mark.parametrize("section", ["model", "train", "eval"])
def test_a_typo_in_any_section_fails_at_load(section, tmp_path):
    from mfmrec.errors import ConfigError

    raw = yaml.safe_load((CONFIGS[0].parent / "sasrec.yaml").read_text())
    raw.setdefault(section, {})["no_such_key"] = 1
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=f"unknown config key {section}.no_such_key"):
        load_run_config(path)


@pytest.mark.slow
@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_trains_one_step(path, demo_dir, tmp_path):
    name = load_run_config(path).model_name
    config = load_run_config(path, TINY.get(name, []) + ONE_STEP)
    result = train(config, demo_dir, tmp_path / "run", quiet=True)
    assert result.state.step == 1
    assert result.last_loss is not None and math.isfinite(result.last_loss)
    assert result.trainable and (tmp_path / "run/final/trainable.safetensors").is_file()
    loaded = load_run(tmp_path / "run")  # the registry rebuilds it and the weights fit
    assert loaded.config == config  # the stored resolved config round-trips
    for key, value in loaded.model.trainable_state_dict().items():
        assert torch.equal(value, result.trainable[key]), key
