"""Tiny random networks of every architecture in the target table (config-only, offline)."""

from __future__ import annotations

import pytest
import torch


def _seeded(build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        return build().eval()


@pytest.fixture(scope="session")
def t5():
    """t5's tiny preset shape: 2 + 2 layers of width 64."""
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(vocab_size=50, d_model=64, num_layers=2, num_decoder_layers=2,
                      num_heads=4, d_kv=16, d_ff=128, pad_token_id=0, eos_token_id=1,
                      decoder_start_token_id=0)
    return _seeded(lambda: T5ForConditionalGeneration(config))


@pytest.fixture(scope="session")
def bert():
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=3,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=16)
    return _seeded(lambda: BertModel(config))


@pytest.fixture(scope="session")
def vit():
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(hidden_size=24, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=32, image_size=32, patch_size=8)
    return _seeded(lambda: ViTModel(config))


@pytest.fixture(scope="session")
def clip():
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    config = CLIPVisionConfig(hidden_size=24, intermediate_size=32, num_hidden_layers=3,
                              num_attention_heads=2, image_size=32, patch_size=8,
                              projection_dim=8)
    return _seeded(lambda: CLIPVisionModelWithProjection(config))


@pytest.fixture(scope="session")
def cnn():
    from mfmrec.features.efficientnet import EfficientNetLite0

    return _seeded(EfficientNetLite0)
