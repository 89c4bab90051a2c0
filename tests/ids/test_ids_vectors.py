"""Per-level code vectors: what each code means in the input space, stored with the IDs."""

from __future__ import annotations

import pytest
import torch

from mfmrec.errors import DataError
from mfmrec.ids import IdBuildConfig, build_ids, code_vectors, load_code_vectors
from mfmrec.ids.vectors import vectors_path


def test_code_vectors_are_per_level_residual_means():
    x = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 4.0]])
    codes = torch.tensor([[0, 1], [0, 0], [2, 1], [2, 0]])
    v = code_vectors(x, codes, codebook=3)  # (2, 3, 2)
    assert v.shape == (2, 3, 2)
    assert torch.equal(v[0], torch.tensor([[2.0, 0.0], [0.0, 0.0], [0.0, 3.0]]))
    # residuals after level 0: (-1,0), (1,0), (0,-1), (0,1)
    assert torch.equal(v[1, 1], torch.tensor([-0.5, -0.5]))
    assert torch.equal(v[1, 0], torch.tensor([0.5, 0.5]))
    assert torch.equal(v[1, 2], torch.zeros(2))  # unused code


def test_build_writes_vectors_that_match_the_codes_and_reload(tiny_ids_data):
    ids = build_ids(tiny_ids_data, "v", IdBuildConfig(levels=2, codebook=4, features=["txt"]))
    path = vectors_path(tiny_ids_data / "ids" / "v.parquet")
    first = path.read_bytes()
    vectors = load_code_vectors(tiny_ids_data, ids)  # (L, K, D)
    assert vectors.shape == (2, 4, 8)
    # level 0 is each code's centroid: the mean of its items' normalised rows
    from mfmrec.ids import feature_inputs

    x = feature_inputs(tiny_ids_data, ["txt"]).matrix
    codes = torch.tensor([c[:2] for c in ids.codes])
    for code in range(4):
        assert torch.allclose(vectors[0, code], x[codes[:, 0] == code].mean(0), atol=1e-6)
    build_ids(tiny_ids_data, "v", IdBuildConfig(levels=2, codebook=4, features=["txt"]))
    assert path.read_bytes() == first  # same inputs and seed, same bytes


def test_missing_or_malformed_vectors_are_one_line_errors(tiny_ids_data):
    ids = build_ids(tiny_ids_data, "w", IdBuildConfig(levels=1, codebook=4, features=["txt"]))
    path = vectors_path(tiny_ids_data / "ids" / "w.parquet")
    path.write_bytes(b"not safetensors")
    with pytest.raises(DataError, match="not a readable safetensors file") as err:
        load_code_vectors(tiny_ids_data, ids)
    assert "\n" not in str(err.value)
    path.unlink()
    with pytest.raises(DataError, match="rebuild them"):
        load_code_vectors(tiny_ids_data, ids)
