"""Extraction: alignment, missing inputs, determinism, resume after an interruption."""

from __future__ import annotations

import pytest
import torch

from mfmrec.data import load_dataset
from mfmrec.errors import ConfigError
from mfmrec.features.extract import extract_features, import_features
from mfmrec.features.store import feature_path, load_features


def test_rows_follow_the_item_index_and_missing_inputs_are_masked(make_dataset, mean_colour,
                                                                   palette):
    root = make_dataset(n=6, no_image=(2,), corrupt=(4,))
    res = extract_features(root, mean_colour(), batch_size=2, quiet=True)
    store = load_features(root, "mean-colour")
    assert store.matrix.shape == (6, 3) and res.num_missing == 2
    for i in (0, 1, 3, 5):
        assert store.matrix[i].tolist() == list(map(float, palette[i]))
    assert store.missing.tolist() == [False, False, True, False, True, False]
    assert store.meta["missing_items"] == ["I2", "I4"]
    assert store.meta["unreadable_items"] == ["I4"] and store.meta["no_input"] == 1
    assert not (root / "features" / ".partial-mean-colour").exists()


def test_interrupted_run_resumes_without_redoing_finished_batches(make_dataset, mean_colour):
    root = make_dataset(n=10)
    with pytest.raises(KeyboardInterrupt):
        extract_features(root, mean_colour(fail_after=2), batch_size=3, quiet=True)
    assert not feature_path(root, "mean-colour").exists()  # nothing half-written
    assert len(list((root / "features" / ".partial-mean-colour").glob("chunk-*"))) == 2
    enc = mean_colour()
    res = extract_features(root, enc, batch_size=3, quiet=True)
    assert (res.reused, res.encoded, enc.calls) == (6, 4, 2)  # items 6..8, then 9
    resumed = feature_path(root, "mean-colour").read_bytes()
    fresh = mean_colour()
    extract_features(root, fresh, batch_size=3, force=True, quiet=True)
    assert fresh.calls == 4
    assert feature_path(root, "mean-colour").read_bytes() == resumed


def test_extracting_twice_gives_identical_files_and_then_is_up_to_date(make_dataset,
                                                                       mean_colour):
    root = make_dataset(n=5)
    extract_features(root, mean_colour(), batch_size=2, layers=True, quiet=True)
    first = [feature_path(root, n).read_bytes() for n in ("mean-colour", "mean-colour-layers")]
    extract_features(root, mean_colour(), batch_size=2, layers=True, force=True, quiet=True)
    again = [feature_path(root, n).read_bytes() for n in ("mean-colour", "mean-colour-layers")]
    assert first == again
    idle = mean_colour()
    res = extract_features(root, idle, batch_size=2, layers=True, quiet=True)
    assert res.up_to_date and idle.calls == 0
    layers = load_features(root, "mean-colour-layers")
    assert layers.matrix.shape == (5, 2, 3) and layers.meta["features_of"] == "mean-colour"


def test_changed_inputs_discard_a_partial_run(make_dataset, mean_colour, tmp_path, draw_image):
    root = make_dataset(n=6)
    with pytest.raises(KeyboardInterrupt):
        extract_features(root, mean_colour(fail_after=1), batch_size=2, quiet=True)
    folder = tmp_path / "other-images"
    folder.mkdir()
    for i in range(6):
        draw_image(folder / f"I{i}.jpg", (i * 40, 0, 0))
    enc = mean_colour()
    extract_features(root, enc, images_dir=folder, batch_size=2, quiet=True)
    assert enc.calls == 3  # nothing reused from the run over the other images
    store = load_features(root, "mean-colour")
    assert abs(store.matrix[3, 0].item() - 120) < 3 and store.matrix[3, 1] < 3  # JPEG noise


def test_text_encoder_reads_titles(make_dataset):
    root = make_dataset(n=4, no_title=(1,))
    res = extract_features(root, "minilm", batch_size=3, layers=True, quiet=True)
    store = load_features(load_dataset(root), "minilm")
    assert store.matrix.shape == (4, 384) and store.missing.tolist() == [0, 1, 0, 0]
    assert torch.allclose(store.matrix[[0, 2, 3]].norm(dim=-1), torch.ones(3), atol=1e-5)
    assert load_features(root, "minilm-layers").matrix.shape == (4, 7, 384)
    assert res.layers_path.name == "minilm-layers.safetensors"
    assert store.meta["preprocessing"]["input"] == "item title"


def test_user_errors(make_dataset, mean_colour, tmp_path):
    root = make_dataset(n=3, no_image=(0, 1, 2))
    with pytest.raises(ConfigError, match="no item has an image"):
        extract_features(root, mean_colour(), quiet=True)
    with pytest.raises(ConfigError, match="--batch-size"):
        extract_features(root, mean_colour(), batch_size=0)
    with pytest.raises(ConfigError, match="--device: expected cpu or cuda"):
        extract_features(make_dataset(n=3, name="t2"), "efficientnet-lite0", device="tpu")


def test_import_features_from_npy_files(make_dataset, tmp_path):
    import numpy as np

    root = make_dataset(n=3)
    src = tmp_path / "npy"
    src.mkdir()
    np.save(src / "I0.npy", np.array([[1.0, 2.0]]))
    np.save(src / "I2.npy", np.array([3.0, 4.0]))
    import_features(root, "clip-rn50", src, "VIP5 release")
    store = load_features(root, "clip-rn50")
    assert store.matrix.tolist() == [[1, 2], [0, 0], [3, 4]]
    assert store.missing.tolist() == [False, True, False]
