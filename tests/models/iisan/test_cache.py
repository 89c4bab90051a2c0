"""The memory-mapped layer cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from iisan_fixtures import IMAGE_STATES, IMAGE_WIDTH, synthetic_states

from mfmrec.errors import DataError
from mfmrec.features.store import save_features
from mfmrec.models.iisan.cache import LayerCache


def test_rows_are_the_stored_states_of_the_asked_items_and_layers(synthetic):
    expected = synthetic_states(synthetic.num_items)  # the very tensors on disk
    cache = LayerCache.open(synthetic, "syn-image")
    assert (cache.num_items, cache.num_states, cache.dim) == (16, IMAGE_STATES, IMAGE_WIDTH)
    rows = cache.rows(torch.tensor([3, 0, 3]), [0, 2, 6])
    assert rows.shape == (3, 3, IMAGE_WIDTH) and rows.dtype == torch.float32
    assert torch.equal(rows[0], expected["image"][3, [0, 2, 6]])
    assert torch.equal(rows[1], expected["image"][0, [0, 2, 6]])
    assert torch.equal(rows[2], rows[0])
    assert cache.missing.tolist() == [i == 5 for i in range(16)]
    assert cache.layer_dims == [IMAGE_WIDTH] * IMAGE_STATES


def test_the_cache_is_a_read_only_memory_map(synthetic):
    cache = LayerCache.open(synthetic, "syn-text")
    assert isinstance(cache.states, np.memmap)
    with pytest.raises(ValueError):
        cache.states[0, 0, 0] = 1.0
    with pytest.raises(IndexError):
        cache.rows([16], [0])


def test_missing_or_mismatched_caches_are_one_line_data_errors(synthetic, tmp_path):
    with pytest.raises(DataError, match="--encoder nope --layers"):
        LayerCache.open(synthetic, "nope")
    flat = tmp_path / "flat"
    save_features(flat, "flat", torch.zeros(4, 3), torch.zeros(4, dtype=torch.bool),
                  {"encoder": "x"}, item_ids=[f"i{i}" for i in range(4)])
    with pytest.raises(DataError, match="--layers"):
        LayerCache(flat / "features" / "flat.safetensors")
    other = tmp_path / "other"
    save_features(other, "syn-text-layers", torch.zeros(3, 2, 2),
                  torch.zeros(3, dtype=torch.bool), {"encoder": "x"},
                  item_ids=["a", "b", "c"])

    class Fake:
        root, num_items, item_ids = other, 16, [f"i{i}" for i in range(16)]

    with pytest.raises(DataError, match="3 rows but the dataset has 16"):
        LayerCache.open(Fake, "syn-text")
