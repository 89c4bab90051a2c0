"""VIP5 as a whole: parameter budget, what trains, injection, determinism, training steps."""

from __future__ import annotations

import pytest
import torch

from mfmrec.models.vip5.backbone import PRESETS, build_t5
from mfmrec.peft import count_adapters


def _batch(model, dataset, n=6):
    data = model.train_data(dataset, "train", seed=0)
    # one sample per family, plus more, so every part sees gradients
    picks = [0, len(data) // 2, len(data) - 1] + list(range(1, n - 2))
    return model.collate([data[i] for i in picks])


@pytest.fixture(scope="module")
def small_counts(make_vip5, t5_tokenizer):
    """Parameter groups of the t5-small shape, 512-d features, k=2, reduction 8."""
    out = {}
    for tuning in ("adapters", "adapters-self"):
        model = make_vip5(t5_tokenizer, backbone="small", image_features="rand512",
                          image_tokens=2, reduction_factor=8, tuning=tuning)
        out[tuning] = model.parameter_groups()
        del model
    return out


@pytest.mark.slow
def test_t5_small_parameter_budget(small_counts):
    groups = small_counts["adapters"]
    d, r = 512, 64
    # 6 encoder layers x 2 + 6 decoder layers x 3 adapters, each down + up with biases
    assert groups["adapters"] == 30 * (d * r + r + r * d + d)
    # 512 -> 512 -> 2*512, LayerNorm(512), learned missing-image feature (512)
    assert groups["mapping"] == (512 * 512 + 512) + (512 * 1024 + 1024) + 2 * 512 + 512
    # 12 encoder + 18 decoder sublayer norms + 2 final norms
    assert groups["layer_norms"] == 32 * 512
    assert groups["extra_embeddings"] == 512 * 512 + 2 * 512
    assert groups["backbone"] == 0
    share = (groups["adapters"] + groups["mapping"]) / groups["all_params"]
    assert 0.025 < share < 0.05  # the paper reports 3.58%
    assert groups["total"] == sum(groups[k] for k in
                                  ("adapters", "mapping", "layer_norms", "extra_embeddings"))
    self_only = small_counts["adapters-self"]
    assert self_only["adapters"] == 24 * (d * r + r + r * d + d) < groups["adapters"]
    assert self_only["total"] < groups["total"]


@pytest.mark.parametrize("tuning,expected", [
    ("adapters", {"self": 4, "cross": 2, "ffn": 4}),
    ("adapters-self", {"self": 4, "cross": 0, "ffn": 4}),
    ("full", {"self": 0, "cross": 0, "ffn": 0}),
])
def test_adapters_per_mode(make_vip5, t5_tokenizer, tuning, expected):
    model = make_vip5(t5_tokenizer, tuning=tuning)
    assert count_adapters(model.backbone) == expected
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    if tuning == "full":
        assert "backbone.shared.weight" in trainable
    else:
        assert "backbone.shared.weight" not in trainable
        assert all(model.part_of(n) != "backbone" for n in trainable)
        assert "embeddings.whole_word.weight" in trainable
        assert "image_tokens.mapping.fc1.weight" in trainable


def test_paper_frozen_embeddings(make_vip5, t5_tokenizer):
    model = make_vip5(t5_tokenizer, paper_frozen_embeddings=True)
    assert model.parameter_groups()["extra_embeddings"] == 0
    assert not model.embeddings.whole_word.weight.requires_grad
    assert float(model.embeddings.whole_word.weight.std()) > 0.5  # random, not zeros


def test_text_only_adapted_model_equals_the_bare_backbone(make_vip5, dataset, t5_tokenizer):
    """Zero-init up-projections and zero prompt tables: VIP5 computes the backbone."""
    model = make_vip5(t5_tokenizer, image_tokens=0, image_features=None, init_seed=3)
    bare = build_t5(PRESETS["tiny"], len(t5_tokenizer), pad_token_id=0, eos_token_id=1,
                    seed=3, dropout=0.0)
    batch = _batch(model, dataset)
    with torch.no_grad():
        ours = model(batch).logits
        ref = bare(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   labels=batch["labels"]).logits
    assert torch.equal(ours, ref)


def test_image_tokens_reach_the_encoder(make_vip5, dataset, t5_tokenizer):
    model = make_vip5(t5_tokenizer)
    batch = _batch(model, dataset)
    assert (batch["image_items"] >= 0).any()
    with torch.no_grad():
        before = model(batch).logits
        model.image_tokens.mapping.fc2.bias.add_(1.0)
        after = model(batch).logits
    assert not torch.allclose(before, after)


def test_frozen_parameters_stay_bit_identical(make_vip5, dataset, t5_tokenizer):
    model = make_vip5(t5_tokenizer, dropout=0.1).train()
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trained = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2,
                            weight_decay=0.01)
    batch = _batch(model, dataset, n=10)
    missing_items = batch["image_items"][(batch["image_items"] == 0)
                                         | (batch["image_items"] == 5)]
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = model.training_loss(batch)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n
    changed = [n for n, p in model.named_parameters() if n in trained
               and not torch.equal(p, trained[n])]
    expect = set(trained)
    if missing_items.numel() == 0:  # the learned missing-image vector got no gradient
        expect.discard("image_tokens.features.missing_vector")
    assert expect <= set(changed)


def test_trainable_state_round_trip_rebuilds_the_model(make_vip5, dataset, t5_tokenizer):
    a = make_vip5(t5_tokenizer, init_seed=5)
    with torch.no_grad():
        for p in a.parameters():
            if p.requires_grad:
                p.add_(0.01 * torch.randn_like(p))
    state = a.trainable_state_dict()
    assert set(state) == {n for n, p in a.named_parameters() if p.requires_grad}
    assert not any(k.startswith("backbone.shared") for k in state)
    b = make_vip5(t5_tokenizer, init_seed=5)  # frozen parts rebuilt from the seed
    b.load_trainable_state_dict(state)
    batch = _batch(a, dataset)
    with torch.no_grad():
        assert torch.equal(a(batch).logits, b(batch).logits)


def _attention_rates(model) -> set[float]:
    return {m.dropout for m in model.modules() if hasattr(m, "has_relative_attention_bias")}


def test_attention_dropout_alone(make_vip5, dataset, t5_tokenizer):
    """model.attention_dropout drops attention probabilities only: at 0.3 (other dropout 0)
    two training forwards differ; at 0 a training forward equals the eval forward."""
    model = make_vip5(t5_tokenizer, dropout=0.1, attention_dropout=0.0)
    assert _attention_rates(model) == {0.0}
    assert {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)} == {0.1}
    batch = _batch(model, dataset)
    for rate, same in ((0.3, False), (0.0, True)):
        model = make_vip5(t5_tokenizer, dropout=0.0, attention_dropout=rate)
        with torch.no_grad():
            reference = model.eval()(batch).logits
            torch.manual_seed(0)
            trained = model.train()(batch).logits
        assert torch.allclose(trained, reference, atol=1e-6) is same


def test_dropout_of_a_loaded_backbone_reaches_attention(tmp_path, t5_tokenizer):
    from mfmrec.models.vip5.backbone import backbone_for

    build_t5(PRESETS["tiny"], len(t5_tokenizer), pad_token_id=0, eos_token_id=1, seed=0,
             dropout=0.1).save_pretrained(tmp_path)
    loaded = backbone_for(str(tmp_path), len(t5_tokenizer), pad_token_id=0, eos_token_id=1,
                          seed=0, dropout=0.0)
    assert _attention_rates(loaded) == {0.0}
    assert _attention_rates(backbone_for(str(tmp_path), len(t5_tokenizer), pad_token_id=0,
                                         eos_token_id=1, seed=0)) == {0.1}
