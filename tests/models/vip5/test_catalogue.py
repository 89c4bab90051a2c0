"""Exact full-catalogue scoring on tiny random encoder-decoders: every item's score equals one
plain Hugging Face forward pass of that item."""

from __future__ import annotations

import pytest
import torch
import transformers

from mfmrec.models.vip5.catalogue import CatalogueTree, catalogue_scores, topk_agreement
from mfmrec.models.vip5.decoding import ItemTrie, constrained_beam_search, teacher_forced_scores

PAD, EOS, VOCAB, N_ITEMS = 0, 1, 60, 40
LEVELS = [range(2, 6), range(6, 12), range(12, 20)]  # disjoint token ranges per code level
DEDUP = range(20, 24)


def _items(seed: int = 0) -> list[list[int]]:
    """N_ITEMS distinct (a, b, c, dedup, eos) tuples; few codes per level, so prefixes share."""
    g = torch.Generator().manual_seed(seed)
    codes, seen = [], {}
    while len(codes) < N_ITEMS:
        key = tuple(int(r[torch.randint(len(r), (1,), generator=g)]) for r in LEVELS)
        dedup = seen.setdefault(key, 0)
        if dedup < len(DEDUP):
            seen[key] += 1
            codes.append([*key, DEDUP[dedup], EOS])
    return codes


def _t5(attn: str):
    config = transformers.T5Config(
        vocab_size=VOCAB, d_model=32, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
        d_kv=8, decoder_start_token_id=PAD, pad_token_id=PAD, eos_token_id=EOS,
        attn_implementation=attn)
    torch.manual_seed(3)
    return transformers.T5ForConditionalGeneration(config).eval()


def _bart():
    config = transformers.BartConfig(
        vocab_size=VOCAB, d_model=32, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
        decoder_ffn_dim=64, max_position_embeddings=64, pad_token_id=PAD, eos_token_id=EOS,
        bos_token_id=2, decoder_start_token_id=EOS)
    torch.manual_seed(4)
    return transformers.BartForConditionalGeneration(config).eval()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny matrices: a second thread only adds contention on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def items():
    return _items()


@pytest.fixture(scope="module", params=["eager", "sdpa"])
def t5(request):
    return _t5(request.param)


def _encode(model):
    """3 examples of different lengths: padded ids, mask and encoder outputs."""
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(2, VOCAB, (3, 9), generator=g)
    mask = torch.ones_like(ids)
    for row, length in enumerate((9, 6, 3)):
        ids[row, length:], mask[row, length:] = PAD, 0
    with torch.no_grad():
        enc = model.get_encoder()(input_ids=ids, attention_mask=mask)
    return ids, mask, enc


def _reference(model, ids, mask, seqs) -> torch.Tensor:
    """(B, C): one plain HF forward per item (the B examples batched, no cache, no packing;
    the model shifts the labels itself), log_softmax gathered at the item's ids, summed."""
    out = torch.zeros(ids.shape[0], len(seqs))
    with torch.no_grad():
        for c, seq in enumerate(seqs):
            labels = torch.tensor([seq]).repeat(ids.shape[0], 1)  # (B, T)
            logits = model(input_ids=ids, attention_mask=mask, labels=labels).logits  # (B, T, V)
            out[:, c] = logits.log_softmax(-1).gather(-1, labels[..., None]).sum((1, 2))
    return out


def test_tree_levels(items):
    tree = CatalogueTree.build(ItemTrie(items))
    assert tree.num_items == N_ITEMS
    assert [lv.size for lv in tree.levels][:2] == [1, len({s[0] for s in items})]
    assert len(tree.levels) == 5  # prefixes of length 0..4 each have children
    deep = tree.levels[3]  # (a, b, c) nodes
    assert deep.prefix.shape[1] == 3
    assert (deep.child_value == -1).all()  # no item ends after three codes
    last = tree.levels[4]  # (a, b, c, dedup): one eos child each, a leaf with a value
    assert last.child_token.eq(EOS).all() and (last.child_node == -1).all()
    assert sorted(last.child_value.tolist()) == list(range(N_ITEMS))
    # an ancestor's prefix is a prefix of its descendant's
    for e in range(3):
        assert torch.equal(tree.levels[e].prefix[deep.ancestor[:, e]], deep.prefix[:, :e])


def test_tree_is_remembered_per_trie(items):
    trie = ItemTrie(items)
    assert CatalogueTree.from_trie(trie) is CatalogueTree.from_trie(trie)
    assert CatalogueTree.from_trie(ItemTrie(items)) is not CatalogueTree.from_trie(trie)


def test_scores_equal_one_forward_per_item(t5, items):
    ids, mask, enc = _encode(t5)
    exact = catalogue_scores(t5, enc, mask, ItemTrie(items), decoder_start_token_id=PAD)
    assert exact.shape == (3, N_ITEMS) and exact.dtype == torch.float32
    ref = _reference(t5, ids, mask, items)
    assert torch.allclose(exact, ref, atol=1e-5), (exact - ref).abs().max()


def test_chunking_missing_items_and_teacher_forcing_agree(t5, items):
    _, mask, enc = _encode(t5)
    values = [v for v in range(N_ITEMS) if v % 7]  # items 0, 7, 14, ... are not in the trie
    trie = ItemTrie([items[v] for v in values], values=values)
    full = catalogue_scores(t5, enc, mask, trie, decoder_start_token_id=PAD)
    assert full.shape == (3, N_ITEMS)  # N = the largest value (39) + 1
    absent = [v for v in range(N_ITEMS) if v % 7 == 0]
    assert torch.isneginf(full[:, absent]).all() and torch.isfinite(full[:, values]).all()
    tiny = catalogue_scores(t5, enc, mask, trie, decoder_start_token_id=PAD, max_rows=8)
    assert torch.allclose(tiny, full, atol=1e-6)
    cands = [1, 2, 9, 20, 33]
    tf = teacher_forced_scores(t5, enc, mask, torch.tensor([items[v] for v in cands])
                               .expand(3, -1, -1))  # (B, C, T)
    assert torch.allclose(full[:, cands], tf, atol=1e-5)


def test_any_encoder_decoder(items):
    """BART (learned positions, a final logits bias) through the same cached path."""
    bart = _bart()
    ids, mask, enc = _encode(bart)
    exact = catalogue_scores(bart, enc, mask, ItemTrie(items), decoder_start_token_id=EOS,
                             max_rows=7)
    assert torch.allclose(exact, _reference(bart, ids, mask, items), atol=1e-5)


def test_exhaustive_beam_equals_exact_top5(t5, items):
    _, mask, enc = _encode(t5)
    trie = ItemTrie(items)
    exact = catalogue_scores(t5, enc, mask, trie, decoder_start_token_id=PAD)
    beam = constrained_beam_search(t5, enc, mask, trie, N_ITEMS, decoder_start_token_id=PAD,
                                   eos_token_id=EOS, pad_token_id=PAD)
    top5 = exact.topk(5, dim=1).indices  # (B, 5)
    assert torch.equal(torch.tensor([v[:5] for v in beam.values]), top5)
    assert topk_agreement(torch.tensor([v[:5] for v in beam.values]), top5) == 1.0
    for b in range(3):
        assert torch.allclose(torch.tensor(beam.scores[b]), exact[b, beam.values[b]], atol=1e-5)


def test_topk_agreement_hand_computed():
    a = torch.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 2, 3]])
    b = torch.tensor([[3, 1, 2], [4, 5, 7], [9, 8, 7], [1, 2, 4]])  # same set in rows 0 and 2
    assert topk_agreement(a, b) == 0.5
    assert topk_agreement(a[:1], a[:1]) == 1.0
    with pytest.raises(ValueError, match="shapes differ"):
        topk_agreement(a, b[:, :2])
