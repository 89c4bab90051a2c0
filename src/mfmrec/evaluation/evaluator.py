"""One evaluator for every model, through the Recommender contract's declarations only.

Tasks (each per prompt; ``"-"`` is the key of a model used without prompts):

* ``sequential`` — users with a target in the split. A model that declares
  ``produces = GENERATED_LIST`` (VIP5, TIGER) is judged on its generated list of
  ``max(k) >= 10`` items (audited: invalid ids and duplicates -> ``valid_share``; a target
  outside it is a miss) unless ``sequential_scorer="exact"``; every other model, and a
  generator under ``exact``, is ranked over **all items** with ``score_items``
  (optionally excluding the user's history; ties pessimistic, see ``metrics``).
* ``direct`` — the 100 frozen candidates of the split: ``score_candidates`` ranks the
  positive among them; with ``direct_scorer="beam"`` a list-generating model's
  ``recommend_candidates`` (constrained generation) is used instead.
* ``explanation`` — the split's reviews: ``explain`` -> BLEU-4 and ROUGE-1/2/L, both in
  ``standard`` and ``p5`` modes (see ``text_metrics``).
* ``rating`` — the split's star ratings: ``predict_rating`` -> RMSE and MAE.

``tasks`` default to every task the model declares. ``users=N`` (in the config) keeps
the first N users (by index) that have a target in the split; an explicit index array
may be passed to :func:`evaluate`. Every task is then restricted to those users
(explanation and rating: their reviews).
"""

from __future__ import annotations

import numpy as np
import torch
from rich.console import Console

from mfmrec.config import to_dict
from mfmrec.evaluation import metrics as M
from mfmrec.evaluation.config import EvalConfig, prompt_key, prompt_plan
from mfmrec.evaluation.report import make_progress
from mfmrec.evaluation.text_metrics import TEXT_MODES, text_metrics
from mfmrec.evaluation.users import (
    UserSplit,
    candidate_split,
    explanation_requests,
    rating_requests,
    select_users,
)
from mfmrec.models.base import (
    DIRECT,
    EXPLANATION,
    GENERATED_LIST,
    RATING,
    SEQUENTIAL,
    TASKS,
    Recommender,
)

N_EXAMPLES = 3


def _check_rows(out, batch: int, what: str) -> None:
    if out.shape[0] != batch:
        raise ValueError(f"{what} returned {out.shape[0]} rows for {batch} users")


def _per_prompt(bar, name: str, prompts, total: int, unit: str, seed: int, run) -> dict:
    """``{prompt key: run(prompt, advance)}``, each with its own bar and the same seed, so a
    prompt's result never depends on which prompts ran before it."""
    out = {}
    for prompt in prompts:
        tid = bar.add_task(f"{name} {prompt_key(prompt)}", total=total, unit=unit)
        torch.manual_seed(seed)
        out[prompt_key(prompt)] = run(prompt, lambda n, tid=tid: bar.advance(tid, n))
    return out


def _ranking_result(ranks: list[np.ndarray], cfg: EvalConfig) -> dict:
    r = np.concatenate(ranks) if ranks else np.zeros(0, dtype=np.int64)
    out = {**M.ranking_metrics(r, cfg.hr_ks, cfg.ndcg_ks), "users": int(r.size)}
    if cfg.keep_ranks:  # for paired comparisons (bootstrap) between models
        f = np.asarray(r, dtype=np.float64)
        out["ranks"] = np.where(np.isfinite(f) & (f >= 1), f, 0).astype(np.int64).tolist()
    return out


def _stack(lists: list[np.ndarray]) -> np.ndarray:
    """Pad short lists with -1: a missing slot counts as an invalid recommendation."""
    width = max(x.shape[1] for x in lists)
    return np.concatenate([np.pad(x, ((0, 0), (0, width - x.shape[1])), constant_values=-1)
                           for x in lists])


# ---- sequential -------------------------------------------------------------------------
def _beam_agreement(model, users, hists, scores, prompt) -> int:
    """How many users' exact top-k (k = 10) equal their beam top-k as sets."""
    k = min(10, scores.shape[1])
    beam = torch.as_tensor(model.recommend(users, hists, k=k, prompt=prompt)).cpu()
    exact = scores.topk(k, dim=1).indices.cpu()
    return int(sum(set(b.tolist()) == set(e.tolist()) for b, e in zip(beam, exact, strict=True)))


def _sequential_prompt(model, data: UserSplit, cfg: EvalConfig, prompt, num_items, advance):
    lists_made = model.produces == GENERATED_LIST
    generative = lists_made and cfg.sequential_scorer == "beam"
    ranks, lists, agree = [], [], 0
    for sl, users, hists in data.batches(cfg.batch_size):
        if generative:
            k = min(cfg.list_length, num_items)
            rec = torch.as_tensor(model.recommend(users, hists, k=k, prompt=prompt))  # (B, k)
            _check_rows(rec, len(users), "recommend")
            lists.append(rec.cpu().numpy())
            ranks.append(M.rank_from_list(rec, data.targets[sl]))
        else:
            scores = model.score_items(users, hists, prompt=prompt)  # (B, N)
            _check_rows(scores, len(users), "score_items")
            exclude = M.history_mask(hists, num_items).to(scores.device) \
                if cfg.exclude_history else None
            ranks.append(M.rank_from_scores(scores, data.targets[sl], exclude))
            if lists_made:  # exact scores of a generator: how often the beam agrees
                agree += _beam_agreement(model, users, hists, scores, prompt)
        advance(len(users))
    out = _ranking_result(ranks, cfg)
    if generative:
        out.update(M.list_validity(_stack(lists), num_items))
    elif lists_made:
        out["top10_agreement_with_beam"] = agree / max(1, len(data.users))
    return out


def _sequential(model, dataset, data: UserSplit, cfg, prompts, bar) -> dict:
    lists_made = model.produces == GENERATED_LIST
    generative = lists_made and cfg.sequential_scorer == "beam"
    protocol = (f"generated top-{cfg.list_length} list" if generative
                else "full ranking over all items" + (
                    " (exact full-catalogue log-likelihoods)" if lists_made else "")
                + (", history excluded" if cfg.exclude_history else ""))
    per_prompt = _per_prompt(bar, SEQUENTIAL, prompts, len(data.users), "users", cfg.seed,
                             lambda p, adv: _sequential_prompt(model, data, cfg, p,
                                                               dataset.num_items, adv))
    return {"protocol": protocol, "prompts": per_prompt}


# ---- direct -----------------------------------------------------------------------------
def _direct_prompt(model, data: UserSplit, items, cfg, prompt, use_beam, num_items, advance):
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


def _direct(model, dataset, data: UserSplit, cfg, prompts, bar) -> dict:
    cand_data, items = candidate_split(dataset, data, cfg.split)
    lists_made = model.produces == GENERATED_LIST
    use_beam = cfg.direct_scorer == "beam" and lists_made
    protocol = f"{items.shape[1]} stored candidates, " + (
        "constrained generation" if use_beam else "exact scores" + (
            " (the model generates no lists)" if cfg.direct_scorer == "beam" else ""))
    per_prompt = _per_prompt(bar, DIRECT, prompts, len(cand_data.users), "users", cfg.seed,
                             lambda p, adv: _direct_prompt(model, cand_data, items, cfg, p,
                                                           use_beam, dataset.num_items, adv))
    return {"protocol": protocol, "prompts": per_prompt}


# ---- explanation and rating -------------------------------------------------------------
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


def _explanation(model, dataset, data: UserSplit, cfg, prompts, bar, restrict) -> dict:
    requests, refs, skipped = explanation_requests(
        dataset, cfg.split, data.users if restrict else None)
    per_prompt = _per_prompt(bar, EXPLANATION, prompts, len(requests), "requests", cfg.seed,
                             lambda p, adv: _explain_prompt(model, requests, refs, cfg, p, adv))
    return {"protocol": f"{len(requests)} {cfg.split} reviews"
            + (f" ({skipped} without a reference skipped)" if skipped else ""),
            "prompts": per_prompt}


def _rating(model, dataset, data: UserSplit, cfg, bar, restrict) -> dict:
    users, items, truth = rating_requests(dataset, cfg.split, data.users if restrict else None)
    tid = bar.add_task(f"{RATING} -", total=len(users), unit="ratings")
    preds = []
    for lo in range(0, len(users), cfg.batch_size):
        sl = slice(lo, lo + cfg.batch_size)
        out = model.predict_rating(torch.as_tensor(users[sl]), torch.as_tensor(items[sl]))
        _check_rows(out, len(users[sl]), "predict_rating")
        preds.append(out.detach().float().cpu().numpy().reshape(-1))
        bar.advance(tid, len(users[sl]))
    err = np.concatenate(preds) - truth  # (R,)
    result = {"rmse": float(np.sqrt(np.mean(err ** 2))), "mae": float(np.mean(np.abs(err))),
              "ratings": int(err.size)}
    return {"protocol": f"{err.size} {cfg.split} star ratings", "prompts": {"-": result}}


# ---- entry points -----------------------------------------------------------------------
def _skip_reason(model, dataset, task: str, data: UserSplit, cfg: EvalConfig,
                 restrict: bool) -> str | None:
    if task not in model.tasks:
        return f"model {model.name} does not support the {task} task"
    if task in (EXPLANATION, RATING):
        if not dataset.has_reviews:
            return "dataset has no reviews"
        users = data.users if restrict else None
        found = (explanation_requests(dataset, cfg.split, users)[0] if task == EXPLANATION
                 else rating_requests(dataset, cfg.split, users)[0])
        return None if len(found) else f"no {cfg.split} reviews with a reference {task}"
    if not len(data.users):
        return f"no selected users with a {cfg.split} target"
    return None


def evaluate(model: Recommender, dataset, cfg: EvalConfig | None = None, *,
             users=None, progress: bool = True, console: Console | None = None) -> dict:
    """Evaluate ``model`` on ``dataset`` as ``cfg`` says; returns the JSON-ready results.

    ``users`` (an index array) overrides ``cfg.users`` with an explicit set of users.
    Unsupported tasks are listed under ``"skipped"`` with the reason.
    """
    cfg = cfg or EvalConfig()
    tasks = cfg.tasks or [t for t in TASKS if t in model.tasks]
    chosen = cfg.users if users is None else users
    plan = prompt_plan(tasks, cfg.prompts)
    data = select_users(dataset, cfg.split, chosen)
    restrict = chosen is not None
    results = _header(model, dataset, cfg, len(data.users))
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(), torch.no_grad(), make_progress(progress, console) as bar:
            for task in tasks:
                outcome = _run_task(model, dataset, task, data, cfg, plan[task], bar, restrict)
                kind = "skipped" if isinstance(outcome, str) else "tasks"
                results[kind][task] = outcome
    finally:
        model.train(was_training)
    return results


def _run_task(model, dataset, task, data, cfg, prompts, bar, restrict) -> dict | str:
    """The task's results, or the reason it was skipped."""
    reason = _skip_reason(model, dataset, task, data, cfg, restrict)
    if reason is not None:
        return reason
    if task == EXPLANATION:
        return _explanation(model, dataset, data, cfg, prompts, bar, restrict)
    if task == RATING:
        return _rating(model, dataset, data, cfg, bar, restrict)
    runner = _sequential if task == SEQUENTIAL else _direct
    return runner(model, dataset, data, cfg, prompts, bar)


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
    return recommend_scored(model, users, histories, k, prompt, exclude_history)[0]


def recommend_scored(model: Recommender, users: torch.Tensor, histories: list[torch.Tensor],
                     k: int, prompt: str | None = None, exclude_history: bool = True
                     ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`recommend_top_k` with the scores: ((B, k) items, (B, k) float64 scores).

    A score-based model's scores are its ``score_items`` values; a list-generating model
    (beam search) exposes no score per item through the contract, so its scores are NaN.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if model.produces == GENERATED_LIST:
                items = torch.as_tensor(model.recommend(users, histories, k=k, prompt=prompt)
                                        ).cpu().numpy()
                return items, np.full(items.shape, np.nan)
            scores = model.score_items(users, histories, prompt=prompt).float()  # (B, N)
            if exclude_history:
                mask = M.history_mask(histories, scores.shape[1]).to(scores.device)
                scores = scores.masked_fill(mask, float("-inf"))
            top = scores.topk(min(k, scores.shape[1]), dim=1)
            return top.indices.cpu().numpy(), top.values.double().cpu().numpy()
    finally:
        model.train(was_training)
