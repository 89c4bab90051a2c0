"""Training throughput before and after a change: VIP5's real training loop, two revisions.

The same training (issue #15's setting) runs on the code of a git revision (``--before``,
default HEAD) and on the working tree (after), each in a fresh subprocess
(``benchmarks/throughput_worker.py``): the revision's ``src`` is exported with ``git
archive`` into a temporary folder and put FIRST on the worker's PYTHONPATH, and the
worker checks which ``mfmrec`` it imported. Both sides build the run through the API they
share -- a run-config mapping, ``resolve``, ``build_model`` and ``Trainer(model, dataset,
config, run_dir).fit()`` -- so what is timed is the trainer's own loop (data loading,
forward, backward, clipping, AdamW, per-step logging).

The setting: Amazon Beauty's first ``--users`` users (``beauty_slice.py`` then ``mfmrec
data import p5``, cached under ``--cache`` unless ``--data`` is given), seeded random
512-d image features (one feature store, identical for both sides), VIP5 with a randomly
initialised t5-small-shaped backbone and the real T5 tokenizer, adapters of reduction 8,
2 image tokens per item, batch 16, 512 encoder tokens, sequential + direct prompts in
VIP5's paper mix, AdamW lr 1e-3; tuning modes ``adapters`` and ``full``.

Measured per (side, mode), over ``--steps`` optimizer steps after ``--warmup`` untimed ones
(one more untimed step ends the run, so its end-of-run checkpoint is never timed):
samples/s (wall clock between the trainer's step callbacks, the GPU synchronised);
real tokens/s and the padding share, counted by wrapping ``model.collate`` (real =
non-zero ``attention_mask`` entries + ``labels != -100``; padded = the sizes of both);
peak memory from the run's efficiency report. ``--after-set KEY=VALUE`` overrides apply to
the after runs only (keys the old code lacks are fine), ``--both-set`` to both. With
``--rounds R`` the runs alternate and the best samples/s of each counts (other jobs only
ever slow a run down); peak memory is the highest of the rounds.

MFU: when the after run's efficiency report carries ``achieved_flops_per_s``,
``peak_flops_per_s``, ``train_seconds`` and ``tokens.real``, it is printed as reported,
and both sides also get an estimate over the timed window: the after run's FLOPs per real
token x the side's real tokens/s / peak FLOP/s (assumes FLOPs proportional to real
tokens); otherwise n/a.

``--curve-steps N`` also trains the after code N steps twice, with and without the after
overrides, logs the loss every step, plots both curves (raw and moving average) to
``--plot`` and prints the mean absolute gap of the moving averages over the last half.

Usage (results in docs/benchmarks.md):
  python benchmarks/train_throughput.py --before REV --device cuda --steps 100 --warmup 10 \\
      --rounds 2 --after-set train.length_bucketing=true [--modes adapters,full] \\
      [--data DATA | --users 2000 --cache DIR] [--curve-steps 500 --plot curves.png] \\
      [--json out.json]

A copied tree without git history takes an exported src instead of ``--before``:
``git archive REV src | tar -x -C runs/before`` then ``--before-src runs/before/src``.
A CPU smoke run: ``--shape tiny --users 50 --steps 3 --warmup 1 --max-length 128``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from throughput_worker import MARK, REPORTED, resolved_config

ROOT = Path(__file__).resolve().parents[1]  # the working tree: its src is "after"
WORKER = Path(__file__).resolve().with_name("throughput_worker.py")
MODES = ("adapters", "full")
SIDES = ("before", "after")


class BenchError(Exception):
    """A one-line failure of the benchmark (bad revision, missing data, a failed worker)."""


# ---- parent: data, revisions, runs ---------------------------------------------------------
def _git(*cmd: str) -> str:
    proc = subprocess.run(["git", "-C", str(ROOT), *cmd], capture_output=True, text=True)
    if proc.returncode != 0:
        line = (proc.stderr.strip().splitlines() or ["git failed"])[-1]
        raise BenchError(f"git {' '.join(cmd)}: {line}")
    return proc.stdout.strip()


def resolve_revision(rev: str) -> str:
    """The commit ``rev`` names in this checkout."""
    try:
        return _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except BenchError:
        raise BenchError(f"--before {rev}: not a revision of {ROOT}") from None


def export_src(commit: str, into: Path) -> Path:
    """``git archive COMMIT src`` unpacked into ``into``; returns its src folder."""
    into.mkdir(parents=True, exist_ok=True)
    tar = into / "src.tar"
    _git("archive", "--format=tar", "-o", str(tar), commit, "src")
    with tarfile.open(tar) as fh:
        fh.extractall(into, filter="data")
    tar.unlink()
    if not (into / "src" / "mfmrec").is_dir():
        raise BenchError(f"--before {commit}: has no src/mfmrec")
    return into / "src"


def after_label() -> str:
    try:
        head = _git("rev-parse", "--short", "HEAD")
        dirty = bool(_git("status", "--porcelain", "--", "src"))
    except BenchError:
        return "working tree"
    return f"working tree ({head}{' + changes' if dirty else ''})"


def prepare_data(args: argparse.Namespace) -> Path:
    """``--data``, or Beauty's first ``--users`` users imported into ``--cache``."""
    if args.data:
        if not (args.data / "dataset.json").is_file():
            raise BenchError(f"--data {args.data}: not a prepared dataset (no dataset.json)")
        return args.data
    from mfmrec.paths import shared_path

    src = shared_path("data", "amazon", "beauty")
    if src is None:
        raise BenchError("../shared/data/amazon/beauty not found (set MFMREC_SHARED or give "
                         "--data)")
    out = args.cache / f"beauty-{args.users}"
    if (out / "dataset.json").is_file():
        return out
    p5 = args.cache / f"beauty-{args.users}-p5"
    for cmd in ([str(ROOT / "benchmarks" / "beauty_slice.py"), "--src", str(src),
                 "--users", str(args.users), "--out", str(p5)],
                ["-m", "mfmrec.cli.main", "data", "import", "p5", str(p5), "--out", str(out),
                 "--name", f"beauty-{args.users}", "--force"]):
        proc = subprocess.run([sys.executable, *cmd], capture_output=True, text=True,
                              env=_env(ROOT / "src", 1))
        if proc.returncode != 0:
            line = (proc.stderr.strip().splitlines() or ["failed"])[-1]
            raise BenchError(f"preparing {out}: {line}")
    return out


def ensure_features(data: Path, dim: int, seed: int) -> str:
    """Seeded N(0, 1) image features, one row per item, written once into ``data``."""
    import torch

    from mfmrec.data import load_dataset
    from mfmrec.features.store import feature_path, save_features

    name = f"random{dim}-seed{seed}"
    if not feature_path(data, name).is_file():
        ds = load_dataset(data)
        gen = torch.Generator().manual_seed(seed)
        matrix = torch.randn(ds.num_items, dim, generator=gen)  # (N, d)
        save_features(ds, name, matrix, torch.zeros(ds.num_items, dtype=torch.bool),
                      {"encoder": "random", "preprocessing": f"N(0, 1), torch seed {seed}"})
    return name


def _env(src: Path, threads: int) -> dict:
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), *rest]),
            "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def spawn(spec: dict, logs: Path) -> dict:
    """Run one worker; its stderr goes to a log file, a failure is one line."""
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{spec['tag']}.log"
    proc = subprocess.run([sys.executable, str(WORKER), json.dumps(spec)],
                          capture_output=True, text=True, env=_env(Path(spec["src"]),
                                                                    spec["threads"]))
    log.write_text(proc.stderr)
    shutil.rmtree(spec["run_dir"], ignore_errors=True)  # checkpoints: up to ~1 GB each
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"{spec['tag']} failed (exit {proc.returncode}): {last} "
                         f"(full log: {log})")
    return json.loads(lines[-1][len(MARK):])


def base_spec(args: argparse.Namespace, data: Path, features: str) -> dict:
    return {"data": str(data), "features": features, "shape": args.shape,
            "tokenizer": args.tokenizer, "seed": args.seed, "max_length": args.max_length,
            "batch_size": args.batch_size, "device": args.device, "threads": args.threads}


def throughput_runs(args, base: dict, srcs: dict, work: Path) -> dict:
    """Every (mode, side) ``--rounds`` times, sides alternating; returns the raw runs."""
    runs: dict = {m: {s: [] for s in SIDES} for m in args.modes}
    total = args.warmup + args.steps
    started = time.perf_counter()
    for r in range(args.rounds):
        for mode in args.modes:
            for side in SIDES if r % 2 == 0 else SIDES[::-1]:
                tag = f"{side}-{mode}-round{r + 1}"
                spec = {**base, "side": side, "mode": mode, "tag": tag,
                        "src": str(srcs[side]), "run_dir": str(work / tag),
                        "overrides": args.both_set + (args.after_set if side == "after" else []),
                        "max_steps": total + 1, "window": [args.warmup, total]}
                runs[mode][side].append(spawn(spec, args.cache / "logs"))
                got = runs[mode][side][-1]["samples_per_s"]
                print(f"round {r + 1}, {mode}, {side}: {got or 0:.2f} samples/s "
                      f"({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    return runs


# ---- summary -------------------------------------------------------------------------------
def best_of(rounds: list[dict]) -> dict:
    """The round with the best samples/s; peak memory is the highest of all rounds."""
    best = dict(max(rounds, key=lambda r: r["samples_per_s"] or 0.0))
    peaks = [r["peak_memory_bytes"] for r in rounds if r["peak_memory_bytes"] is not None]
    best["peak_memory_bytes"] = max(peaks) if peaks else None
    best["rounds_samples_per_s"] = [r["samples_per_s"] for r in rounds]
    return best


def flops_per_real_token(report: dict) -> float | None:
    """FLOPs per real token of a run whose report counts FLOPs and tokens, else None."""
    real = (report.get("tokens") or {}).get("real")
    flops, seconds = report.get("achieved_flops_per_s"), report.get("train_seconds")
    return flops * seconds / real if real and flops and seconds else None


def reported(report: dict, key: str):
    """A field of a run's efficiency report (``padding_share`` may sit under ``tokens``)."""
    value = report.get(key)
    return (report.get("tokens") or {}).get(key) if value is None else value


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def summarise(runs: dict) -> dict:
    """Per mode: best before and after, MFU estimates, after/before ratios; per side:
    adapters/full ratios of time per sample and peak memory."""
    out: dict = {"modes": {}, "adapters_vs_full": {}}
    for mode, sides in runs.items():
        best = {s: best_of(sides[s]) for s in SIDES}
        after = best["after"]["report"]
        per_token, peak = flops_per_real_token(after), after.get("peak_flops_per_s")
        for b in best.values():
            b["mfu_est"] = (per_token * b["real_tokens_per_s"] / peak
                            if per_token and peak and b["real_tokens_per_s"] else None)
            b["mfu_reported"] = reported(b["report"], "mfu")
        keys = ("samples_per_s", "real_tokens_per_s", "padding_share", "mfu_est",
                "peak_memory_bytes")
        ratios = {k: _ratio(best["after"][k], best["before"][k]) for k in keys}
        out["modes"][mode] = {**best, "after_over_before": ratios}
    if {"adapters", "full"} <= set(runs):
        for side in SIDES:
            a, f = out["modes"]["adapters"][side], out["modes"]["full"][side]
            per = [1 / r["samples_per_s"] if r["samples_per_s"] else None for r in (a, f)]
            out["adapters_vs_full"][side] = {
                "time_per_sample": _ratio(*per),
                "peak_memory": _ratio(a["peak_memory_bytes"], f["peak_memory_bytes"])}
    return out


def _fmt(x, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def tables(summary: dict, labels: dict) -> str:
    rows = (("samples/s", "samples_per_s", ",.2f"), ("real tokens/s", "real_tokens_per_s", ",.0f"),
            ("padding share", "padding_share", ".3f"), ("MFU (est.)", "mfu_est", ".4f"),
            ("MFU (run's report)", "mfu_reported", ".4f"),
            ("peak memory MiB", "peak_memory_bytes", None))
    out = []
    for mode, m in summary["modes"].items():
        kind = m["after"]["memory_kind"] or "?"
        out += ["", f"{mode}:", f"| quantity | before {labels['before']} | after "
                f"{labels['after']} | after/before |", "|---|---:|---:|---:|"]
        for name, key, spec in rows:
            vals = [m[s][key] for s in SIDES]
            if key == "peak_memory_bytes":
                vals, spec, name = [None if v is None else v / 2**20 for v in vals], ",.0f", \
                    f"{name} ({kind})"
            ratio = m["after_over_before"].get(key)
            out.append(f"| {name} | {_fmt(vals[0], spec)} | {_fmt(vals[1], spec)} | "
                       f"{_fmt(ratio, '.3f') if key != 'mfu_reported' else '-'} |")
        own = {k: reported(m["after"]["report"], k) for k in REPORTED}
        if any(v is not None for v in own.values()):
            out.append("after run's own report (all steps, warm-up included): " + ", ".join(
                f"{k} {_fmt(v, '.4g')}" for k, v in own.items() if v is not None))
        crossed = [s for s in SIDES if m[s]["epoch_end_in_window"]]
        if crossed:
            out.append(f"(warning: an epoch ended inside the timed steps of {crossed}: its "
                       "checkpoint is in the time; use fewer --steps or more --users)")
    if summary["adapters_vs_full"]:
        out += ["", "adapters / full:", "| side | time per sample | peak memory |",
                "|---|---:|---:|"]
        for side, r in summary["adapters_vs_full"].items():
            out.append(f"| {side} | {_fmt(r['time_per_sample'], '.3f')} | "
                       f"{_fmt(r['peak_memory'], '.3f')} |")
    return "\n".join(out)


# ---- loss curves ---------------------------------------------------------------------------
def moving_average(values: list[float], window: int) -> list[float]:
    """Trailing mean over ``window`` steps (fewer at the start)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def curve_gap(with_: list[float], without: list[float], window: int) -> dict:
    """Mean |moving average with - without| over the last half of the steps."""
    n = min(len(with_), len(without))
    a, b = moving_average(with_[:n], window), moving_average(without[:n], window)
    half = range(n // 2, n)
    gap = sum(abs(a[i] - b[i]) for i in half) / max(1, len(half))
    base = sum(b[i] for i in half) / max(1, len(half))
    return {"steps": n, "window": window, "mean_abs_gap": gap,
            "relative_gap": gap / base if base else None,
            "final_ma_with": a[-1] if a else None, "final_ma_without": b[-1] if b else None}


def plot_curves(curves: dict, window: int, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for (label, losses), colour in zip(curves.items(), ("tab:blue", "tab:orange"), strict=False):
        steps = range(1, len(losses) + 1)
        ax.plot(steps, losses, color=colour, alpha=0.25, linewidth=0.8)
        ax.plot(steps, moving_average(losses, window), color=colour, linewidth=2,
                label=f"{label} (moving average of {window})")
    ax.set(xlabel="optimizer step", ylabel="training loss", title=title)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def loss_curves(args, base: dict, src: Path, work: Path) -> dict:
    curves = {}
    for label, extra in (("with after overrides", args.after_set), ("without", [])):
        tag = f"curve-{label.split()[0]}-overrides"
        spec = {**base, "side": "after", "mode": args.curve_mode, "tag": tag, "src": str(src),
                "run_dir": str(work / tag), "overrides": args.both_set + extra,
                "max_steps": args.curve_steps, "window": [0, 0]}
        curves[label] = [x for x in spawn(spec, args.cache / "logs")["losses"] if x is not None]
    window = max(1, min(args.curve_window, args.curve_steps))
    gap = curve_gap(*curves.values(), window)
    plot_curves(curves, window, args.plot, f"VIP5 {args.curve_mode}, {args.shape}: "
                f"after {' '.join(args.after_set) or '(no overrides)'}")
    return {"losses": curves, "summary": gap, "plot": str(args.plot)}


# ---- command line --------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", default="HEAD", help="git revision of the 'before' code")
    p.add_argument("--before-src", type=Path, help="an exported 'before' src folder instead "
                   "(for a copied tree without git history)")
    p.add_argument("--after-set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for the after runs only (repeatable)")
    p.add_argument("--both-set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for both sides (repeatable)")
    p.add_argument("--data", type=Path, help="prepared dataset (default: Beauty's first "
                   "--users users, imported into --cache)")
    p.add_argument("--users", type=int, default=2000, help="users of the default dataset")
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "mfmrec" /
                   "train-throughput", help="where the default dataset and worker logs go")
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated tuning modes")
    p.add_argument("--shape", default="small", choices=("tiny", "small", "base"),
                   help="backbone preset (random init); small = t5-small's shape")
    p.add_argument("--tokenizer", help="tokenizer folder (default: ../shared/models/"
                   "t5-small-tokenizer)")
    p.add_argument("--feature-dim", type=int, default=512, help="random image feature size")
    p.add_argument("--steps", type=int, default=20, help="timed optimizer steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed optimizer steps first (>= 1)")
    p.add_argument("--rounds", type=int, default=1, help="alternating runs; best samples/s")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=512, help="encoder tokens per prompt")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per worker")
    p.add_argument("--seed", type=int, default=0, help="features, init, data order")
    p.add_argument("--curve-steps", type=int, default=0,
                   help="also train the after code N steps with and without its overrides")
    p.add_argument("--curve-mode", default="adapters", choices=MODES)
    p.add_argument("--curve-window", type=int, default=25, help="moving-average steps")
    p.add_argument("--plot", type=Path, help="loss-curve PNG (default: CACHE/curves.png)")
    p.add_argument("--json", type=Path, help="also write every number here")
    args = p.parse_args(argv)
    check_args(p, args)
    return args


def check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not args.modes or set(args.modes) - set(MODES):
        p.error(f"--modes: expected a subset of {','.join(MODES)}, got {args.modes}")
    for name in ("steps", "warmup", "rounds", "users", "batch_size", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')}: must be >= 1")
    if args.curve_steps and args.curve_steps < 2:
        p.error("--curve-steps: must be >= 2 (or 0 for no curves)")
    bad = [o for o in args.after_set + args.both_set if "=" not in o or "." not in o[:o.find("=")]]
    if bad:
        p.error(f"expected SECTION.KEY=VALUE, got {bad[0]!r}")
    if args.before_src and not (args.before_src / "mfmrec" / "__init__.py").is_file():
        p.error(f"--before-src {args.before_src}: expected a src folder holding mfmrec/")
    args.plot = args.plot or args.cache / "curves.png"
    if args.tokenizer is None:
        from mfmrec.paths import shared_path

        found = shared_path("models", "t5-small-tokenizer")
        if found is None:
            p.error("--tokenizer: ../shared/models/t5-small-tokenizer not found; give one")
        args.tokenizer = str(found)


def run(args: argparse.Namespace) -> dict:
    from mfmrec.errors import MfmrecError

    commit = None if args.before_src else resolve_revision(args.before)  # cheap checks first
    try:
        data = prepare_data(args)
        features = ensure_features(data, args.feature_dim, args.seed)
        base = base_spec(args, data, features)
        for extra in (args.both_set + args.after_set, args.both_set):  # fail fast, not late
            resolved_config({**base, "side": "after", "mode": args.modes[0],
                             "max_steps": 2, "overrides": extra})
    except MfmrecError as exc:  # e.g. an unknown key in --after-set
        raise BenchError(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="train-throughput-") as tmp:
        work = Path(tmp)
        before = args.before_src or export_src(commit, work / "before")
        srcs = {"before": before.resolve(), "after": ROOT / "src"}
        labels = {"before": f"{args.before} ({commit[:9]})" if commit else str(before),
                  "after": after_label()}
        runs = throughput_runs(args, base, srcs, work)
        curves = loss_curves(args, base, srcs["after"], work) if args.curve_steps else None
    return {"labels": labels, "before_commit": commit, "data": str(data),
            "features": features, "summary": summarise(runs), "curves": curves, "runs": runs}


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        out = run(args)
    except (BenchError, OSError) as exc:  # OSError: e.g. an unwritable --cache
        sys.exit(f"train_throughput: {exc}")
    print(f"VIP5 {args.shape}, batch {args.batch_size}, max input {args.max_length}, "
          f"{args.steps} timed steps after {args.warmup}, rounds {args.rounds}, device "
          f"{args.device}, threads {args.threads}; data {out['data']}; after overrides: "
          f"{' '.join(args.after_set) or 'none'}; both: {' '.join(args.both_set) or 'none'}")
    print(tables(out["summary"], out["labels"]))
    if out["curves"]:
        s = out["curves"]["summary"]
        print(f"\nloss curves ({args.curve_mode}, {s['steps']} steps, plot {args.plot}): mean "
              f"|moving average gap| over the last half {s['mean_abs_gap']:.4f} "
              f"({_fmt(s['relative_gap'], '.2%')} of the no-override loss); final moving "
              f"averages {s['final_ma_with']:.4f} with, {s['final_ma_without']:.4f} without")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"args": {k: v if not isinstance(v, Path) else str(v)
                                                  for k, v in vars(args).items()}, **out},
                                        indent=1))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))  # the parent runs the working tree's code
    main()
