"""Trie-constrained beam search and exact candidate scoring on a tiny random T5."""

from __future__ import annotations

import pytest
import torch
from transformers import LogitsProcessorList
from transformers.modeling_outputs import BaseModelOutput

from mfmrec.models.vip5 import decoding, packing
from mfmrec.models.vip5.backbone import PRESETS, build_t5
from mfmrec.models.vip5.decoding import (
    ItemTrie,
    TrieLogitsProcessor,
    block_causal_mask,
    constrained_beam_search,
    parse_number,
    teacher_forced_scores,
    trie_prefix_allowed_tokens_fn,
    unconstrained_beam_search,
)

EOS, PAD = 1, 0
# item i -> token ids (each ends with eos); lengths differ, prefixes are shared
ITEM_SEQS = [[5, 1], [5, 6, 1], [5, 7, 1], [8, 1], [8, 9, 10, 1], [11, 1], [12, 6, 1]]


@pytest.fixture(scope="module")
def t5():
    return build_t5(PRESETS["tiny"], 20, pad_token_id=PAD, eos_token_id=EOS, seed=1)


@pytest.fixture(scope="module")
def encoded(t5):
    ids = torch.tensor([[3, 4, 5, 6, 1], [7, 8, 1, 0, 0], [9, 1, 0, 0, 0]])
    mask = (ids != 0).long()
    mask[:, 0] = 1
    with torch.no_grad():
        return t5.encoder(input_ids=ids, attention_mask=mask), mask, ids


def _beam(t5, enc, mask, tries, k):
    return constrained_beam_search(t5, enc, mask, tries, k, decoder_start_token_id=PAD,
                                   eos_token_id=EOS, pad_token_id=PAD)


def test_trie_lookup():
    trie = ItemTrie(ITEM_SEQS, values=[10, 11, 12, 13, 14, 15, 16])
    assert trie.allowed([]) == [5, 8, 11, 12]
    assert trie.allowed([5]) == [1, 6, 7]
    assert trie.allowed([8, 9]) == [10]
    assert trie.allowed([5, 1]) == [] and trie.allowed([4]) == []
    assert trie.value([8, 9, 10, 1]) == 14 and trie.value([8, 9]) is None
    assert trie.max_depth == 4 and len(trie) == 7
    with pytest.raises(ValueError, match="share the token sequence"):
        ItemTrie([[5, 1], [5, 1]])


def test_prefix_fn_skips_the_decoder_start_token():
    fn = trie_prefix_allowed_tokens_fn([ItemTrie(ITEM_SEQS), ItemTrie([[11, 1]])], EOS)
    assert fn(0, torch.tensor([PAD, 5])) == [1, 6, 7]
    assert fn(1, torch.tensor([PAD])) == [11]
    assert fn(1, torch.tensor([PAD, 5])) == [EOS]  # off-trie: may only end


def _sequential_scores(t5, ids, mask, seqs):
    """Reference: one full forward pass per (example, candidate)."""
    out = torch.zeros(ids.shape[0], len(seqs))
    with torch.no_grad():
        for b in range(ids.shape[0]):
            for c, seq in enumerate(seqs):
                loss = t5(input_ids=ids[b:b + 1], attention_mask=mask[b:b + 1],
                          labels=torch.tensor([seq])).loss
                out[b, c] = -loss * len(seq)
    return out


def _padded(seqs, batch):
    width = max(map(len, seqs))
    rows = torch.tensor([s + [-100] * (width - len(s)) for s in seqs])
    return rows.expand(batch, -1, -1).clone()  # (B, C, T)


def test_teacher_forced_scores_equal_sequential_scoring(t5, encoded):
    enc, mask, ids = encoded
    batched = teacher_forced_scores(t5, enc, mask, _padded(ITEM_SEQS, 3))
    assert batched.shape == (3, 7)
    assert torch.allclose(batched, _sequential_scores(t5, ids, mask, ITEM_SEQS), atol=1e-5)
    chunked = teacher_forced_scores(t5, enc, mask, _padded(ITEM_SEQS, 3), chunk_rows=4)
    assert torch.allclose(chunked, batched, atol=1e-6)


def test_exhaustive_beam_equals_exact_ranking(t5, encoded):
    """With as many beams as items nothing is pruned: beam order == exact ranking."""
    enc, mask, _ = encoded
    trie = ItemTrie(ITEM_SEQS)
    result = _beam(t5, enc, mask, trie, k=7)
    exact = teacher_forced_scores(t5, enc, mask, _padded(ITEM_SEQS, 3))
    for b in range(3):
        assert sorted(result.values[b]) == list(range(7))
        order = exact[b].argsort(descending=True).tolist()
        assert result.values[b] == order
        assert torch.allclose(torch.tensor(result.scores[b]), exact[b][order], atol=1e-5)


def test_narrow_beam_returns_distinct_valid_items(t5, encoded):
    enc, mask, _ = encoded
    result = _beam(t5, enc, mask, ItemTrie(ITEM_SEQS), k=3)
    exact = teacher_forced_scores(t5, enc, mask, _padded(ITEM_SEQS, 3))
    for b in range(3):
        assert len(result.values[b]) == 3 == len(set(result.values[b]))
        assert all(0 <= v < 7 for v in result.values[b])
        assert result.scores[b] == sorted(result.scores[b], reverse=True)
        # each score is that item's exact log-likelihood
        assert torch.allclose(torch.tensor(result.scores[b]), exact[b][result.values[b]],
                              atol=1e-5)


def test_per_example_tries_and_small_tries(t5, encoded):
    enc, mask, _ = encoded
    own = [ItemTrie([ITEM_SEQS[i] for i in sel], values=sel)
           for sel in ([0, 1], [3, 4, 5, 6], [2])]
    result = _beam(t5, enc, mask, own, k=3)
    assert sorted(result.values[0]) == [0, 1]  # fewer items than beams: all of them, once
    assert set(result.values[1]) <= {3, 4, 5, 6} and len(result.values[1]) == 3
    assert result.values[2] == [2]


def test_logits_processor_constrains_hf_generate(t5, encoded):
    enc, mask, _ = encoded
    trie = ItemTrie(ITEM_SEQS)
    fresh = BaseModelOutput(last_hidden_state=enc.last_hidden_state)  # generate mutates it
    out = t5.generate(encoder_outputs=fresh, attention_mask=mask, num_beams=3,
                      num_return_sequences=3, max_new_tokens=trie.max_depth, do_sample=False,
                      length_penalty=0.0,  # rank by total log-likelihood, as ours does
                      logits_processor=LogitsProcessorList([TrieLogitsProcessor(trie, 3, EOS)]))
    for row in out.tolist():
        seq = row[1:]
        seq = seq[:seq.index(EOS) + 1]
        assert trie.value(seq) is not None
    fresh = BaseModelOutput(last_hidden_state=enc.last_hidden_state)
    via_fn = t5.generate(encoder_outputs=fresh, attention_mask=mask, num_beams=3,
                         num_return_sequences=3, max_new_tokens=trie.max_depth,
                         do_sample=False, length_penalty=0.0,
                         prefix_allowed_tokens_fn=trie_prefix_allowed_tokens_fn(trie, EOS))
    assert torch.equal(via_fn, out)
    beam = _beam(t5, enc, mask, trie, k=3)
    tops = [trie.value(r[1:r.index(EOS) + 1]) for r in out.tolist()[::3]]
    assert tops == [v[0] for v in beam.values]


def test_unconstrained_method_counts_what_it_drops(t5, encoded):
    enc, mask, _ = encoded
    texts = iter(["12", "x 3", "12", "7", "", "99", "7", "7", "3"])
    result = unconstrained_beam_search(
        t5, enc, mask, num_beams=3, decode=lambda out: [next(texts) for _ in range(len(out))],
        parse=lambda s: parse_number(s, {12: 0, 7: 1, 3: 2}), max_new_tokens=3)
    assert result.values == [[0], [1], [1, 2]]
    assert result.invalid == 3 and result.duplicates == 2
    assert enc.last_hidden_state.shape[0] == 3  # the caller's encoder outputs are untouched


def test_block_causal_mask():
    keep = block_causal_mask(2, 2, torch.float32, torch.device("cpu"))[0, 0] == 0
    assert keep.tolist() == [[True, False, False, False], [True, True, False, False],
                             [False, False, True, False], [False, False, True, True]]


def test_packed_rows_equal_one_row_per_sequence(t5, encoded, monkeypatch):
    """Rows of an example decoded side by side (T5) == each row in its own sequence."""
    enc, mask, _ = encoded
    cands = _padded(ITEM_SEQS, 3)
    packed = teacher_forced_scores(t5, enc, mask, cands)
    beams = _beam(t5, enc, mask, ItemTrie(ITEM_SEQS), k=4)
    assert decoding.packable(t5)
    monkeypatch.setattr(packing, "packable", lambda model: False)
    monkeypatch.setattr(decoding, "packable", lambda model: False)
    assert torch.allclose(teacher_forced_scores(t5, enc, mask, cands), packed, atol=1e-5)
    alone = _beam(t5, enc, mask, ItemTrie(ITEM_SEQS), k=4)
    assert alone.values == beams.values
    assert torch.allclose(torch.tensor(alone.scores), torch.tensor(beams.scores), atol=1e-5)


def test_parse_number():
    assert parse_number(" 42 ", {42: 5}) == 5
    assert parse_number("42a", {42: 5}) is None and parse_number("43", {42: 5}) is None


# ---- prefix-tree scoring ------------------------------------------------------------------
LONG = [5] * 17 + [6, 1]  # 19 tokens: T5's decoder buckets distances >= 16 logarithmically
PER_EXAMPLE = [  # each example its own candidates: shared prefixes, repeats, ragged lengths
    [[5, 1], [5, 6, 1], [5, 6, 7, 1], [8, 1], LONG, [5, 6, 1]],
    [[9, 1], [12, 6, 1], [12, 7, 1], [12, 6, 9, 1], [11, 1], [13, 1]],
    [LONG, LONG[:-2] + [7, 1], [5, 1], [8, 9, 10, 1], [8, 9, 1], [8, 1]],
]


def _per_candidate_reference(t5, ids, mask, per_example):
    """One HF forward per (example, candidate), labels alone: -loss * length."""
    with torch.no_grad():
        return torch.tensor([[-t5(input_ids=ids[b:b + 1], attention_mask=mask[b:b + 1],
                                  labels=torch.tensor([seq])).loss.item() * len(seq)
                              for seq in seqs] for b, seqs in enumerate(per_example)])


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_tree_scores_equal_per_candidate_reference(attention):
    t5 = build_t5(PRESETS["tiny"], 20, pad_token_id=PAD, eos_token_id=EOS, seed=3)
    t5.set_attn_implementation(attention)
    t5.eval()
    ids = torch.tensor([[3, 4, 5, 6, 1], [7, 8, 1, 0, 0], [9, 1, 0, 0, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        enc = t5.encoder(input_ids=ids, attention_mask=mask)
    width = max(len(s) for seqs in PER_EXAMPLE for s in seqs)
    cands = torch.tensor([[s + [-100] * (width - len(s)) for s in seqs] for seqs in PER_EXAMPLE])
    ref = _per_candidate_reference(t5, ids, mask, PER_EXAMPLE)
    for chunk in (None, 6, 13):  # all examples at once, one per pass, two then one
        got = teacher_forced_scores(t5, enc, mask, cands, chunk_rows=chunk)
        assert torch.allclose(got, ref, atol=1e-5), (chunk, (got - ref).abs().max())


def test_prefix_tree_merges_shared_prefixes():
    ids = torch.tensor([[[0, 5, 6], [0, 5, 7], [0, 8, 0]],
                        [[0, 9, 0], [0, 9, 0], [0, 0, 0]]])  # (B=2, R=3, T=3)
    valid = torch.tensor([[[1, 1, 1], [1, 1, 1], [1, 1, 0]],
                          [[1, 1, 0], [1, 1, 0], [1, 0, 0]]]).bool()
    tree = packing.prefix_tree(ids, valid)
    # example 0: root, 5, 8, (5,6), (5,7); example 1: root, 9, then a padding node
    assert tree.ids.tolist() == [[0, 5, 8, 6, 7], [0, 9, 0, 0, 0]]
    assert tree.depth.tolist() == [[0, 1, 1, 2, 2], [0, 1, 0, 0, 0]]
    assert tree.node[0].tolist() == [[0, 1, 3], [0, 1, 4], [0, 2, 0]]
    assert tree.node[1, :, :2].tolist() == [[0, 1], [0, 1], [0, 0]]
    sees = tree.ancestor[0].nonzero().tolist()
    assert sees == [[0, 0], [1, 0], [1, 1], [2, 0], [2, 2], [3, 0], [3, 1], [3, 3],
                    [4, 0], [4, 1], [4, 4]]
    assert tree.ancestor[1].sum(1).tolist() == [1, 2, 1, 1, 1]  # padding sees itself


def test_additive_mask_and_bias_layout_keep_encoder_outputs(t5, encoded):
    _, mask, ids = encoded
    with torch.no_grad():
        plain = t5.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        with packing.contiguous_position_bias(t5):
            fast = t5.encoder(input_ids=ids, attention_mask=packing.additive_key_mask(
                mask, torch.float32)).last_hidden_state
    keep = mask.bool()
    assert torch.allclose(fast[keep], plain[keep], atol=1e-6)
