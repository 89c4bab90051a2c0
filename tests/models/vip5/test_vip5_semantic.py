"""VIP5 with semantic item IDs (``model.indexing: semantic:NAME``) and the TIGER variant."""

from __future__ import annotations

import pytest
import torch
from transformers import T5ForConditionalGeneration

from mfmrec.config import build
from mfmrec.errors import ConfigError
from mfmrec.ids import IdBuildConfig, build_ids
from mfmrec.models.vip5 import VIP5Config, build_vip5
from mfmrec.models.vip5.indexing import ExtendedEmbedding, code_names

SEM = "semantic:sem"


@pytest.fixture(scope="module")
def sem_ids(demo_data):
    """2 levels x 4 codes from the random 12-d store (+ a disambiguation code)."""
    return build_ids(demo_data, "sem", IdBuildConfig(levels=2, codebook=4, features=["rand12"]))


def _batch(model, dataset, n=8):
    data = model.train_data(dataset, "train", seed=0)
    picks = [0, len(data) // 2, len(data) - 1] + list(range(1, n - 2))
    return model.collate([data[i] for i in picks])


def test_items_are_written_as_code_tokens_in_prompts_and_targets(make_vip5, dataset, sem_ids,
                                                                 t5_tokenizer):
    model = make_vip5(t5_tokenizer, indexing=SEM, image_tokens=1)
    names = code_names(sem_ids.codes)
    assert model.prompts.items.names == names
    sample = model.train_data(dataset, "train", seed=0)[0]
    assert any(name in sample.text for name in names)
    assert sample.target in names  # a sequential target is one item's code word
    tok = model.tokenizer
    for item in (0, 7, dataset.num_items - 1):
        expect = [tok.convert_tokens_to_ids(f"<{'abc'[lv]}_{c}>")
                  for lv, c in enumerate(sem_ids.codes[item])] + [tok.eos_token_id]
        assert model.item_targets[item] == expect
    # the caller's tokenizer is left as it was; the model's copy has the code tokens
    assert "<a_0>" not in t5_tokenizer.get_vocab() and "<a_0>" in tok.get_vocab()


def test_adapter_run_trains_new_rows_and_keeps_every_pretrained_weight(make_vip5, dataset,
                                                                        sem_ids, t5_tokenizer):
    model = make_vip5(t5_tokenizer, indexing=SEM, image_tokens=1, dropout=0.1).train()
    shared = model.backbone.get_input_embeddings()
    assert isinstance(shared, ExtendedEmbedding) and shared.start == len(t5_tokenizer)
    assert shared.extra.weight.requires_grad and not shared.base.weight.requires_grad
    assert model.parameter_groups()["new_tokens"] == shared.extra.weight.numel()
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    new_rows = shared.extra.weight.detach().clone()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2,
                            weight_decay=0.01)
    batch = _batch(model, dataset)
    for _ in range(3):
        opt.zero_grad()
        model.training_loss(batch).backward()
        opt.step()
    assert "backbone.shared.base.weight" in frozen
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n  # pretrained rows and frozen weights
    used = sorted({t - shared.start for t in batch["labels"].reshape(-1).tolist()
                   if t >= shared.start})
    assert used and not torch.equal(shared.extra.weight[used], new_rows[used])
    # the state a checkpoint stores rebuilds the same model
    state = model.trainable_state_dict()
    assert "backbone.shared.extra.weight" in state
    again = make_vip5(t5_tokenizer, indexing=SEM, image_tokens=1, dropout=0.1)
    again.load_trainable_state_dict(state)
    with torch.no_grad():
        assert torch.equal(model.eval()(batch).logits, again.eval()(batch).logits)


@pytest.mark.slow
def test_full_tuning_resizes_the_table_and_everything_trains(make_vip5, sem_ids, t5_tokenizer):
    model = make_vip5(t5_tokenizer, indexing=SEM, tuning="full", image_tokens=0,
                      image_features=None)
    emb = model.backbone.get_input_embeddings()
    assert not isinstance(emb, ExtendedEmbedding)
    assert emb.weight.shape[0] == len(model.tokenizer) and emb.weight.requires_grad


def test_trie_over_codes_returns_only_real_distinct_items(make_vip5, dataset, sem_ids,
                                                          t5_tokenizer):
    model = make_vip5(t5_tokenizer, indexing=SEM, image_tokens=1, beams=8)
    users, hists, _ = dataset.targets("test")
    hists = [torch.as_tensor(h) for h in hists[:4]]
    out = model.recommend(torch.as_tensor(users[:4]), hists, k=8)
    assert out.shape == (4, 8) and int(out.min()) >= 0 and int(out.max()) < dataset.num_items
    assert all(len(set(row.tolist())) == 8 for row in out)
    cands = dataset.candidates("test")
    rec = model.recommend_candidates(torch.as_tensor(cands.users[:3]), hists[:3],
                                     torch.as_tensor(cands.items[:3]), k=5)
    for row, allowed in zip(rec.tolist(), cands.items[:3].tolist(), strict=True):
        assert set(row) <= set(allowed) and len(set(row)) == 5


def test_full_catalogue_scores_equal_one_hf_forward_per_item(make_vip5, dataset, sem_ids,
                                                             t5_tokenizer):
    model = make_vip5(t5_tokenizer, indexing=SEM, image_tokens=0, image_features=None)
    users, hists, _ = dataset.targets("test")
    user, hist = torch.as_tensor(users[:2]), [torch.as_tensor(h) for h in hists[:2]]
    scores = model.score_items(user, hist)  # (2, N)
    assert scores.shape == (2, dataset.num_items) and torch.isfinite(scores).all()
    template = model._template("A-3", "A-3", ("sequential",))
    samples = model._ranking_prompts(template, user, hist)
    batch = model.collate(samples)
    with torch.no_grad():
        embeds = model.input_embeds(batch)
        for item in (0, 3, 50, dataset.num_items - 1):
            labels = torch.tensor([model.item_targets[item]] * 2)
            logits = model.backbone(inputs_embeds=embeds, attention_mask=batch["attention_mask"],
                                    labels=labels).logits  # (2, T, V)
            ref = logits.log_softmax(-1).gather(-1, labels[..., None])[..., 0].sum(-1)
            assert torch.allclose(scores[:, item], ref, atol=1e-5), item
    # the exact ranking agrees with an exhaustive beam
    wide = make_vip5(t5_tokenizer, indexing=SEM, image_tokens=0, image_features=None,
                     beams=dataset.num_items)
    beam = wide.recommend(user, hist, k=5)
    assert torch.equal(beam, scores.topk(5, dim=1).indices)


def test_indexing_errors_name_the_field(make_vip5, demo_data):
    with pytest.raises(ConfigError, match="model.indexing"):
        build(VIP5Config, {"indexing": "codes"})
    with pytest.raises(Exception, match="no such semantic IDs"):
        make_vip5(None, indexing="semantic:absent")


@pytest.mark.slow
def test_pretrain_with_semantic_ids_exports_a_backbone_that_knows_the_codes(
        run_cli, demo_data, dataset, sem_ids, tmp_path):
    from pathlib import Path

    config = Path(__file__).resolve().parents[3] / "configs" / "pretrain-demo.yaml"
    out = tmp_path / "p5"
    code, _, err = run_cli("pretrain", config, f"model.indexing={SEM}", "train.max_steps=2",
                           "train.batch_size=4", "model.max_input_length=128",
                           "--data", demo_data, "--out", out, "--quiet")
    assert code == 0, err
    hf = T5ForConditionalGeneration.from_pretrained(out / "backbone")
    cfg = build(VIP5Config, {"backbone": str(out / "backbone"), "image_tokens": 0,
                             "indexing": SEM, "max_input_length": 128})
    vip5 = build_vip5(cfg, dataset)
    # the exported tokenizer has the code tokens: no new rows, every row is pretrained
    assert not isinstance(vip5.backbone.get_input_embeddings(), ExtendedEmbedding)
    assert hf.config.vocab_size == len(vip5.tokenizer)
    assert vip5.parameter_groups()["new_tokens"] == 0


def test_tiger_reads_bare_inputs_and_trains_fully(demo_data, dataset, sem_ids):
    from mfmrec.models.registry import get

    entry = get("tiger")
    with pytest.raises(ConfigError, match="model.indexing"):
        build(entry.config_cls, {})
    cfg = build(entry.config_cls, {"indexing": SEM, "backbone": "tiny", "user_tokens": 8,
                                   "beams": 4})
    model = entry.builder(cfg, dataset).eval()
    assert model.name == "tiger" and model.tasks == frozenset({"sequential"})
    sample = model.train_data(dataset, "train", seed=0)[0]
    words = sample.text.split()
    assert words[0].startswith("<u_") and all(w.startswith("<a_") for w in words[1:])
    assert model.parameter_groups()["backbone"] > 0  # every weight trains
    users, hists, _ = dataset.targets("test")
    out = model.recommend(torch.as_tensor(users[:2]), [torch.as_tensor(h) for h in hists[:2]],
                          k=4)
    assert out.shape == (2, 4) and int(out.min()) >= 0
