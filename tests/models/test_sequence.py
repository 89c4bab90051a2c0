"""The shared causal sequence encoder: causality, padding, config, and who uses it."""

from __future__ import annotations

import pytest
import torch

from mfmrec.errors import ConfigError
from mfmrec.models.iisan.sequential import EDGE_NORM_EPS, ContentSequenceModel
from mfmrec.models.sasrec import SASRec, SASRecConfig
from mfmrec.models.sequence import (
    CausalEncoderMixin,
    CausalSequenceEncoder,
    SequenceEncoderConfig,
    causal_mask,
)

PARTS = ("pos_emb", "emb_norm", "blocks", "final_norm")


def tiny(**kw) -> SequenceEncoderConfig:
    base = {"hidden": 8, "layers": 2, "heads": 2, "inner": 16, "max_len": 5,
            "hidden_dropout": 0.0, "attn_dropout": 0.0}
    return SequenceEncoderConfig(**{**base, **kw})


@pytest.mark.parametrize("norm_first", [False, True])
def test_no_position_sees_a_later_one(norm_first):
    torch.manual_seed(0)
    encoder = CausalSequenceEncoder(tiny(norm_first=norm_first)).eval()
    x = torch.randn(1, 5, 8)
    valid = torch.ones(1, 5, dtype=torch.bool)
    with torch.no_grad():
        base = encoder(x, valid)
        for t in range(5):
            changed = x.clone()
            changed[:, t] += torch.randn(8)
            out = encoder(changed, valid)
            torch.testing.assert_close(out[:, :t], base[:, :t])  # the past is untouched
            assert not torch.allclose(out[:, t], base[:, t])  # the changed step moves


def test_padding_is_never_read_and_positions_align_right():
    torch.manual_seed(0)
    encoder = CausalSequenceEncoder(tiny()).eval()
    x = torch.randn(1, 3, 8)
    padded = torch.cat([torch.randn(1, 2, 8) * 100, x], dim=1)  # junk in the padding
    valid = torch.tensor([[False, False, True, True, True]])
    with torch.no_grad():
        short = encoder(x, torch.ones(1, 3, dtype=torch.bool))
        long = encoder(padded, valid)
    torch.testing.assert_close(long[:, 2:], short, rtol=1e-5, atol=1e-5)
    assert torch.isfinite(long).all()


def test_mask_lets_padding_see_only_itself():
    allowed = causal_mask(torch.tensor([[False, True, True]]))[0, 0]
    assert allowed.tolist() == [[True, False, False], [False, True, False],
                                [False, True, True]]


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="encoder.heads"):
        tiny(heads=3)
    with pytest.raises(ConfigError, match="encoder.attn_dropout"):
        tiny(attn_dropout=1.0)
    with pytest.raises(ConfigError, match="encoder.edge_norm_eps"):
        tiny(edge_norm_eps=0.0)


def test_sasrec_is_the_encoder_over_its_item_table():
    torch.manual_seed(0)
    cfg = SASRecConfig(hidden=8, layers=1, heads=2, inner=16, max_len=4,
                       hidden_dropout=0.0, attn_dropout=0.0)
    model = SASRec(cfg, num_items=9).eval()
    assert isinstance(model, CausalEncoderMixin)
    # the parts keep their top-level names, so earlier checkpoints still load
    names = set(model.state_dict())
    assert {"pos_emb.weight", "emb_norm.weight", "blocks.0.attn.qkv.weight"} <= names
    items = torch.tensor([[0, 3, 4, 5]])
    with torch.no_grad():
        direct = model.encode_sequence(model.item_emb(items), items != 0)
        torch.testing.assert_close(model.encode(items), direct)


def test_iisan_user_encoder_is_the_shared_module_with_sasrecs_settings():
    user_cfg = SASRecConfig(hidden=8, layers=1, heads=2, inner=16, max_len=4,
                            samples="sequence", norm_first=True)
    model = ContentSequenceModel(user_cfg, num_items=6, log_pop=torch.zeros(6))
    encoder = model.user_encoder
    assert type(encoder) is CausalSequenceEncoder
    assert all(hasattr(encoder, part) for part in PARTS)
    assert encoder.emb_norm.eps == EDGE_NORM_EPS == encoder.final_norm.eps
    assert encoder.blocks[0].norm1.eps == user_cfg.norm_eps
    assert encoder.max_len == 4 and len(encoder.blocks) == 1
