"""CLIP's image tower from a local folder (tiny random CLIPs saved by the tests)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPConfig, CLIPModel, CLIPVisionConfig, CLIPVisionModelWithProjection

from mfmrec.errors import ConfigError
from mfmrec.features.clip import CLIP_MEAN, ClipImageEncoder
from mfmrec.features.encoders import build_encoder

VISION = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
              image_size=32, patch_size=8)
TEXT = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
            vocab_size=64, max_position_embeddings=16)


@pytest.fixture(scope="module")
def full_clip(tmp_path_factory):
    """A full (text + vision) tiny CLIP, saved like openai/clip-vit-base-patch32."""
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(text_config=TEXT, vision_config=VISION, projection_dim=8))
    path = tmp_path_factory.mktemp("clip-full")
    model.eval().save_pretrained(path)
    return path, model


def _images():
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)) for _ in range(3)]


def test_full_checkpoint_gives_clip_image_features(full_clip):
    path, model = full_clip
    enc = build_encoder("clip-vit-b32", path)
    assert enc.dim == 8 and enc.preprocess.mean == CLIP_MEAN and enc.preprocess.crop == 32
    images = _images()
    feats, layers = enc.encode_batch(images, layers=True)
    with torch.no_grad():
        out = model.get_image_features(pixel_values=enc.preprocess(images))
    ref = out if isinstance(out, torch.Tensor) else out.pooler_output
    # same numbers as the full model: the vision weights and projection were really loaded
    assert torch.allclose(feats, ref, atol=1e-5)
    assert feats.shape == (3, 8) and layers.shape == (3, 3, 16)  # embeddings + 2 layers


def test_layers_are_the_class_token_of_each_hidden_state(tmp_path):
    torch.manual_seed(1)
    vision = CLIPVisionModelWithProjection(CLIPVisionConfig(projection_dim=4, **VISION)).eval()
    vision.save_pretrained(tmp_path)
    enc = ClipImageEncoder("clip-vit-b16", tmp_path)
    images = _images()[:2]
    _, layers = enc.encode_batch(images, layers=True)
    with torch.no_grad():
        hidden = vision(pixel_values=enc.preprocess(images), output_hidden_states=True)
    for j, h in enumerate(hidden.hidden_states):
        assert torch.allclose(layers[:, j], h[:, 0], atol=1e-6)
    assert enc.describe()["layers"]["count"] == 3


def test_preprocessor_config_of_the_folder_is_used(full_clip, tmp_path):
    path, _ = full_clip
    for f in path.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(
        {"size": {"shortest_edge": 36}, "crop_size": {"height": 32, "width": 32},
         "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25]}))
    enc = ClipImageEncoder("clip-vit-b32", tmp_path)
    assert enc.preprocess.size == 36 and enc.preprocess.mean == (0.5, 0.5, 0.5)


@pytest.mark.parametrize("name", ["clip-rn50", "clip-rn101"])
def test_resnet_clip_wants_the_openai_file_not_a_vit_folder(name, full_clip):
    with pytest.raises(ConfigError, match="is not a file"):
        build_encoder(name, full_clip[0])


def test_missing_or_wrong_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="needs --model-path"):
        build_encoder("clip-vit-b32")
    with pytest.raises(ConfigError, match="no config.json"):
        build_encoder("clip-vit-l14", tmp_path)


def test_weights_that_do_not_fit_are_refused(full_clip, tmp_path):
    path, _ = full_clip
    cfg = json.loads((path / "config.json").read_text())
    cfg["vision_config"]["num_hidden_layers"] = 3  # one layer more than the weights hold
    for f in path.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="refusing randomly initialised weights"):
        build_encoder("clip-vit-b32", tmp_path)
