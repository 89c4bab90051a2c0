"""A trained VIP5 backbone as a plain Hugging Face checkpoint folder (``mfmrec pretrain``).

The folder holds ``config.json`` + ``model.safetensors`` (``save_pretrained``), the
tokenizer files, ``prompt_embeddings.safetensors`` (the trained whole-word / category
tables) and ``mfmrec.json``; ``model.backbone: FOLDER`` starts VIP5 from it.
"""

from __future__ import annotations

import time
from pathlib import Path

from safetensors.torch import save_file

from mfmrec.io import atomic_dir, write_json

PROMPT_EMBEDDINGS_FILE = "prompt_embeddings.safetensors"


def export_backbone(model, out_dir: str | Path, provenance: dict | None = None) -> Path:
    """Write ``model``'s backbone, tokenizer and prompt embeddings as a checkpoint folder.

    The folder is a valid ``model.backbone`` path: ``T5ForConditionalGeneration
    .from_pretrained`` reads it, and so does ``AutoTokenizer.from_pretrained``.
    """
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        model.backbone.save_pretrained(str(tmp))
        model.tokenizer.save_pretrained(str(tmp))
        tables = {k: v.detach().cpu().contiguous()
                  for k, v in model.embeddings.state_dict().items()}
        save_file(tables, str(tmp / PROMPT_EMBEDDINGS_FILE))
        write_json(tmp / "mfmrec.json", {
            "kind": "P5-style pretrained T5 backbone (mfmrec pretrain)",
            "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **(provenance or {}),
        })
    return out_dir
