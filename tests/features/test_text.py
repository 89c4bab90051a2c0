"""Text encoders: the real all-MiniLM-L6-v2, and tiny random local HF models."""

from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    BertConfig,
    BertModel,
    BertTokenizer,
    GPT2Config,
    GPT2Model,
    LlamaConfig,
    LlamaModel,
    PreTrainedTokenizerFast,
    T5Config,
    T5Model,
)

from mfmrec.errors import ConfigError
from mfmrec.features.encoders import build_encoder, store_name
from mfmrec.features.text import masked_mean

WORDS = ["red", "shoe", "blue", "bag", "leather", "running", "light", "gloss", "lip", "soft"]
TEXTS = ["red shoe", "blue leather bag for running in the light", "soft lip gloss"]


@pytest.fixture(scope="module")
def minilm():
    return build_encoder("minilm")


def test_masked_mean_golden():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])  # (1, 3, 2)
    assert masked_mean(hidden, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 3.0]]


# sentence-transformers 6.2 on the packaged folder, printed to 6 decimals (computed once;
# importing it inside pytest trips over the tests/peft folder shadowing the peft package)
ST_FIRST4 = [[-0.089135, -0.008235, -0.046983, 0.031474],
             [-0.045952, 0.083217, 0.000808, 0.059681],
             [-0.13037, -0.062307, 0.009042, 0.062254]]
ST_COSINE = [[1.0, 0.324695, 0.159779], [0.324695, 1.0, 0.170327], [0.159779, 0.170327, 1.0]]


def test_minilm_matches_sentence_transformers(minilm):
    feats = minilm.encode(TEXTS)  # (3, 384)
    assert torch.allclose(feats[:, :4], torch.tensor(ST_FIRST4), atol=2e-5)
    assert torch.allclose(feats @ feats.T, torch.tensor(ST_COSINE), atol=2e-5)


def test_minilm_is_normalised_and_semantic(minilm):
    feats, layers = minilm.encode_batch(
        ["red lipstick", "pink lip gloss", "cordless hammer drill"], layers=True)
    assert feats.shape == (3, 384) and layers.shape == (3, 7, 384)
    assert torch.allclose(feats.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.allclose(F.normalize(layers[:, -1], dim=-1), feats, atol=1e-5)
    assert feats[0] @ feats[1] > feats[0] @ feats[2] + 0.2
    assert minilm.max_length == 256 and minilm.normalize


def _word_tokenizer(path, bos_eos: bool) -> None:
    """A word-level tokenizer with no pad token, like many decoder LLMs."""
    vocab = {w: i for i, w in enumerate(["<unk>", "</s>", *WORDS, "for", "in", "the"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>",
                            eos_token="</s>" if bos_eos else None).save_pretrained(path)


def _save(tmp_path, kind: str, shared=None):
    torch.manual_seed(0)
    path = tmp_path / kind
    path.mkdir()
    if kind == "bert":
        (path / "vocab.txt").write_text("\n".join(
            ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "for", "in", "the"]))
        BertTokenizer(vocab_file=str(path / "vocab.txt")).save_pretrained(path)
        model = BertModel(BertConfig(vocab_size=18, hidden_size=8, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=16))
    elif kind == "gpt2":
        _word_tokenizer(path, bos_eos=True)
        model = GPT2Model(GPT2Config(vocab_size=15, n_embd=8, n_layer=2, n_head=2))
    elif kind == "llama":
        _word_tokenizer(path, bos_eos=True)
        model = LlamaModel(LlamaConfig(vocab_size=15, hidden_size=8, intermediate_size=16,
                                       num_hidden_layers=2, num_attention_heads=2,
                                       num_key_value_heads=1))
    else:  # t5: an encoder-decoder, with the real T5 tokenizer
        for f in (shared / "models" / "t5-small-tokenizer").iterdir():
            shutil.copy(f, path / f.name)
        model = T5Model(T5Config(vocab_size=32128, d_model=8, d_kv=4, d_ff=16, num_layers=2,
                                 num_heads=2))
    model.eval().save_pretrained(path)
    return path, model


@pytest.mark.parametrize("kind", ["bert", "gpt2", "llama"])
def test_local_models_mean_pool_real_tokens_only(tmp_path, kind):
    path, model = _save(tmp_path, kind)
    enc = build_encoder(f"hf:{path}")
    assert enc.name == store_name(f"hf:{path}") == f"hf-{kind}"
    assert not enc.normalize  # no sentence-transformers Normalize module in the folder
    feats, layers = enc.encode_batch(TEXTS, layers=True)
    assert feats.shape == (3, 8) and layers.shape == (3, 3, 8)  # embeddings + 2 layers
    # padding must not change a text's vector: alone == inside a longer batch
    alone = enc.encode([TEXTS[0]])
    assert torch.allclose(alone[0], feats[0], atol=1e-5)
    ids = enc.tokenizer(TEXTS[0], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        ref = model(input_ids=ids).last_hidden_state.mean(dim=1)[0]
    assert torch.allclose(feats[0], ref, atol=1e-5)


def test_encoder_decoder_uses_its_encoder(tmp_path, shared):
    path, model = _save(tmp_path, "t5", shared)
    enc = build_encoder("hf", path)
    feats = enc.encode(["a red shoe", "blue bag"])
    ids = enc.tokenizer("a red shoe", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        ref = model.get_encoder()(input_ids=ids).last_hidden_state.mean(dim=1)[0]
    assert torch.allclose(feats[0], ref, atol=1e-5)


def test_hf_without_a_path_or_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="hf:PATH or --model-path"):
        build_encoder("hf")
    with pytest.raises(ConfigError, match="no config.json"):
        build_encoder(f"hf:{tmp_path}")
    with pytest.raises(ConfigError, match="unknown encoder"):
        build_encoder("resnet-9000")
