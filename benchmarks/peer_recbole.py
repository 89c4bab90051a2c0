"""Peer benchmark: mfmrec's SASRec / BPR-MF beside RecBole 1.2.1's on the same split.

    OMP_NUM_THREADS=1 python benchmarks/peer_recbole.py --data /tmp/h6/beauty \\
        --model bpr-mf --epochs 50 --out /tmp/h6/peer-bpr

RecBole is a benchmark-only dependency. Unless ``--recbole-python`` names an interpreter
that already imports it, the script creates a virtual environment (``--venv``, default
``~/.cache/mfmrec/recbole-1.2.1``) layered on the current one: a ``.pth`` file puts this
interpreter's site-packages on its path, so both sides use the same torch and numpy, and
only ``recbole==1.2.1`` (no dependencies) plus what its imports need (``colorlog==4.7.2``,
``texttable``, ``pandas<3``, ``tensorboard``) are installed there. RecBole runs in that
interpreter as a subprocess (``--recbole-worker``). Compatibility patches, applied at run
time in the worker, nothing edited on disk:

* RecBole's ``quick_start`` imports ``ray`` (hyper-parameter tuning only); the worker
  calls the pipeline itself (Config, create_dataset, data_preparation, model, trainer),
  so neither ``ray`` nor ``thop``/``plotly`` is installed;
* numpy 2 removed ``np.float_``, ``np.complex_`` and ``np.unicode_``, which RecBole's
  ``Config.compatibility_settings`` reads; the worker restores them as aliases of
  ``np.float64``, ``np.complex128`` and ``np.str_`` first;
* pandas 3's copy-on-write turns RecBole's in-place ``feat[field].fillna(...,
  inplace=True)`` into a silent no-op, so the venv gets ``pandas<3``;
* torch 2.13 needs nothing: with ``saved=False`` no checkpoint goes through
  ``torch.load`` (whose ``weights_only`` default changed in torch 2.6).

Held equal on both sides: the item sequences (exported from the mfmrec dataset as RecBole
atomic files, the position in the sequence as the timestamp), leave-one-out (RecBole
``LS: valid_and_test`` with ``order: TO``; the test history includes the validation item
on both sides), HR@k and NDCG@k on the test split with RecBole's history rule (full
ranking masks the user's history for BPR but not for SASRec, whose RecBole data loader
passes no history; ours is evaluated both ways and the matching row is compared), the
model sizes, Adam with the same learning rate, batch size and a fixed number of epochs
(no validation and no early stopping in RecBole; its last model is tested, as mfmrec's).
Protocols: full ranking over all items on both sides; for BPR also RecBole's ``uni100``
(the test item among 100 uniformly sampled unseen items, drawn by RecBole's seeded
sampler) beside mfmrec's 100 stored candidates (the test item among 99 frozen
negatives). Left different and reported: initialisation and sampling RNGs, and mfmrec's
weight-decay grouping. Seconds per epoch: RecBole's are timed around each training epoch
in the worker; mfmrec's are the trainer's elapsed time over the epochs (metrics.jsonl).

Prints one table with the ratios and writes ``OUT/peer.json``. ``--only mfmrec`` runs the
mfmrec side alone; ``--parallel`` trains both sides at the same time (each with one
thread), which halves the wall time on a machine with two free cores. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import torch

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECBOLE_MODEL = {"sasrec": "SASRec", "bpr-mf": "BPR"}
# RecBole's full-ranking evaluator masks a user's history for general models (BPR) but not
# for sequential ones (SASRec: FullSortEvalDataLoader passes no history index); our
# compared row follows the same rule, the other rule is printed as a reference row
RECBOLE_EXCLUDES_HISTORY = {"sasrec": False, "bpr-mf": True}
RECBOLE_VERSION = "1.2.1"
RECBOLE_NEEDS = ("colorlog==4.7.2", "texttable", "pandas<3", "tensorboard")
DEFAULT_VENV = Path.home() / ".cache" / "mfmrec" / f"recbole-{RECBOLE_VERSION}"
KS = (5, 10)
METRICS = [f"HR@{k}" for k in KS] + [f"NDCG@{k}" for k in KS]


# ---- RecBole environment -----------------------------------------------------------------
def _imports_recbole(python: Path) -> bool:
    probe = f"import recbole; assert recbole.__version__ == {RECBOLE_VERSION!r}"
    return python.is_file() and subprocess.run(
        [str(python), "-c", probe], capture_output=True).returncode == 0


def ensure_recbole(venv: Path) -> Path:
    """The venv's python, after creating it and installing RecBole there if needed."""
    python = venv / "bin" / "python"
    if _imports_recbole(python):
        return python
    print(f"installing RecBole {RECBOLE_VERSION} into {venv}", flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                           "get_paths()['purelib'])"], check=True, capture_output=True,
                          text=True).stdout.strip()
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (Path(site) / "mfmrec-base.pth").write_text("\n".join(ours) + "\n")
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--no-deps", f"recbole=={RECBOLE_VERSION}"], check=True)
    subprocess.run([*pip, *RECBOLE_NEEDS], check=True)
    if not _imports_recbole(python):
        sys.exit(f"{python}: RecBole {RECBOLE_VERSION} still does not import after install")
    return python


# ---- settings shared by both sides ---------------------------------------------------------
def export_atomic(dataset, root: Path, name: str) -> Path:
    """``root/name/name.inter``: one row per interaction, position as the timestamp."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    for user, seq in enumerate(dataset.sequences):
        lines += [f"{user}\t{int(item)}\t{pos}" for pos, item in enumerate(seq)]
    (folder / f"{name}.inter").write_text("\n".join(lines) + "\n")
    return folder


def run_config(model: str, epochs: int, extra: list[str]):
    from mfmrec.training.config import load_run_config

    return load_run_config(CONFIGS / f"{model}.yaml", [f"train.epochs={epochs}", *extra])


def recbole_settings(model: str, cfg, root: Path, name: str) -> dict:
    """RecBole 1.2.1 config dict mirroring the mfmrec run config."""
    m, t = cfg.to_dict()["model"], cfg.train
    settings = {
        "data_path": str(root), "dataset": name, "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "epochs": t.epochs, "train_batch_size": t.batch_size, "learning_rate": t.lr,
        "weight_decay": t.weight_decay, "seed": t.seed, "stopping_step": t.epochs + 1,
        "eval_step": t.epochs, "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO",
                                             "group_by": "user", "mode": "full"},
        "metrics": ["Hit", "NDCG"], "topk": list(KS), "valid_metric": "NDCG@10",
        "eval_batch_size": 4096, "checkpoint_dir": str(root.parent / "recbole_saved"),
        "use_gpu": torch.cuda.is_available(), "show_progress": False,
        "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1},
    }
    if model == "sasrec":
        settings.update({
            "MAX_ITEM_LIST_LENGTH": m["max_len"], "n_layers": m["layers"],
            "n_heads": m["heads"], "hidden_size": m["hidden"], "inner_size": m["inner"],
            "hidden_dropout_prob": m["hidden_dropout"], "attn_dropout_prob": m["attn_dropout"],
            "loss_type": m["loss"].upper(), "layer_norm_eps": m["norm_eps"],
            "initializer_range": m["init_std"], "hidden_act": "gelu",
        })
        if m["loss"] == "ce":
            settings["train_neg_sample_args"] = None
    else:
        settings["embedding_size"] = m["dim"]
    return settings


# ---- the RecBole worker (runs inside the RecBole venv) -------------------------------------
def _numpy2_aliases(np=None) -> None:
    """Restore the numpy 1 aliases RecBole 1.2.1's compatibility_settings reads
    (on ``np``, default the numpy module; only in the worker process)."""
    if np is None:
        import numpy as np

    for old, new in (("float_", "float64"), ("complex_", "complex128"), ("unicode_", "str_")):
        if not hasattr(np, old):
            setattr(np, old, getattr(np, new))


def _recbole_test(config_cls, model_name: str, settings: dict, mode: str, trainer) -> dict:
    """Test ``trainer``'s model on the test loader built for eval ``mode``."""
    from recbole.data import create_dataset, data_preparation

    cfg = config_cls(model=model_name, config_dict={
        **settings, "eval_args": {**settings["eval_args"], "mode": mode}})
    _, _, test = data_preparation(cfg, create_dataset(cfg))
    result = trainer.evaluate(test, load_best_model=False)
    return {k.lower(): float(v) for k, v in result.items()}


def recbole_worker(settings_file: Path, result_file: Path) -> None:
    """Train RecBole's model once, test it under each requested mode, write JSON."""
    _numpy2_aliases()
    import recbole
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_logger, init_seed

    job = json.loads(settings_file.read_text())
    settings, name = job["settings"], job["model"]
    config = Config(model=name, config_dict=settings)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    train_data, _, _ = data_preparation(config, create_dataset(config))
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    epoch_seconds: list[float] = []
    train_epoch = trainer._train_epoch

    def timed(*args, **kwargs):
        start = time.perf_counter()
        out = train_epoch(*args, **kwargs)
        epoch_seconds.append(time.perf_counter() - start)
        return out

    trainer._train_epoch = timed
    start = time.perf_counter()
    trainer.fit(train_data, valid_data=None, saved=False, show_progress=False)
    seconds = time.perf_counter() - start
    tests = {mode: _recbole_test(Config, name, settings, mode, trainer)
             for mode in job["modes"]}
    result_file.write_text(json.dumps({
        "version": recbole.__version__, "train_seconds": round(seconds, 1),
        "epoch_seconds": round(sum(epoch_seconds) / max(len(epoch_seconds), 1), 2),
        "tests": tests}))


def start_recbole(model: str, cfg, dataset, out: Path, python: Path) -> subprocess.Popen:
    """Start RecBole's run in its own interpreter; ``recbole_rows`` reads its result."""
    name = f"mfmrec_{dataset.name}".replace("-", "_")
    export_atomic(dataset, out / "recbole_data", name)
    modes = ["full", "uni100"] if model == "bpr-mf" else ["full"]
    job = {"model": RECBOLE_MODEL[model], "modes": modes,
           "settings": recbole_settings(model, cfg, out / "recbole_data", name)}
    (out / "recbole_job.json").write_text(json.dumps(job, indent=2))
    (out / "recbole_result.json").unlink(missing_ok=True)
    return subprocess.Popen([str(python), str(Path(__file__).resolve()), "--recbole-worker",
                             str(out / "recbole_job.json"), str(out / "recbole_result.json")],
                            cwd=out)  # RecBole writes log/ and log_tensorboard/ in cwd


def recbole_rows(worker: subprocess.Popen, out: Path) -> dict[str, dict]:
    """{protocol: row} once the RecBole worker has finished."""
    if worker.wait() != 0:
        sys.exit(f"RecBole worker failed (exit {worker.returncode}); see {out / 'log'}")
    res = json.loads((out / "recbole_result.json").read_text())
    timing = {"seconds": res["train_seconds"], "s/epoch": res["epoch_seconds"]}
    label = {"full": "full ranking", "uni100": "uni100"}
    return {f"recbole {RECBOLE_VERSION} {label[mode]}": {
        **{f"HR@{k}": test[f"hit@{k}"] for k in KS},
        **{f"NDCG@{k}": test[f"ndcg@{k}"] for k in KS}, **timing}
        for mode, test in res["tests"].items()}


# ---- the mfmrec side ------------------------------------------------------------------------
def _epoch_seconds(run_dir: Path, epochs: int) -> float:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    elapsed = [json.loads(x)["elapsed"] for x in lines if '"elapsed"' in x]
    return round(max(elapsed) / epochs, 2) if elapsed else float("nan")


def mfmrec_side(model: str, cfg, data_dir: Path, out: Path) -> dict[str, dict]:
    """{protocol: row}: full ranking under RecBole's history rule for ``model`` (and under
    the other rule, for reference), plus the 100 stored candidates where supported."""
    from mfmrec.evaluation.config import EvalConfig
    from mfmrec.evaluation.evaluator import evaluate
    from mfmrec.models.base import DIRECT, SEQUENTIAL
    from mfmrec.training.runs import load_run, train

    start = time.perf_counter()
    train(cfg, data_dir, out / "mfmrec_run", quiet=True)
    timing = {"seconds": round(time.perf_counter() - start, 1),
              "s/epoch": _epoch_seconds(out / "mfmrec_run", cfg.train.epochs)}
    run = load_run(out / "mfmrec_run")
    matched = RECBOLE_EXCLUDES_HISTORY[model]
    rows = {}
    for exclude in (matched, not matched):
        rule = "history excluded" if exclude else "history kept"
        if exclude == matched:
            label = {SEQUENTIAL: f"full ranking ({rule}, as RecBole)",
                     DIRECT: "100 stored candidates"}
        else:  # candidates never include the history: only full ranking changes
            label = {SEQUENTIAL: f"full ranking ({rule}, reference)"}
        tasks = [t for t in label if t in run.model.tasks]
        cfg = EvalConfig(tasks=tasks, exclude_history=exclude, hr_ks=KS, ndcg_ks=KS,
                         batch_size=1024)
        res = evaluate(run.model, run.dataset, cfg, progress=False)
        rows.update({f"mfmrec {label[t]}": {
            **{k: float(res["tasks"][t]["prompts"]["-"][k]) for k in METRICS}, **timing}
            for t in tasks})
    return rows


def table(rows: dict[str, dict]) -> str:
    names = [*METRICS, "s/epoch", "seconds"]
    lines = ["| side | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for side, row in rows.items():
        cells = [f"{row.get(n, float('nan')):.{4 if '@' in n else 2}f}" for n in names]
        lines.append(f"| {side} | " + " | ".join(cells) + " |")
    pairs = [("full ranking", "full ranking"), ("100 stored candidates", "uni100")]
    for ours, theirs in pairs:
        a = next((r for s, r in rows.items() if s.startswith(f"mfmrec {ours}")
                  and "reference" not in s), None)
        b = next((r for s, r in rows.items() if s.startswith("recbole")
                  and s.endswith(theirs)), None)
        if a and b:
            ratio = [a[n] / b[n] if b.get(n) else float("nan") for n in names]
            lines.append(f"| ratio mfmrec/recbole ({ours} / {theirs}) | "
                         + " | ".join(f"{r:.3f}" for r in ratio) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="prepared mfmrec dataset")
    parser.add_argument("--model", choices=sorted(RECBOLE_MODEL), default="sasrec")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--out", type=Path, help="folder for both runs")
    parser.add_argument("--only", choices=("both", "mfmrec", "recbole"), default="both")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV,
                        help="RecBole's own virtual environment (created when missing)")
    parser.add_argument("--recbole-python", type=Path, default=None,
                        help="an interpreter that already imports RecBole (skips --venv)")
    parser.add_argument("--parallel", action="store_true",
                        help="train both sides at once (one thread each; both timings then "
                             "share the machine)")
    parser.add_argument("--recbole-worker", nargs=2, type=Path, metavar=("JOB", "RESULT"),
                        help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="dotted overrides for the mfmrec config")
    args = parser.parse_args(argv)
    if not args.recbole_worker and (args.data is None or args.out is None):
        parser.error("--data and --out are required")
    return args


def main(argv: list[str] | None = None) -> None:
    torch.set_num_threads(1)
    args = parse_args(argv)
    if args.recbole_worker:
        recbole_worker(*args.recbole_worker)
        return
    from mfmrec.data import load_dataset

    cfg = run_config(args.model, args.epochs, args.overrides)
    dataset = load_dataset(args.data)
    args.out.mkdir(parents=True, exist_ok=True)
    ours: dict[str, dict] = {}
    theirs: dict[str, dict] = {}
    worker = None
    if args.only in ("both", "recbole"):
        python = args.recbole_python or ensure_recbole(args.venv)
        worker = start_recbole(args.model, cfg, dataset, args.out, python)
        if not args.parallel:
            theirs = recbole_rows(worker, args.out)
    if args.only in ("both", "mfmrec"):
        ours = mfmrec_side(args.model, cfg, args.data, args.out)
    if worker is not None and args.parallel:
        theirs = recbole_rows(worker, args.out)
    rows = {**ours, **theirs}
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    report = {"model": args.model, "dataset": dataset.name, "simulated": dataset.simulated,
              "epochs": args.epochs, "device": device, "command": " ".join(sys.argv),
              "results": rows}
    (args.out / "peer.json").write_text(json.dumps(report, indent=2, default=str))
    label = " (SIMULATED data)" if dataset.simulated else ""
    print(f"{args.model} on {dataset.name}{label}, {args.epochs} epochs, test split, {device}")
    print(table(rows))


if __name__ == "__main__":
    main()
