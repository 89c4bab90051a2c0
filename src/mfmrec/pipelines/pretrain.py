"""P5-style pretraining of a T5 backbone, exported for VIP5 adapter tuning.

No pretrained T5 weights ship with mfmrec, and none can be downloaded here; a backbone
for VIP5 can instead be *pretrained on the recommendation prompts themselves*, as P5
does: the VIP5 model in ``tuning: full`` with text-only prompts (``image_tokens: 0``)
trains every weight on the three task families through the ordinary trainer. The result
is exported as a plain Hugging Face checkpoint::

    OUT/                     the training run (config.yaml, metrics.jsonl, final/, ...)
    OUT/backbone/            config.json + model.safetensors (save_pretrained),
                             the tokenizer files, prompt_embeddings.safetensors (the
                             trained whole-word / category tables) and mfmrec.json

``model.backbone: OUT/backbone`` then starts VIP5 adapter tuning from it; the tokenizer
and prompt embeddings come along.
"""

from __future__ import annotations

from pathlib import Path

from mfmrec.config import check
from mfmrec.models.vip5.export import export_backbone

BACKBONE_DIR = "backbone"


def check_pretrain_config(config) -> None:
    """A pretraining run is VIP5 with every weight training on text-only prompts."""
    check(config.model_name == "vip5", "model.name",
          f"pretraining trains a vip5 backbone, got {config.model_name!r}")
    model = config.model
    check(model.tuning == "full", "model.tuning",
          f"pretraining trains the whole backbone: set tuning: full (got {model.tuning!r})")
    check(model.image_tokens == 0, "model.image_tokens",
          "pretraining uses text-only prompts (P5): set image_tokens: 0")


def pretrain(config, data_dir: str | Path, out_dir: str | Path, *, resume: bool = False,
             quiet: bool = False):
    """Train ``config`` into run directory ``out_dir``, then export ``out_dir/backbone``.

    Returns ``(train result, backbone folder)``.
    """
    from accelerate.state import PartialState

    from mfmrec.training.runs import load_run, train

    check_pretrain_config(config)
    result = train(config, data_dir, out_dir, resume=resume, quiet=quiet)
    target = Path(out_dir) / BACKBONE_DIR
    if PartialState().is_main_process and not (result.already_finished and target.is_dir()):
        loaded = load_run(out_dir, data_dir)
        export_backbone(loaded.model, target, {
            "run": str(Path(out_dir).resolve()), "dataset": str(loaded.dataset.root),
            "dataset_name": loaded.dataset.name, "simulated": loaded.dataset.simulated,
            "steps": result.state.step, "last_loss": result.last_loss,
        })
    return result, target
