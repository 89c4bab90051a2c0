"""Exact full-catalogue scoring vs beam search vs one teacher-forced pass per item.

A random T5 of a named preset (``tiny`` by default) and a catalogue of semantic item IDs:
``--items`` random (a, b, c) tuples of ``--codes`` codes per level, a dedup code where
tuples repeat, then eos -- five target tokens per item, one token each. ``--users`` users
with random ``--input-len``-token encoder inputs. Only decoding is timed (the encoder runs
once, before); all methods get the same encoder outputs, one CPU thread.

* ``exact``  -- :func:`mfmrec.models.vip5.catalogue.catalogue_scores`: every item's exact
  log-likelihood, the trie decoded level by level (each distinct prefix once per user);
* ``beam``   -- :func:`constrained_beam_search` with ``--beams`` beams (a top-k list only);
* ``naive``  -- :func:`teacher_forced_scores` with every item as a candidate,
  ``--naive-chunk`` candidates per call (its prefix-tree path; how 100-candidate scoring
  runs). Timed on the first ``--naive-items`` items and ``--naive-users`` users, then
  extrapolated linearly to the whole catalogue (printed as such).

Printed: seconds per user of each, the ratios, the largest |exact - naive| on the timed
items, and the share of users whose beam top-10 is the exact top-10.

Usage: python benchmarks/catalogue_speed.py [--preset tiny] [--base-vocab 32100]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from mfmrec.models.vip5.backbone import backbone_for
from mfmrec.models.vip5.catalogue import CatalogueTree, catalogue_scores, topk_agreement
from mfmrec.models.vip5.decoding import ItemTrie, constrained_beam_search, teacher_forced_scores

PAD, EOS = 0, 1


def catalogue(n_items: int, codes: int, first: int, seed: int) -> tuple[list[list[int]], int]:
    """Item target ids (a, b, c, dedup, eos) and the vocabulary size they need."""
    g = torch.Generator().manual_seed(seed)
    tuples = torch.randint(codes, (n_items, 3), generator=g).tolist()
    seen: dict[tuple, int] = {}
    items = []
    for a, b, c in tuples:
        dedup = seen.get((a, b, c), 0)
        seen[(a, b, c)] = dedup + 1
        items.append([first + a, first + codes + b, first + 2 * codes + c,
                      first + 3 * codes + dedup, EOS])
    return items, first + 3 * codes + max(seen.values())


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def encode(model, users: int, length: int, vocab: int, batch: int, seed: int):
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(2, vocab, (users, length), generator=g)
    mask = torch.ones_like(ids)
    with torch.no_grad():
        hidden = torch.cat([model.get_encoder()(input_ids=ids[lo:lo + batch],
                                                attention_mask=mask[lo:lo + batch])
                            .last_hidden_state for lo in range(0, users, batch)])
    return hidden, mask  # (U, L, d), (U, L)


def run_exact(model, hidden, mask, trie, args) -> tuple[torch.Tensor, float]:
    out, seconds = [], 0.0
    for lo in range(0, len(hidden), args.batch):
        scores, dt = timed(catalogue_scores, model, hidden[lo:lo + args.batch],
                           mask[lo:lo + args.batch], trie, decoder_start_token_id=PAD,
                           max_rows=args.max_rows)
        out.append(scores)
        seconds += dt
    return torch.cat(out), seconds


def run_beam(model, hidden, mask, trie, args) -> tuple[list[list[int]], float]:
    values, seconds = [], 0.0
    for lo in range(0, len(hidden), args.batch):
        result, dt = timed(constrained_beam_search, model, hidden[lo:lo + args.batch],
                           mask[lo:lo + args.batch], trie, args.beams,
                           decoder_start_token_id=PAD, eos_token_id=EOS, pad_token_id=PAD)
        values += result.values
        seconds += dt
    return values, seconds


def run_naive(model, hidden, mask, items, args) -> tuple[torch.Tensor, float]:
    """(u, n) teacher-forced scores of the first n items for the first u users."""
    users, n = min(args.naive_users, len(hidden)), min(args.naive_items, len(items))
    cands = torch.tensor(items[:n])  # (n, T)
    out, seconds = [], 0.0
    for lo in range(0, n, args.naive_chunk):
        chunk = cands[lo:lo + args.naive_chunk].expand(users, -1, -1)  # (u, C, T)
        scores, dt = timed(teacher_forced_scores, model, hidden[:users], mask[:users], chunk)
        out.append(scores)
        seconds += dt
    return torch.cat(out, dim=1), seconds


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=FutureWarning)
    items, vocab = catalogue(args.items, args.codes, args.base_vocab or 2, args.seed)
    model = backbone_for(args.preset, vocab, pad_token_id=PAD, eos_token_id=EOS,
                         seed=args.seed, dropout=0.0).eval()
    hidden, mask = encode(model, args.users, args.input_len, vocab, args.batch, args.seed)
    trie = ItemTrie(items)
    tree, build_s = timed(CatalogueTree.from_trie, trie)
    sizes = [lv.size for lv in tree.levels]
    print(f"preset {args.preset}, vocab {vocab}, {len(items)} items, {args.users} users x "
          f"{args.input_len} input tokens, {args.threads} thread(s); trie nodes decoded per "
          f"depth {sizes} = {sum(sizes)} (vs {5 * len(items)} item tokens); "
          f"tree built once in {build_s:.2f} s")
    exact, exact_s = run_exact(model, hidden, mask, tree, args)
    beams, beam_s = run_beam(model, hidden, mask, trie, args)
    naive, naive_s = run_naive(model, hidden, mask, items, args)
    report(args, exact, exact_s, beams, beam_s, naive, naive_s, len(items))


def report(args, exact, exact_s, beams, beam_s, naive, naive_s, n_items) -> None:
    users = len(exact)
    per_exact, per_beam = exact_s / users, beam_s / users
    per_naive = naive_s / naive.shape[0] * n_items / naive.shape[1]
    scope = (f"measured on {naive.shape[1]} items x {naive.shape[0]} users, extrapolated"
             if naive.shape[1] < n_items or naive.shape[0] < users else "measured")
    print(f"{'method':<8} {'s/user':>9} {'vs exact':>9}")
    print(f"{'exact':<8} {per_exact:9.3f} {1.0:9.2f}x  all {n_items} items, exact")
    print(f"{'beam':<8} {per_beam:9.3f} {per_beam / per_exact:9.3f}x  {args.beams} beams")
    print(f"{'naive':<8} {per_naive:9.3f} {per_naive / per_exact:9.2f}x  {scope}")
    diff = (exact[:naive.shape[0], :naive.shape[1]] - naive).abs().max().item()
    print(f"max |exact - naive| over the timed items: {diff:.2e}")
    top = [v[:10] for v in beams]
    if all(len(v) == 10 for v in top):
        share = topk_agreement(torch.tensor(top), exact.topk(10, dim=1).indices)
        print(f"users whose beam-{args.beams} top-10 set is the exact top-10: {share:.1%}")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="tiny", help="T5 preset (tiny, small, ...)")
    p.add_argument("--items", type=int, default=12_000)
    p.add_argument("--codes", type=int, default=256, help="codes per level")
    p.add_argument("--base-vocab", type=int, default=0,
                   help="tokens before the code tokens (32100: T5's tokenizer); 0: codes only")
    p.add_argument("--users", type=int, default=64)
    p.add_argument("--input-len", type=int, default=100)
    p.add_argument("--batch", type=int, default=16, help="users per call")
    p.add_argument("--beams", type=int, default=20)
    p.add_argument("--max-rows", type=int, default=1024, help="catalogue_scores chunk")
    p.add_argument("--naive-items", type=int, default=1000)
    p.add_argument("--naive-users", type=int, default=64)
    p.add_argument("--naive-chunk", type=int, default=100, help="candidates per call")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


if __name__ == "__main__":
    main()
