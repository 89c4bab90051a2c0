"""Token, whole-word and category ids with the real T5 tokenizer; the offline
SentencePiece fallback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mfmrec.errors import ConfigError
from mfmrec.models.vip5.prompts import (
    PLACEHOLDER,
    encode_input,
    encode_target,
    item_target_ids,
    load_tokenizer,
    placeholder_id,
    tokenizer_corpus,
    train_sentencepiece,
)


def test_whole_word_and_category_ids_by_hand(t5_tokenizer):
    tok = t5_tokenizer
    text = f"Will user_1 likely to interact with item_7325 {PLACEHOLDER} {PLACEHOLDER} ?"
    enc = encode_input(tok, text)
    pieces = tok.convert_ids_to_tokens(enc.input_ids)
    assert pieces == ["▁Will", "▁user", "_", "1", "▁likely", "▁to", "▁interact", "▁with",
                      "▁item", "_", "73", "25", PLACEHOLDER, PLACEHOLDER, "▁", "?", "</s>"]
    # words: Will=1, user_1=2, likely=3, to=4, interact=5, with=6, item_7325=7,
    # each placeholder its own word (8, 9), "?"=10; </s> is 0
    assert enc.whole_word_ids == [1, 2, 2, 2, 3, 4, 5, 6, 7, 7, 7, 7, 8, 9, 10, 10, 0]
    assert enc.category_ids == [0] * 12 + [1, 1] + [0] * 3
    pid = tok.convert_tokens_to_ids(PLACEHOLDER)
    assert placeholder_id(tok) == pid
    assert [i for i, c in zip(enc.input_ids, enc.category_ids, strict=True) if c] == [pid, pid]


def test_item_numbers_tokenize_alike_in_history_and_target(t5_tokenizer):
    tok = t5_tokenizer
    text = f"user_12 : \n 10234 {PLACEHOLDER} , 5 {PLACEHOLDER} -> 77"
    enc = encode_input(tok, text)
    assert enc.whole_word_ids == [1, 1, 1, 2, 2, 3, 3, 3, 4, 5, 5, 6, 7, 8, 8, 9, 9, 0]
    targets = item_target_ids(tok, [10234, 5, 77])
    assert all(t[-1] == tok.eos_token_id for t in targets)
    ids = enc.input_ids
    for number, target in zip(("10234", "5", "77"), targets, strict=True):
        word = text.split().index(number) + 1  # whole-word id of that number
        inside = [i for i, w in zip(ids, enc.whole_word_ids, strict=True) if w == word]
        assert inside == target[:-1], number
    assert item_target_ids(tok, []) == []


def test_targets_are_cut_keeping_eos(t5_tokenizer):
    tok = t5_tokenizer
    full = encode_target(tok, "this lipstick has a lovely deep red colour that lasts")
    cut = encode_target(tok, "this lipstick has a lovely deep red colour that lasts", 5)
    assert len(full) > 5 and cut == full[:4] + [tok.eos_token_id]
    assert encode_target(tok, "yes") == tok("yes").input_ids


def test_load_tokenizer_refuses_a_non_tokenizer_folder(tmp_path):
    with pytest.raises(ConfigError, match="tokenizer_config.json"):
        load_tokenizer(tmp_path)


def test_sentencepiece_fallback_trains_offline_and_round_trips(tiny, tiny_tokenizer):
    tok = tiny_tokenizer
    folder = tok.name_or_path
    reloaded = load_tokenizer(folder)  # AutoTokenizer.from_pretrained(folder)
    assert type(reloaded).__name__ == "T5Tokenizer"
    for t in (tok, reloaded):
        assert (t.pad_token_id, t.eos_token_id, t.unk_token_id) == (0, 1, 2)
        assert t("<extra_id_0>", add_special_tokens=False).input_ids == [placeholder_id(t)]
    config = json.loads((Path(folder) / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "T5Tokenizer"
    assert (Path(folder) / "spiece.model").is_file()
    text = (f"Here is the purchase history list of user_3 : \n 12 {PLACEHOLDER} , "
            f"7 {PLACEHOLDER} \n try to recommend next item to the user")
    ids = reloaded(text).input_ids
    assert ids == tok(text).input_ids and tok.unk_token_id not in ids
    decoded = reloaded.decode(ids, skip_special_tokens=True)  # drops placeholders and </s>
    assert decoded.split() == [w for w in text.split() if w != PLACEHOLDER]
    targets = item_target_ids(tok, tiny.numbers)
    assert all(tok.unk_token_id not in t for t in targets)
    assert len({tuple(t) for t in targets}) == tiny.num_items


def test_sentencepiece_training_is_deterministic(tiny, tmp_path):
    lines = tokenizer_corpus(tiny, max_prompts=200)
    assert lines == tokenizer_corpus(tiny, max_prompts=200)
    a = train_sentencepiece(lines, tmp_path / "a", vocab_size=400)
    b = train_sentencepiece(lines, tmp_path / "b", vocab_size=400)
    assert a.get_vocab() == b.get_vocab()
    assert (tmp_path / "a" / "spiece.model").read_bytes() == (
        tmp_path / "b" / "spiece.model").read_bytes()
    with pytest.raises(ConfigError, match="empty corpus"):
        train_sentencepiece(["  ", ""], tmp_path / "c")
