"""VIP5 evaluation speed, measured: the papers' decoding vs trie-constrained decoding vs exact
candidate scoring, on the same trained model, users and batch size, in one process.

Methods (each timed over the same users; only the model calls are timed, metrics are not):

* ``paper`` -- sequential (A-3 by default): P5/VIP5's decoding, plain beam search of
  ``--beams`` beams through ``model.generate``, every beam decoded to a string and parsed
  as an item number; strings that name no item and repeated items are dropped
  (``model.decoding: paper``; :func:`mfmrec.models.vip5.decoding.unconstrained_beam_search`);
* ``trie`` -- sequential, the same prompt: beam search constrained by a prefix trie of the
  item numbers' token ids (``model.decoding: constrained``, the default);
* ``direct-exact`` -- direct (B-5 by default) over the 100 stored candidates: the exact
  log-likelihood of every candidate under teacher forcing (``score_candidates``);
* ``direct-beam`` -- direct, the same prompt: beam search constrained by a trie of each
  user's own 100 candidates (``recommend_candidates``).

Printed: users/s of each method and the ratios (trie vs paper, exact vs beam), HR@k and
NDCG@k of each, the share of generated list slots that are valid items, and the share of
users whose top-1 item agrees between ``direct-exact`` and ``direct-beam``.

``--only trie --users 0`` times trie decoding alone over ALL test users (the full-dataset
measurement); ``--users N`` keeps the first N users with a test target.

Usage (results in docs/benchmarks.md):
  python benchmarks/eval_speed.py --run RUN_DIR [--data DATA] --users 200 --batch-size 16
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

METHODS = ("paper", "trie", "direct-exact", "direct-beam")


def _report(every: float, done: int, total: int, started: float, name: str) -> float:
    """Progress on stderr every ``every`` seconds (long runs); returns the next deadline."""
    now = time.perf_counter()
    rate = done / (now - started)
    print(f"  {name}: {done}/{total} users, {rate:.1f} users/s, "
          f"ETA {(total - done) / rate:.0f} s", file=sys.stderr, flush=True)
    return now + every


def sequential(model, split, args, decoding: str, num_items: int) -> dict:
    """Generated top-k lists for ``split``'s users (the model loaded with
    ``model.decoding=<decoding>``); times only ``recommend``."""
    from mfmrec.evaluation import metrics as M

    k, seconds, lists, dropped = args.k, 0.0, [], {"invalid": 0, "duplicates": 0}
    started = time.perf_counter()
    deadline = started + args.progress_every
    for sl, users, hists in split.batches(args.batch_size):
        tick = time.perf_counter()
        rec = model.recommend(users, hists, k=k, prompt=args.prompt)  # (B, k)
        seconds += time.perf_counter() - tick
        lists.append(rec.numpy())
        for key in dropped:
            dropped[key] += model.last_decoding.get(key, 0) if decoding == "paper" else 0
        if args.progress_every and time.perf_counter() > deadline:
            deadline = _report(args.progress_every, sl.stop, len(split.users), started, decoding)
    recs = np.concatenate(lists)
    ranks = M.rank_from_list(recs, split.targets)
    return {"seconds": seconds, "users": len(recs), "lists": recs,
            "metrics": M.ranking_metrics(ranks, (1, 5, 10), (5, 10)),
            "validity": M.list_validity(recs, num_items),
            "dropped": dropped if decoding == "paper" else None}


def direct(model, split, items: np.ndarray, args, exact: bool) -> dict:
    """Ranks of the positive among each user's 100 candidates, and each user's top-1."""
    from mfmrec.evaluation import metrics as M

    seconds, ranks, top1 = 0.0, [], []
    for sl, users, hists in split.batches(args.batch_size):
        cands = torch.as_tensor(items[sl])  # (B, C)
        column = (items[sl] == split.targets[sl][:, None]).argmax(axis=1)  # (B,)
        tick = time.perf_counter()
        if exact:
            scores = model.score_candidates(users, hists, cands, prompt=args.direct_prompt)
            seconds += time.perf_counter() - tick
            ranks.append(M.rank_from_scores(scores, column))
            top1.append(items[sl][np.arange(len(column)), scores.argmax(1).numpy()])
        else:
            rec = model.recommend_candidates(users, hists, cands, k=args.k,
                                             prompt=args.direct_prompt)  # (B, k)
            seconds += time.perf_counter() - tick
            ranks.append(M.rank_from_list(rec, split.targets[sl]))
            top1.append(rec[:, 0].numpy())
    r = np.concatenate(ranks)
    return {"seconds": seconds, "users": len(r), "top1": np.concatenate(top1),
            "metrics": M.ranking_metrics(r, (1, 5, 10), (5, 10))}


def _fmt_metrics(m: dict) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in m.items())


def run(args: argparse.Namespace) -> dict:
    from mfmrec.evaluation.users import candidate_split, select_users
    from mfmrec.training.runs import load_run

    torch.set_num_threads(args.threads)
    methods = [m for m in METHODS if m in args.only.split(",")] if args.only else list(METHODS)
    results, loaded = {}, {}
    for name in methods:
        decoding = "paper" if name == "paper" else "constrained"
        if decoding not in loaded:  # the decoding is a model setting: load the run with it
            loaded[decoding] = load_run(args.run, args.data, overrides=[
                f"model.beams={args.beams}", f"model.decoding={decoding}"])
        model, dataset = loaded[decoding].model, loaded[decoding].dataset
        split = select_users(dataset, "test", args.users or None)
        torch.manual_seed(0)
        if name in ("paper", "trie"):
            results[name] = sequential(model, split, args, decoding, dataset.num_items)
        else:
            dsplit, items = candidate_split(dataset, split, "test")
            results[name] = direct(model, dsplit, items, args, exact=name == "direct-exact")
        r = results[name]
        r["users_per_s"] = r["users"] / r["seconds"]
        print(f"{name}: {r['users']} users in {r['seconds']:.1f} s "
              f"({r['users_per_s']:.2f} users/s)", file=sys.stderr, flush=True)
    return {"run": str(args.run), "dataset": dataset.name, "simulated": dataset.simulated,
            "num_items": dataset.num_items, "trie_depth": model.item_trie.max_depth,
            "vocab": len(model.tokenizer), "results": results}


def summary(out: dict, args: argparse.Namespace) -> str:
    res = out["results"]
    lines = [f"dataset {out['dataset']}{' (SIMULATED)' if out['simulated'] else ''}: "
             f"{out['num_items']} items, trie depth {out['trie_depth']}, vocabulary "
             f"{out['vocab']}; beams {args.beams}, batch {args.batch_size}, k {args.k}, "
             f"threads {args.threads}", "",
             "| method | users | seconds | users/s | ratio | metrics | notes |",
             "|---|---:|---:|---:|---:|---|---|"]
    base = {"paper": "paper", "trie": "paper", "direct-exact": "direct-beam",
            "direct-beam": "direct-beam"}
    for name, r in res.items():
        ref = res.get(base[name])
        ratio = f"{r['users_per_s'] / ref['users_per_s']:.2f}x {base[name]}" if ref else ""
        notes = ""
        if "validity" in r:
            notes = f"valid share {r['validity'].get('valid_share', float('nan')):.3f}"
        if r.get("dropped"):
            notes += f", dropped: {r['dropped']['invalid']} unparseable, " \
                     f"{r['dropped']['duplicates']} duplicates"
        lines.append(f"| {name} | {r['users']} | {r['seconds']:.1f} | {r['users_per_s']:.2f} "
                     f"| {ratio} | {_fmt_metrics(r['metrics'])} | {notes} |")
    if "direct-exact" in res and "direct-beam" in res:
        agree = float((res["direct-exact"]["top1"] == res["direct-beam"]["top1"]).mean())
        out["direct_top1_agreement"] = agree
        lines += ["", f"direct top-1 agreement (exact vs beam): {agree:.3f} of users"]
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="a trained VIP5 run directory (final/)")
    p.add_argument("--data", help="dataset directory (default: the one in run.json)")
    p.add_argument("--users", type=int, default=200, help="first N test users; 0 = all")
    p.add_argument("--batch-size", type=int, default=16, help="users per model call")
    p.add_argument("--beams", type=int, default=20)
    p.add_argument("--k", type=int, default=10, help="length of the generated lists")
    p.add_argument("--prompt", default="A-3", help="sequential prompt id")
    p.add_argument("--direct-prompt", default="B-5", help="direct prompt id")
    p.add_argument("--only", help=f"comma-separated subset of {', '.join(METHODS)}")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--progress-every", type=float, default=60.0,
                   help="seconds between progress lines on stderr (0: none)")
    p.add_argument("--json", help="also write the numbers here")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    out = run(args)
    print(summary(out, args))
    if args.json:
        for r in out["results"].values():
            r.pop("lists", None)
            r.pop("top1", None)
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), **out}, fh, indent=1, default=float)


if __name__ == "__main__":
    main()
