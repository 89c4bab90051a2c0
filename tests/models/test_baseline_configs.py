"""The shipped baseline configs load, resolve and train one step on the tiny walk data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mfmrec.models import registry
from mfmrec.training.config import load_run_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SHIPPED = {"sasrec.yaml": "sasrec", "bpr-mf.yaml": "bpr-mf", "bpr-mlp.yaml": "bpr-mlp",
           "vbpr.yaml": "vbpr", "peter.yaml": "peter", "peter-plus.yaml": "peter+"}


@pytest.mark.parametrize("filename", sorted(SHIPPED))
def test_shipped_config_builds_and_takes_a_step(filename, walk):
    run = load_run_config(CONFIGS / filename)
    assert run.model_name == SHIPPED[filename]
    torch.manual_seed(0)
    model = registry.get(run.model_name).builder(run.model, walk)
    data = model.train_data(walk, "train", run.train.seed)
    batch = model.collate([data[i] for i in range(min(8, len(data)))])
    loss = model.training_loss(batch)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert torch.isfinite(loss) and any(g is not None and g.abs().sum() > 0 for g in grads)


def test_overrides_reach_the_model_config():
    run = load_run_config(CONFIGS / "sasrec.yaml", ["model.loss=bce", "model.hidden=32"])
    cfg = run.model
    assert (cfg.loss, cfg.hidden, cfg.max_len) == ("bce", 32, 50)
