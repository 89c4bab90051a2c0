"""One evaluator for every model, through the Recommender contract only.

Tasks (each per prompt; ``"-"`` is the key of a model used without prompts):

* ``sequential`` — users with a target in the split. A model that overrides
  ``recommend`` (generative, e.g. VIP5) returns a ranked list of ``max(k) >= 10`` items;
  the list is audited (invalid ids, duplicates -> ``valid_share``) and a target outside
  it is a miss. Any other model is ranked over **all items** with ``score_items``
  (optionally excluding the user's history; ties pessimistic, see ``metrics``).
* ``direct`` — the 100 frozen candidates of the split: ``score_candidates`` ranks the
  positive among them; with ``direct_scorer="beam"`` a model's ``recommend_candidates``
  (constrained generation) is used when it has one, otherwise it falls back to scores.
* ``explanation`` — the split's reviews: ``explain`` -> BLEU-4 and ROUGE-1/2/L, both in
  ``standard`` and ``p5`` modes (see ``text_metrics``).

Prompt ids map to tasks by family letter: ``A-*`` sequential, ``B-*`` direct, ``C-*``
explanation (the VIP5 tables); a ``{task: [ids]}`` dict sets them explicitly.
``users=N`` keeps the first N users (by index) that have a target in the split; every
task is restricted to those users (explanation: their reviews).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from rich.console import Console

from mfmrec.config import check, to_dict
from mfmrec.errors import ConfigError, MfmrecError
from mfmrec.evaluation import metrics as M
from mfmrec.evaluation.metrics import HR_KS, NDCG_KS
from mfmrec.evaluation.report import make_progress
from mfmrec.evaluation.text_metrics import TEXT_MODES, text_metrics
from mfmrec.models.base import DIRECT, EXPLANATION, SEQUENTIAL, Recommender

TASKS = (SEQUENTIAL, DIRECT, EXPLANATION)
# the paper's families, as in mfmrec.models.vip5.prompts.templates.FAMILIES (not imported: that
# package pulls in the tokenizer stack, which scoring models never need)
PROMPT_FAMILIES = {"A": SEQUENTIAL, "B": DIRECT, "C": EXPLANATION}
NO_PROMPT = "-"
N_EXAMPLES = 3


@dataclass
class EvalConfig:
    """The ``eval:`` section of a run config; ``evaluate(model, ds, **to_dict(cfg))``."""

    tasks: list[str] = field(default_factory=lambda: list(TASKS))  # tasks to evaluate
    prompts: list[str] | None = None  # prompt ids (A-*, B-*, C-*); None = model default
    split: str = "test"  # "test" or "valid"
    users: int | None = None  # first N users with a target; None = all
    batch_size: int = 64  # users (or explanation requests) per model call
    seed: int = 0  # torch seed, reset before every (task, prompt)
    exclude_history: bool = False  # full ranking: drop the user's history items
    direct_scorer: str = "exact"  # "exact" (score 100 candidates) or "beam"
    # generative models on sequential: "beam" (their generated top-k list) or "exact"
    # (full-catalogue log-likelihoods, comparable with score-based full ranking)
    sequential_scorer: str = "beam"
    keep_ranks: bool = False  # also return each user's rank of the target (0 = missed)
    hr_ks: list[int] = field(default_factory=lambda: list(HR_KS))  # HR cut-offs
    ndcg_ks: list[int] = field(default_factory=lambda: list(NDCG_KS))  # NDCG cut-offs

    def __post_init__(self) -> None:
        self.tasks = list(self.tasks)
        bad = [t for t in self.tasks if t not in TASKS]
        check(not bad and bool(self.tasks), "eval.tasks",
              f"expected a non-empty subset of {', '.join(TASKS)}, got {self.tasks}")
        check(self.split in ("test", "valid"), "eval.split",
              f"expected test or valid, got {self.split!r}")
        check(self.users is None or self.users >= 1, "eval.users", "must be >= 1")
        check(self.batch_size >= 1, "eval.batch_size", "must be >= 1")
        check(self.direct_scorer in ("exact", "beam"), "eval.direct_scorer",
              f"expected exact or beam, got {self.direct_scorer!r}")
        check(self.sequential_scorer in ("exact", "beam"), "eval.sequential_scorer",
              f"expected exact or beam, got {self.sequential_scorer!r}")
        check(all(k >= 1 for k in (*self.hr_ks, *self.ndcg_ks)) and bool(self.hr_ks),
              "eval.hr_ks", "cut-offs must be >= 1 (and hr_ks non-empty)")
        if self.prompts is not None:
            self.prompts = list(self.prompts)
            prompt_plan(self.tasks, self.prompts)  # validates the families

    @property
    def list_length(self) -> int:
        """Length of generated lists: the largest cut-off, at least 10."""
        return max(10, *self.hr_ks, *self.ndcg_ks)


def prompt_plan(tasks: Sequence[str], prompts) -> dict[str, list[str | None]]:
    """``{task: [prompt ids]}``; ``[None]`` where no prompt applies to a task."""
    if isinstance(prompts, dict):
        unknown = [t for t in prompts if t not in TASKS]
        if unknown:
            raise ConfigError(f"prompts: unknown task {unknown[0]!r}")
        return {t: list(prompts.get(t) or [None]) for t in tasks}
    plan: dict[str, list[str | None]] = {t: [] for t in TASKS}
    for pid in prompts or []:
        task = PROMPT_FAMILIES.get(str(pid).split("-")[0].upper())
        if task is None:
            raise ConfigError(f"prompt {pid!r}: unknown family (expected A-* sequential, "
                              "B-* direct or C-* explanation)")
        plan[task].append(pid)
    return {t: plan[t] or [None] for t in tasks}


def overrides(model: Recommender, method: str) -> bool:
    """Whether the model's class replaces the contract's default ``method``."""
    return getattr(type(model), method, None) is not getattr(Recommender, method, None)


@dataclass
class _Split:
    """Users with a target in the split, restricted to the selected users."""

    users: np.ndarray  # (U,) int64
    histories: list[np.ndarray]
    targets: np.ndarray  # (U,) int64

    def batches(self, size: int) -> Iterator[tuple[slice, torch.Tensor, list[torch.Tensor]]]:
        for lo in range(0, len(self.users), size):
            sl = slice(lo, lo + size)
            yield (sl, torch.as_tensor(self.users[sl]),
                   [torch.as_tensor(h, dtype=torch.long) for h in self.histories[sl]])


def select_users(dataset, split: str, users=None) -> _Split:
    """The split's target users, optionally the first N or an explicit index array."""
    all_users, hists, targets = dataset.targets(split)
    if users is None:
        keep = np.ones(len(all_users), dtype=bool)
    elif isinstance(users, (int, np.integer)):
        if users < 1:
            raise ConfigError(f"users: expected N >= 1, got {users}")
        keep = np.arange(len(all_users)) < users
    else:
        chosen = np.asarray(users, dtype=np.int64).reshape(-1)
        bad = chosen[(chosen < 0) | (chosen >= dataset.num_users)]
        if bad.size:
            raise MfmrecError(f"users: unknown user index {int(bad[0])} "
                              f"(dataset has {dataset.num_users} users)")
        keep = np.isin(all_users, chosen)
    idx = np.flatnonzero(keep)
    return _Split(all_users[idx], [hists[i] for i in idx], targets[idx])


def _prompt_key(prompt: str | None) -> str:
    return NO_PROMPT if prompt is None else str(prompt)


def _score_items(model, users, histories, prompt):
    """``score_items`` has no ``prompt`` in the contract: pass it only to models that take it
    (a prompt given to an ID-based model is ignored, as for the other methods)."""
    takes = "prompt" in inspect.signature(model.score_items).parameters
    return model.score_items(users, histories, **({"prompt": prompt} if takes else {}))


def _check_rows(out, batch: int, what: str) -> None:
    if out.shape[0] != batch:
        raise ValueError(f"{what} returned {out.shape[0]} rows for {batch} users")


# ---- sequential -------------------------------------------------------------------------
def _per_prompt(bar, name: str, prompts, total: int, unit: str, seed: int, run) -> dict:
    """``{prompt key: run(prompt, advance)}``, each with its own bar and the same seed, so a
    prompt's result never depends on which prompts ran before it."""
    out = {}
    for prompt in prompts:
        tid = bar.add_task(f"{name} {_prompt_key(prompt)}", total=total, unit=unit)
        torch.manual_seed(seed)
        out[_prompt_key(prompt)] = run(prompt, lambda n, tid=tid: bar.advance(tid, n))
    return out


def _generates(model, cfg: EvalConfig) -> bool:
    """Whether sequential ranking reads the model's generated list (not scores)."""
    return overrides(model, "recommend") and cfg.sequential_scorer == "beam"


def _beam_agreement(model, users, hists, scores, cfg, prompt) -> int:
    """How many users' exact top-k (k = 10) equal their beam top-k as sets."""
    k = min(10, scores.shape[1])
    beam = torch.as_tensor(model.recommend(users, hists, k=k, prompt=prompt)).cpu()
    exact = scores.topk(k, dim=1).indices.cpu()
    return int(sum(set(b.tolist()) == set(e.tolist()) for b, e in zip(beam, exact, strict=True)))


def _sequential_prompt(model, data: _Split, cfg: EvalConfig, prompt, num_items, advance):
    generative = _generates(model, cfg)
    compare = overrides(model, "recommend") and not generative  # exact scores of a generator
    ranks, lists, agree = [], [], 0
    for sl, users, hists in data.batches(cfg.batch_size):
        if generative:
            k = min(cfg.list_length, num_items)
            rec = torch.as_tensor(model.recommend(users, hists, k=k, prompt=prompt))  # (B, k)
            _check_rows(rec, len(users), "recommend")
            lists.append(rec.cpu().numpy())
            ranks.append(M.rank_from_list(rec, data.targets[sl]))
        else:
            scores = _score_items(model, users, hists, prompt)  # (B, N)
            _check_rows(scores, len(users), "score_items")
            exclude = M.history_mask(hists, num_items).to(scores.device) \
                if cfg.exclude_history else None
            ranks.append(M.rank_from_scores(scores, data.targets[sl], exclude))
            if compare:
                agree += _beam_agreement(model, users, hists, scores, cfg, prompt)
        advance(len(users))
    out = _ranking_result(ranks, cfg)
    if generative:
        out.update(M.list_validity(_stack(lists), num_items))
    if compare:
        out["top10_agreement_with_beam"] = agree / max(1, len(data.users))
    return out


def _stack(lists: list[np.ndarray]) -> np.ndarray:
    """Pad short lists with -1: a missing slot counts as an invalid recommendation."""
    width = max(x.shape[1] for x in lists)
    return np.concatenate([np.pad(x, ((0, 0), (0, width - x.shape[1])), constant_values=-1)
                           for x in lists])


def _ranking_result(ranks: list[np.ndarray], cfg: EvalConfig) -> dict:
    r = np.concatenate(ranks) if ranks else np.zeros(0, dtype=np.int64)
    out = {**M.ranking_metrics(r, cfg.hr_ks, cfg.ndcg_ks), "users": int(r.size)}
    if cfg.keep_ranks:  # for paired comparisons (bootstrap) between models
        f = np.asarray(r, dtype=np.float64)
        out["ranks"] = np.where(np.isfinite(f) & (f >= 1), f, 0).astype(np.int64).tolist()
    return out


def _sequential(model, dataset, data: _Split, cfg, prompts, bar) -> dict:
    generative = _generates(model, cfg)
    exact = overrides(model, "recommend") and not generative
    protocol = (f"generated top-{cfg.list_length} list" if generative
                else "full ranking over all items" + (
                    " (exact full-catalogue log-likelihoods)" if exact else "")
                + (", history excluded" if cfg.exclude_history else ""))
    per_prompt = _per_prompt(bar, SEQUENTIAL, prompts, len(data.users), "users", cfg.seed,
                             lambda p, adv: _sequential_prompt(model, data, cfg, p,
                                                               dataset.num_items, adv))
    return {"protocol": protocol, "prompts": per_prompt}


# ---- direct -----------------------------------------------------------------------------
def _direct_data(dataset, data: _Split, split: str):
    cands = dataset.candidates(split)
    hist_of = dict(zip(data.users.tolist(), data.histories, strict=True))
    rows = np.flatnonzero(np.isin(cands.users, data.users))
    users, items, pos = cands.users[rows], cands.items[rows], cands.positives[rows]
    return _Split(users, [hist_of[int(u)] for u in users], pos), items


def _direct_prompt(model, data: _Split, items, cfg, prompt, use_beam, num_items, advance):
    ranks, lists, allowed = [], [], []
    for sl, users, hists in data.batches(cfg.batch_size):
        cands = torch.as_tensor(items[sl])  # (B, C)
        if use_beam:
            k = min(cfg.list_length, cands.shape[1])
            rec = torch.as_tensor(model.recommend_candidates(
                users, hists, cands, k=k, prompt=prompt))  # (B, k)
            _check_rows(rec, len(users), "recommend_candidates")
            lists.append(rec.cpu().numpy())
            allowed.append(items[sl])
            ranks.append(M.rank_from_list(rec, data.targets[sl]))
        else:
            scores = model.score_candidates(users, hists, cands, prompt=prompt)  # (B, C)
            _check_rows(scores, len(users), "score_candidates")
            column = (items[sl] == data.targets[sl][:, None]).argmax(axis=1)  # (B,)
            ranks.append(M.rank_from_scores(scores, column))
        advance(len(users))
    out = _ranking_result(ranks, cfg)
    if use_beam and lists:
        out.update(M.list_validity(_stack(lists), num_items, allowed=np.concatenate(allowed)))
    return out


def _direct(model, dataset, data: _Split, cfg, prompts, bar) -> dict:
    cand_data, items = _direct_data(dataset, data, cfg.split)
    has_beam = callable(getattr(model, "recommend_candidates", None))
    use_beam = cfg.direct_scorer == "beam" and has_beam
    protocol = f"{items.shape[1]} stored candidates, " + (
        "constrained generation" if use_beam else "exact scores" + (
            " (model has no recommend_candidates)" if cfg.direct_scorer == "beam" else ""))
    per_prompt = _per_prompt(bar, DIRECT, prompts, len(cand_data.users), "users", cfg.seed,
                             lambda p, adv: _direct_prompt(model, cand_data, items, cfg, p,
                                                           use_beam, dataset.num_items, adv))
    return {"protocol": protocol, "prompts": per_prompt}


# ---- explanation ------------------------------------------------------------------------
REQUEST_FIELDS = ("user", "item", "rating", "summary", "feature", "reviewer_name")


def explanation_requests(dataset, split: str, users: np.ndarray | None = None):
    """(requests, references, skipped) of the split's reviews that have a reference."""
    table = dataset.reviews_of(split)
    cols = {c: table.column(c).to_pylist() for c in (*REQUEST_FIELDS, "explanation")}
    wanted = None if users is None else set(users.tolist())
    requests, refs, skipped = [], [], 0
    for i, ref in enumerate(cols["explanation"]):
        if wanted is not None and cols["user"][i] not in wanted:
            continue
        if not ref or not ref.strip():
            skipped += 1
            continue
        requests.append({c: cols[c][i] for c in REQUEST_FIELDS})
        refs.append(ref)
    return requests, refs, skipped


def _explain_prompt(model, requests, refs, cfg, prompt, advance) -> dict:
    hyps: list[str] = []
    for lo in range(0, len(requests), cfg.batch_size):
        chunk = requests[lo: lo + cfg.batch_size]
        out = list(model.explain(chunk, prompt=prompt))
        if len(out) != len(chunk) or not all(isinstance(x, str) for x in out):
            raise ValueError(f"explain must return {len(chunk)} strings, got {out[:3]!r}...")
        hyps.extend(out)
        advance(len(chunk))
    result: dict = {mode: text_metrics(hyps, refs, mode) for mode in TEXT_MODES}
    result["requests"] = len(requests)
    result["examples"] = [{"reference": r, "generated": h}
                          for r, h in zip(refs[:N_EXAMPLES], hyps[:N_EXAMPLES], strict=True)]
    return result


def _explanation(model, dataset, data: _Split, cfg, prompts, bar, restrict) -> dict:
    requests, refs, skipped = explanation_requests(
        dataset, cfg.split, data.users if restrict else None)
    per_prompt = _per_prompt(bar, EXPLANATION, prompts, len(requests), "requests", cfg.seed,
                             lambda p, adv: _explain_prompt(model, requests, refs, cfg, p, adv))
    return {"protocol": f"{len(requests)} {cfg.split} reviews"
            + (f" ({skipped} without a reference skipped)" if skipped else ""),
            "prompts": per_prompt}


# ---- entry points -----------------------------------------------------------------------
def _skip_reason(model, dataset, task: str, data: _Split, cfg: EvalConfig,
                 restrict: bool) -> str | None:
    if task not in model.tasks:
        return f"model {model.name} does not support the {task} task"
    if task == EXPLANATION:
        if not dataset.has_reviews:
            return "dataset has no reviews"
        requests, _, _ = explanation_requests(
            dataset, cfg.split, data.users if restrict else None)
        return None if requests else f"no {cfg.split} reviews with a reference explanation"
    if not len(data.users):
        return f"no selected users with a {cfg.split} target"
    return None


def evaluate(
    model: Recommender, dataset, tasks: Sequence[str] = TASKS, split: str = "test",
    prompts=None, users=None, batch_size: int = 64, seed: int = 0,
    exclude_history: bool = False, direct_scorer: str = "exact", progress: bool = True,
    sequential_scorer: str = "beam", keep_ranks: bool = False,
    hr_ks: Sequence[int] = HR_KS, ndcg_ks: Sequence[int] = NDCG_KS,
    console: Console | None = None,
) -> dict:
    """Evaluate ``model`` on ``dataset``; returns the JSON-ready results dict.

    ``prompts``: list of ids (mapped to tasks by family letter) or ``{task: [ids]}``;
    ``users``: None (all), N (the first N users with a split target) or an index array.
    Unsupported tasks are listed under ``"skipped"`` with the reason.
    """
    n_users = users if users is None or isinstance(users, (int, np.integer)) else None
    cfg = EvalConfig(tasks=list(tasks), prompts=None, split=split, users=n_users,
                     batch_size=batch_size, seed=seed, exclude_history=exclude_history,
                     direct_scorer=direct_scorer, sequential_scorer=sequential_scorer,
                     keep_ranks=keep_ranks,
                     hr_ks=list(hr_ks), ndcg_ks=list(ndcg_ks))
    plan = prompt_plan(cfg.tasks, prompts)
    data = select_users(dataset, split, users)
    restrict = users is not None
    results = _header(model, dataset, cfg, len(data.users))
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(), torch.no_grad(), make_progress(progress, console) as bar:
            for task in cfg.tasks:
                reason = _skip_reason(model, dataset, task, data, cfg, restrict)
                if reason is not None:
                    results["skipped"][task] = reason
                elif task == EXPLANATION:
                    results["tasks"][task] = _explanation(model, dataset, data, cfg,
                                                          plan[task], bar, restrict)
                else:
                    runner = _sequential if task == SEQUENTIAL else _direct
                    results["tasks"][task] = runner(model, dataset, data, cfg, plan[task], bar)
    finally:
        model.train(was_training)
    return results


def _header(model, dataset, cfg: EvalConfig, n_users: int) -> dict:
    return {
        "model": model.name, "dataset": dataset.name, "simulated": dataset.simulated,
        "split": cfg.split, "num_items": dataset.num_items, "users": n_users,
        "settings": {**{k: v for k, v in to_dict(cfg).items()
                        if k not in ("tasks", "prompts", "split", "users")},
                     "ties": "pessimistic (target ranked after equal scores)"},
        "tasks": {}, "skipped": {},
    }


def recommend_top_k(model: Recommender, users: torch.Tensor, histories: list[torch.Tensor],
                    k: int, prompt: str | None = None, exclude_history: bool = True
                    ) -> np.ndarray:
    """(B, k) items for users, best first: the model's own list when it generates one,
    else the top-k of ``score_items`` (history items removed when ``exclude_history``)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if overrides(model, "recommend"):
                return torch.as_tensor(model.recommend(users, histories, k=k, prompt=prompt)
                                       ).cpu().numpy()
            scores = _score_items(model, users, histories, prompt).float()  # (B, N)
            if exclude_history:
                mask = M.history_mask(histories, scores.shape[1]).to(scores.device)
                scores = scores.masked_fill(mask, float("-inf"))
            return scores.topk(min(k, scores.shape[1]), dim=1).indices.cpu().numpy()
    finally:
        model.train(was_training)
