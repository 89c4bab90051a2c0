"""``model.code_init: features``: code tokens start from their codes' input-space vectors."""

from __future__ import annotations

import pytest
import torch

from mfmrec.config import build
from mfmrec.errors import ConfigError
from mfmrec.ids import IdBuildConfig, build_ids, load_code_vectors
from mfmrec.models.vip5 import VIP5Config
from mfmrec.models.vip5.indexing import ExtendedEmbedding, code_token, projected_code_rows

SEM = "semantic:vec"


@pytest.fixture(scope="module")
def vec_ids(demo_data):
    """2 levels x 8 codes from the random 12-d store."""
    return build_ids(demo_data, "vec", IdBuildConfig(levels=2, codebook=8, features=["rand12"]))


def _rows(model, level: int, codebook: int) -> torch.Tensor:
    ids = [model.tokenizer.convert_tokens_to_ids(code_token(level, c)) for c in range(codebook)]
    return model.backbone.get_input_embeddings().weight[ids].detach()  # (K, d)


def _cosines(x: torch.Tensor) -> torch.Tensor:
    x = x - x.mean(0)
    x = x / x.norm(dim=1, keepdim=True)
    return (x @ x.T)[torch.triu_indices(len(x), len(x), 1).unbind()]  # (K(K-1)/2,)


def test_projected_rows_keep_the_codes_geometry_at_the_tables_scale():
    torch.manual_seed(0)
    vectors = torch.randn(2, 16, 12)  # (L, K, D)
    vectors[1, 5] = 0.0  # an unused code
    rows = projected_code_rows(vectors, d_model=32, std=0.5)  # (L, K, d)
    assert rows.shape == (2, 16, 32) and torch.equal(rows[1, 5], torch.zeros(32))
    assert abs(float(rows[0].pow(2).mean().sqrt()) - 0.5) < 1e-5
    # d_model >= D: the projection is a rotation of the centred vectors (pairwise cosines
    # are kept exactly)
    assert torch.allclose(_cosines(rows[0]), _cosines(vectors[0]), atol=1e-5)


def test_full_tuning_starts_code_rows_from_the_vectors(make_vip5, vec_ids, demo_data,
                                                       t5_tokenizer):
    feat = make_vip5(t5_tokenizer, indexing=SEM, tuning="full", image_tokens=0,
                     image_features=None, code_init="features")
    rand = make_vip5(t5_tokenizer, indexing=SEM, tuning="full", image_tokens=0,
                     image_features=None)
    vectors = load_code_vectors(demo_data, vec_ids)  # (2, 8, 12)
    used = vectors[0].abs().sum(1) > 0
    # the 12-d vectors fit in d_model = 64: their pairwise cosines come through
    got = _cosines(_rows(feat, 0, 8)[used])
    assert torch.allclose(got, _cosines(vectors[0][used]), atol=1e-4)
    assert not torch.allclose(_cosines(_rows(rand, 0, 8)[used]), got, atol=1e-2)
    # every other row, the pretrained vocabulary's and the disambiguation codes', is as
    # the random init left it
    start = len(t5_tokenizer)
    a = feat.backbone.get_input_embeddings().weight
    b = rand.backbone.get_input_embeddings().weight
    assert torch.equal(a[:start], b[:start])
    dedup = [feat.tokenizer.convert_tokens_to_ids(t) for t in feat.tokenizer.get_vocab()
             if t.startswith("<c_")]
    assert dedup and torch.equal(a[dedup], b[dedup])


def test_adapter_mode_sets_only_the_new_rows(make_vip5, vec_ids, t5_tokenizer):
    feat = make_vip5(t5_tokenizer, indexing=SEM, image_tokens=0, image_features=None,
                     code_init="features")
    rand = make_vip5(t5_tokenizer, indexing=SEM, image_tokens=0, image_features=None)
    emb = feat.backbone.get_input_embeddings()
    assert isinstance(emb, ExtendedEmbedding)
    assert torch.equal(emb.base.weight, rand.backbone.get_input_embeddings().base.weight)
    assert not torch.equal(emb.extra.weight, rand.backbone.get_input_embeddings().extra.weight)
    # tied head: the output rows are the same trainable table
    head = feat.backbone.get_output_embeddings()
    assert head.extra_weight is emb.extra.weight


def test_code_init_errors_name_the_field(make_vip5, demo_data, tmp_path):
    with pytest.raises(ConfigError, match="model.code_init"):
        build(VIP5Config, {"code_init": "centroids"})
    with pytest.raises(ConfigError, match="model.code_init.*semantic"):
        build(VIP5Config, {"code_init": "features"})
