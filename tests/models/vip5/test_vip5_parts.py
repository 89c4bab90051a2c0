"""VIP5's parts: config validation, shipped configs, mapping network, embeddings, backbone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mfmrec.config import build
from mfmrec.errors import ConfigError
from mfmrec.features.store import MissingAwareFeatures
from mfmrec.models.vip5.backbone import PRESETS, backbone_for, build_t5, load_t5
from mfmrec.models.vip5.config import VIP5Config
from mfmrec.models.vip5.mapping import ItemImageTokens, MappingNetwork, PromptEmbeddings
from mfmrec.training.config import load_run_config

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
SHIPPED = ("vip5-demo.yaml", "vip5-beauty.yaml", "vip5-musical.yaml", "pretrain-demo.yaml",
           "pretrain-beauty.yaml")


@pytest.mark.parametrize("filename", SHIPPED)
def test_shipped_configs_load(filename):
    run = load_run_config(CONFIGS / filename)
    cfg = run.model
    assert isinstance(cfg, VIP5Config) and run.model_name == "vip5"
    if filename.startswith("pretrain"):
        assert cfg.tuning == "full" and cfg.image_tokens == 0
    else:
        assert cfg.tuning == "adapters" and cfg.reduction_factor == 8


@pytest.mark.parametrize("fields,field", [
    ({"tuning": "lora"}, "model.tuning"),
    ({"image_tokens": 2, "image_features": None}, "model.image_features"),
    ({"tasks": ["ranking"]}, "model.tasks"),
    ({"reduction_factor": 0}, "model.reduction_factor"),
    ({"mapping_activation": "tanh"}, "model.mapping_activation"),
    ({"beams": 0}, "model.beams"),
])
def test_config_errors_name_the_field(fields, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        build(VIP5Config, {"image_features": "x", **fields})


def test_unknown_config_key_is_refused():
    with pytest.raises(ConfigError, match="unknown config key"):
        build(VIP5Config, {"image_feature": "clip"})


def test_mapping_network_shapes_and_norm():
    torch.manual_seed(0)
    net = MappingNetwork(feature_dim=12, d_model=8, num_tokens=3, hidden=16)
    out = net(10 * torch.randn(5, 12))
    assert out.shape == (5, 3, 8)
    # LayerNorm per token (weight 1, bias 0 at init): zero mean, unit variance
    assert torch.allclose(out.mean(-1), torch.zeros(5, 3), atol=1e-5)
    assert torch.allclose(out.var(-1, unbiased=False), torch.ones(5, 3), atol=1e-2)


def test_fill_writes_item_tokens_into_placeholders_in_order():
    feats = torch.arange(12.0).reshape(4, 3)
    tokens = ItemImageTokens(MissingAwareFeatures(feats, torch.tensor([0, 0, 1, 0]).bool()),
                             MappingNetwork(3, d_model=4, num_tokens=2))
    embeds = torch.zeros(2, 6, 4)
    placeholders = torch.tensor([[0, 1, 1, 0, 1, 1], [0, 0, 1, 1, 0, 0]]).bool()
    image_items = torch.tensor([[3, 3, 1, 1], [2, 2, -1, -1]])
    out = tokens.fill(embeds, placeholders, image_items)
    mapped = tokens(torch.tensor([3, 1, 2]))  # (3, 2, 4)
    assert torch.equal(out[0, 1], mapped[0, 0]) and torch.equal(out[0, 2], mapped[0, 1])
    assert torch.equal(out[0, 4], mapped[1, 0]) and torch.equal(out[0, 5], mapped[1, 1])
    assert torch.equal(out[1, 2], mapped[2, 0]) and torch.equal(out[1, 3], mapped[2, 1])
    assert torch.equal(out[~placeholders], torch.zeros(6, 4))
    # item 2 has no image: its tokens come from the learned missing vector, not zeros
    missing_vec = tokens.features.missing_vector
    assert torch.allclose(mapped[2], tokens.mapping(missing_vec[None])[0])
    with pytest.raises(ValueError, match="does not match"):
        tokens.fill(embeds, placeholders, image_items[:, :2])


def test_prompt_embeddings_start_at_zero_or_paper_normal():
    zero = PromptEmbeddings(8, positions=16)
    x = torch.randn(2, 5, 8)
    ids = torch.tensor([[1, 2, 3, 0, 0], [1, 1, 2, 2, 0]])
    assert torch.equal(zero(x, ids, (ids > 1).long()), x)
    paper = PromptEmbeddings(64, positions=512, init_std=1.0)
    assert 0.9 < float(paper.whole_word.weight.detach().std()) < 1.1
    # ids past the table share its last row instead of failing
    with torch.no_grad():
        zero.whole_word.weight[15] = 1.0
    out = zero(torch.zeros(1, 1, 8), torch.tensor([[40]]), torch.tensor([[0]]))
    assert torch.equal(out, torch.ones(1, 1, 8))


def test_presets_are_deterministic_and_shaped():
    a = build_t5(PRESETS["tiny"], 30, pad_token_id=0, eos_token_id=1, seed=7)
    b = build_t5(PRESETS["tiny"], 30, pad_token_id=0, eos_token_id=1, seed=7)
    c = build_t5(PRESETS["tiny"], 30, pad_token_id=0, eos_token_id=1, seed=8)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.shared.weight, c.shared.weight)
    small = PRESETS["small"]
    assert (small.num_layers, small.d_model, small.num_heads, small.d_kv, small.d_ff) == \
        (6, 512, 8, 64, 2048)
    assert a.config.decoder_start_token_id == 0 and a.config.vocab_size == 30


def test_checkpoint_path_round_trip(tmp_path):
    model = build_t5(PRESETS["tiny"], 30, pad_token_id=0, eos_token_id=1, seed=1)
    model.save_pretrained(tmp_path / "ckpt")
    loaded = backbone_for(str(tmp_path / "ckpt"), 30, pad_token_id=0, eos_token_id=1, seed=99)
    ids = torch.tensor([[4, 5, 6, 1]])
    dec = torch.tensor([[0, 7]])
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids, decoder_input_ids=dec).logits,
                           loaded(input_ids=ids, decoder_input_ids=dec).logits)
    with pytest.raises(ConfigError, match="token embeddings but the tokenizer has 31"):
        backbone_for(str(tmp_path / "ckpt"), 31, pad_token_id=0, eos_token_id=1, seed=0)
    with pytest.raises(ConfigError, match="neither a preset"):
        load_t5(tmp_path / "nothing")
