"""The shipped IISAN-family configs load, resolve, and take a training step.

The configs name the real encoders (MiniLM, EfficientNet-Lite0); the step runs with the
encoders swapped for the tiny random ones by dotted overrides, as a user would on the
command line, so everything else (sizes, taps, loss, trainer settings) is as shipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mfmrec.models import registry
from mfmrec.training.config import load_run_config

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
SHIPPED = {"iisan.yaml": "iisan", "iisan-versa.yaml": "iisan",
           "iisan-uncached.yaml": "iisan-uncached", "mm-full-ft.yaml": "mm-full-ft",
           "mm-encoder-adapters.yaml": "mm-encoder-adapters", "mm-sasrec-id.yaml": "sasrec"}
# the tiny BERT has 4 layers and the tiny CLIP 3: tap lists that fit them
TINY_TAPS = {"iisan-versa.yaml": ["model.text_layers=[1,2,3,4]", "model.image_layers=[3]"]}


def tiny_overrides(filename: str, paths: dict[str, Path]) -> list[str]:
    if SHIPPED[filename] == "sasrec":
        return []
    out = ["model.text_encoder=hf-bert", "model.image_encoder=clip-vit-b32"]
    if SHIPPED[filename] != "iisan":
        out += [f"model.text_model_path={paths['bert']}",
                f"model.image_model_path={paths['clip']}"]
    return out + TINY_TAPS.get(filename, [])


@pytest.mark.parametrize("filename", sorted(SHIPPED))
def test_shipped_config_names_the_real_encoders(filename):
    run = load_run_config(CONFIGS / filename)
    assert run.model_name == SHIPPED[filename]
    if run.model_name != "sasrec":
        cfg = run.model
        assert (cfg.text_encoder, cfg.image_encoder) == ("minilm", "efficientnet-lite0")
    assert run.eval.tasks == ["sequential", "direct"]


@pytest.mark.parametrize("filename", sorted(SHIPPED))
def test_shipped_config_takes_a_step(filename, encoded, tiny_encoders):
    run = load_run_config(CONFIGS / filename, tiny_overrides(filename, tiny_encoders))
    torch.manual_seed(0)
    model = registry.get(run.model_name).builder(run.model, encoded)
    data = model.train_data(encoded, "train", run.train.seed)
    batch = model.collate([data[i] for i in range(4)])
    loss = model.training_loss(batch)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert torch.isfinite(loss) and any(g is not None and g.abs().sum() > 0 for g in grads)


def test_versa_config_is_asymmetric():
    cfg = load_run_config(CONFIGS / "iisan-versa.yaml").model
    assert len(cfg.text_layers) != len(cfg.image_layers)
    assert cfg.align == "image_to_text"
