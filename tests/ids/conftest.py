"""A tiny dataset with two small feature stores, and hand-written run directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from ids_fixtures import clustered

from mfmrec.data import RawDataset, write_dataset
from mfmrec.features.store import save_features

NUM_ITEMS = 40


@pytest.fixture
def tiny_ids_data(tmp_path: Path) -> Path:
    """40 items, 6 users; stores ``img`` (40 x 16, items 3 and 7 missing) and ``txt``
    (40 x 8)."""
    seqs = [[(u * 5 + k) % NUM_ITEMS for k in range(4)] for u in range(6)]
    raw = RawDataset(name="tiny-ids", user_ids=[f"U{u}" for u in range(6)],
                     item_ids=[f"I{i}" for i in range(NUM_ITEMS)], sequences=seqs,
                     item_titles=[f"item {i}" for i in range(NUM_ITEMS)], simulated=True)
    root = write_dataset(raw, tmp_path / "tiny", num_negatives=1)
    missing = torch.zeros(NUM_ITEMS, dtype=torch.bool)
    missing[[3, 7]] = True
    save_features(root, "img", clustered(NUM_ITEMS, 16, 6, seed=1), missing,
                  {"encoder": "random-img"})
    save_features(root, "txt", clustered(NUM_ITEMS, 8, 4, seed=2),
                  torch.zeros(NUM_ITEMS, dtype=torch.bool), {"encoder": "random-txt"})
    return root


@pytest.fixture
def make_run(tmp_path: Path):
    """Factory: a run directory of a registered model with its initial weights saved
    as the final ones (what `mfmrec train` leaves, minus the training)."""
    from mfmrec.training.checkpoint import save_tensors
    from mfmrec.training.config import resolve
    from mfmrec.training.runs import build_model

    def make(data: Path, model: dict, name: str = "run") -> Path:
        from mfmrec.data import load_dataset

        run = tmp_path / name
        (run / "final").mkdir(parents=True)
        config = resolve({"model": model})
        (run / "config.yaml").write_text(config.to_yaml())
        (run / "run.json").write_text(json.dumps({"dataset": str(data)}) + "\n")
        net = build_model(config, load_dataset(data))
        save_tensors(run / "final" / "trainable.safetensors", net.trainable_state_dict())
        return run

    return make
