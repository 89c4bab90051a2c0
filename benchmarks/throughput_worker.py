"""One timed VIP5 training run for benchmarks/train_throughput.py (not a benchmark itself).

It runs on whichever ``mfmrec`` comes first on PYTHONPATH -- an old revision's exported
``src`` or the working tree's -- so it uses only API that both share: a run-config
mapping of long-standing keys, ``mfmrec.config.apply_overrides``,
``mfmrec.training.config.resolve``, ``mfmrec.training.runs.build_model`` and
``Trainer(model, dataset, config, run_dir, quiet=True, callbacks=[...]).fit()``.

  python benchmarks/throughput_worker.py SPEC_JSON

prints one line ``RESULT {...}`` (JSON) on stdout; a user error is one line on stderr and
exit 1. ``SPEC_JSON`` names the data, features, shape, tokenizer, mode, overrides, device,
``max_steps`` and the timed ``window`` [a, b]: optimizer steps a+1 .. b are timed, wall
clock between the trainer's step callbacks (GPU synchronised there).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

MARK = "RESULT "  # prefix of the worker's JSON line on stdout
IGNORE_INDEX = -100  # label padding of every mfmrec collate
REPORTED = ("padding_share", "real_tokens_per_s", "achieved_flops_per_s", "peak_flops_per_s",
            "mfu")  # efficiency-report fields printed when the code under test has them
REPORT_KEYS = (*REPORTED, "tokens", "train_seconds", "samples_per_s", "precision")


class WorkerError(Exception):
    """A one-line failure of the run (no CUDA, the wrong mfmrec imported)."""


def run_config(spec: dict) -> dict:
    """The run-config mapping both revisions understand (only long-standing keys)."""
    return {
        "model": {"name": "vip5", "backbone": spec["shape"], "tokenizer": spec["tokenizer"],
                  "tuning": spec["mode"], "init_seed": spec["seed"], "reduction_factor": 8,
                  "image_features": spec["features"], "image_tokens": 2,
                  "tasks": ["sequential", "direct"], "sampling": "paper", "max_history": 20,
                  "max_input_length": spec["max_length"]},
        "train": {"epochs": 1000, "batch_size": spec["batch_size"], "lr": 1e-3,
                  "warmup_ratio": 0.05, "grad_clip": 5.0, "seed": spec["seed"],
                  "max_steps": spec["max_steps"], "log_every": 1, "checkpoint_every": 0,
                  "keep_checkpoints": 1, "cpu": spec["device"] == "cpu"},
    }


def resolved_config(spec: dict):
    """``spec``'s RunConfig with its overrides (a ConfigError names a bad key)."""
    from mfmrec.config import apply_overrides
    from mfmrec.training.config import resolve

    data = apply_overrides(run_config(spec), list(spec["overrides"]))
    return resolve(data, source=f"{spec['side']} config")


def batch_tokens(batch: dict, samples: int) -> dict:
    """Real and padded encoder/decoder tokens of one collated batch."""
    mask, labels = batch.get("attention_mask"), batch.get("labels")  # (B, L), (B, T)
    return {"samples": samples,
            "enc_real": int((mask != 0).sum()) if mask is not None else 0,
            "enc_padded": int(mask.numel()) if mask is not None else 0,
            "dec_real": int((labels != IGNORE_INDEX).sum()) if labels is not None else 0,
            "dec_padded": int(labels.numel()) if labels is not None else 0,
            "shape": [samples, int(mask.shape[-1]) if mask is not None else 0,
                      int(labels.shape[-1]) if labels is not None else 0]}


def count_tokens(model) -> list[dict]:
    """Wrap ``model.collate`` to record every batch's tokens, in call order (step order:
    the trainer collates in-process with ``num_workers: 0``); returns the record list."""
    calls, collate = [], model.collate

    def counting(samples):
        batch = collate(samples)
        calls.append(batch_tokens(batch, len(samples)))
        return batch

    model.collate = counting
    return calls


def token_totals(calls: list[dict]) -> dict:
    out = {k: sum(c[k] for c in calls) for k in ("enc_real", "dec_real", "enc_padded",
                                                 "dec_padded")}
    out["real"] = out["enc_real"] + out["dec_real"]
    out["padded"] = out["enc_padded"] + out["dec_padded"]
    return out


def _metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _check_import(spec: dict) -> str:
    import mfmrec

    found, wanted = Path(mfmrec.__file__).resolve(), Path(spec["src"]).resolve()
    if wanted not in found.parents:
        raise WorkerError(f"imported mfmrec from {found}, not from {wanted}")
    return str(found)


def train_once(spec: dict) -> dict:
    """Train ``spec["max_steps"]`` steps; time steps ``window[0]+1 .. window[1]``."""
    import torch

    from mfmrec.data import load_dataset
    from mfmrec.training.runs import build_model
    from mfmrec.training.trainer import Trainer

    imported = _check_import(spec)
    torch.set_num_threads(spec["threads"])
    if spec["device"] == "cuda" and not torch.cuda.is_available():
        raise WorkerError("--device cuda: no CUDA device visible")
    config = resolved_config(spec)
    dataset = load_dataset(spec["data"])
    model = build_model(config, dataset)
    calls = count_tokens(model)
    start, stop = spec["window"]
    marks: dict[int, tuple[float, int, int]] = {}

    def mark(state) -> None:  # after every optimizer step (and its checkpoint, if any)
        if state.step in (start, stop):
            if spec["device"] == "cuda":
                torch.cuda.synchronize()
            marks[state.step] = (time.perf_counter(), state.samples, state.epoch)

    run_dir = Path(spec["run_dir"])
    report = Trainer(model, dataset, config, run_dir, quiet=True, callbacks=[mark]).fit() \
        .efficiency
    log = _metrics(run_dir)
    timed = stop > start and start in marks and stop in marks
    seconds = marks[stop][0] - marks[start][0] if timed else 0.0
    tokens = token_totals(calls[start:stop])
    elapsed = {row.get("step"): row.get("elapsed") for row in log}
    return {
        "side": spec["side"], "mode": spec["mode"], "overrides": spec["overrides"],
        "mfmrec_file": imported, "steps": stop - start, "warmup": start, "seconds": seconds,
        "samples": marks[stop][1] - marks[start][1] if timed else 0,
        "samples_per_s": (marks[stop][1] - marks[start][1]) / seconds if seconds else None,
        # the trainer's own step time over the same steps (metrics.jsonl "elapsed")
        "trainer_seconds": elapsed[stop] - elapsed[start]
        if timed and elapsed.get(stop) is not None and elapsed.get(start) is not None else None,
        "tokens": tokens,
        "real_tokens_per_s": tokens["real"] / seconds if seconds else None,
        "padding_share": 1 - tokens["real"] / tokens["padded"] if tokens["padded"] else None,
        "collate_calls": len(calls),
        "epoch_end_in_window": timed and marks[stop][2] != marks[start][2],
        "batch_shapes": [c["shape"] for c in calls[start:stop]],  # (B, L, T) per timed step
        "peak_memory_bytes": report["memory"].get("peak_memory_bytes"),
        "memory_kind": report["memory"].get("memory_kind"),
        "parameters": report.get("parameters"), "device": report.get("device"),
        "report": {k: report[k] for k in REPORT_KEYS if k in report},
        "losses": [row.get("loss") for row in log],  # one per step (log_every: 1)
    }


def main(argv: list[str] | None = None) -> None:
    from mfmrec.errors import MfmrecError

    spec = json.loads((argv if argv is not None else sys.argv[1:])[0])
    try:
        out = train_once(spec)
    except (MfmrecError, WorkerError) as exc:
        sys.exit(f"{spec['side']} {spec['mode']}: {exc}")
    print(MARK + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
