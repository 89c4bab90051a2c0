"""`mfmrec pretrain`: P5-style full training, exported as a backbone VIP5 can load."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import T5ForConditionalGeneration

from mfmrec.config import build
from mfmrec.models.vip5 import VIP5Config, build_vip5
from mfmrec.training.runs import load_run

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "pretrain-demo.yaml"
SMALL_RUN = ["train.max_steps=2", "train.batch_size=4", "model.max_input_length=128",
             "model.dropout=0.0"]


def test_pretrain_refuses_adapter_tuning(run_cli, demo_data, tmp_path):
    code, _, err = run_cli("pretrain", CONFIG, "model.tuning=adapters", "--data", demo_data,
                           "--out", tmp_path / "run", "--quiet")
    assert code == 2 and "model.tuning" in err
    assert not (tmp_path / "run").exists()


def test_pretrain_exports_a_backbone_for_vip5(run_cli, demo_data, dataset, tmp_path):
    out = tmp_path / "p5"
    code, stdout, err = run_cli("pretrain", CONFIG, *SMALL_RUN, "--data", demo_data,
                                "--out", out, "--quiet")
    assert code == 0, err
    folder = out / "backbone"
    assert f"model.backbone={folder}" in stdout
    for name in ("config.json", "tokenizer_config.json", "prompt_embeddings.safetensors",
                 "mfmrec.json"):
        assert (folder / name).is_file(), name
    pretrained = load_run(out, demo_data).model
    hf = T5ForConditionalGeneration.from_pretrained(folder).eval()
    assert all(torch.equal(a, b) for a, b in zip(pretrained.backbone.state_dict().values(),
                                                 hf.state_dict().values(), strict=True))

    # VIP5 adapter tuning on the exported folder starts as the pretrained model
    cfg = build(VIP5Config, {"backbone": str(folder), "image_tokens": 0, "dropout": 0.0,
                             "max_input_length": 128})
    vip5 = build_vip5(cfg, dataset).eval()
    assert len(vip5.tokenizer) == len(pretrained.tokenizer)
    assert torch.equal(vip5.embeddings.whole_word.weight, pretrained.embeddings.whole_word.weight)
    assert vip5.parameter_groups()["backbone"] == 0
    data = pretrained.train_data(dataset, "train", seed=0)
    batch = pretrained.collate([data[i] for i in (0, 1, len(data) - 1)])
    with torch.no_grad():
        assert torch.equal(vip5(batch).logits, pretrained.eval()(batch).logits)
