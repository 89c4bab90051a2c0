"""The evaluator on a tiny SIMULATED dataset with fake models defined here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mfmrec.config import build, to_dict
from mfmrec.data import load_dataset
from mfmrec.data.raw import RawDataset
from mfmrec.data.writer import write_dataset
from mfmrec.errors import ConfigError, MfmrecError
from mfmrec.evaluation.config import EvalConfig, prompt_plan
from mfmrec.evaluation.evaluator import evaluate, recommend_top_k
from mfmrec.evaluation.users import explanation_requests
from mfmrec.models.base import GENERATED_LIST, Recommender

N_ITEMS, N_USERS = 24, 8
ALL = frozenset({"sequential", "direct", "explanation"})


def tiny_raw() -> RawDataset:
    """8 simulated users over 24 items; one review per interaction (SIMULATED)."""
    rng = np.random.default_rng(0)
    seqs = [rng.choice(N_ITEMS, size=int(rng.integers(4, 8)), replace=False).tolist()
            for _ in range(N_USERS)]
    cols = ("user", "item", "rating", "summary", "text", "explanation", "feature",
            "reviewer_name", "time")
    reviews: dict[str, list] = {c: [] for c in cols}
    for u, seq in enumerate(seqs):
        for t, i in enumerate(seq):
            row = (u, i, float(1 + i % 5), f"summary {i}", f"text {i}",
                   f"item {i} suits user {u} well", f"feature{i}", f"name {u}", t)
            for c, v in zip(cols, row, strict=True):
                reviews[c].append(v)
    return RawDataset(name="tiny", user_ids=[f"U{u}" for u in range(N_USERS)],
                      item_ids=[f"I{i}" for i in range(N_ITEMS)], sequences=seqs,
                      item_titles=[f"title {i}" for i in range(N_ITEMS)], reviews=reviews,
                      simulated=True)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "data"
    write_dataset(tiny_raw(), out, seed=3, num_negatives=12)  # 13 candidates per user
    return load_dataset(out)


class Oracle(Recommender):
    """Scores the split's target highest (``sign=-1``: lowest); never sees a prompt."""

    tasks = frozenset({"sequential", "direct"})

    def __init__(self, dataset, split="test", sign=1.0):
        super().__init__()
        users, _, targets = dataset.targets(split)
        self.target = dict(zip(users.tolist(), targets.tolist(), strict=True))
        self.sign = sign

    def score_items(self, users, histories, prompt=None):
        scores = torch.zeros(len(users), N_ITEMS)
        for row, u in enumerate(users.tolist()):
            scores[row, self.target[u]] = self.sign
        return scores  # (B, N)


class Duplicator(Oracle):
    """A 'generative' model whose lists repeat the target and contain an invalid id."""

    produces = GENERATED_LIST

    def recommend(self, users, histories, k, prompt=None):
        self.prompts_seen = getattr(self, "prompts_seen", []) + [prompt]
        rows = [[self.target[u], N_ITEMS + 3] + [self.target[u]] * (k - 2)
                for u in users.tolist()]
        return torch.tensor(rows)  # (B, k)

    def recommend_candidates(self, users, histories, candidates, k, prompt=None):
        # the positive (the target) always second, then the other candidates in order
        out = []
        for u, row in zip(users.tolist(), candidates.tolist(), strict=True):
            rest = [c for c in row if c != self.target[u]]
            out.append([rest[0], self.target[u], *rest[1:k - 1]])
        return torch.tensor(out)


class Echo(Recommender):
    """Explains with the reference text itself; records the prompts it was given."""

    tasks = frozenset({"explanation"})

    def __init__(self, dataset):
        super().__init__()
        r = dataset.reviews
        self.ref = {(u, i): e for u, i, e in zip(r.column("user").to_pylist(),
                                                 r.column("item").to_pylist(),
                                                 r.column("explanation").to_pylist(),
                                                 strict=True)}
        self.prompts_seen: list = []

    def explain(self, requests, prompt=None):
        self.prompts_seen.append(prompt)
        return [self.ref[(q["user"], q["item"])] for q in requests]


class HistoryLover(Recommender):
    """Scores history items above the target and the target above everything else."""

    tasks = frozenset({"sequential"})

    def __init__(self, dataset):
        super().__init__()
        users, _, targets = dataset.targets("test")
        self.target = dict(zip(users.tolist(), targets.tolist(), strict=True))

    def score_items(self, users, histories, prompt=None):
        scores = torch.zeros(len(users), N_ITEMS)
        for row, (u, h) in enumerate(zip(users.tolist(), histories, strict=True)):
            scores[row, h] = 2.0
            scores[row, self.target[u]] = 1.0
        return scores


class Noisy(Recommender):
    """Random scores from the global torch RNG: determinism comes from the seed."""

    tasks = frozenset({"sequential"})

    def score_items(self, users, histories, prompt=None):
        return torch.rand(len(users), N_ITEMS)


def _metrics(results, task, prompt="-"):
    return results["tasks"][task]["prompts"][prompt]


def test_oracle_is_perfect_and_reversed_gets_nothing(tiny):
    good = evaluate(Oracle(tiny), tiny, progress=False)
    n = len(tiny.targets("test")[0])
    for task in ("sequential", "direct"):
        m = _metrics(good, task)
        assert m["HR@1"] == 1.0 and m["NDCG@10"] == pytest.approx(1.0) and m["users"] == n
    assert set(good["tasks"]) == {"sequential", "direct"} and good["skipped"] == {}
    asked = evaluate(Oracle(tiny), tiny, EvalConfig(tasks=["sequential", "explanation"]),
                     progress=False)  # a task asked for but not declared is skipped
    assert asked["skipped"] == {"explanation": "model recommender does not support the "
                                               "explanation task"}
    assert "full ranking" in good["tasks"]["sequential"]["protocol"]
    bad = evaluate(Oracle(tiny, sign=-1.0), tiny, progress=False)
    for task in ("sequential", "direct"):
        m = _metrics(bad, task)
        assert m["HR@10"] == 0.0 and m["NDCG@10"] == 0.0
    assert bad["simulated"] is True and bad["split"] == "test"


def test_generated_lists_report_duplicates_and_invalid_ids(tiny):
    res = evaluate(Duplicator(tiny), tiny, EvalConfig(tasks=["sequential"]), progress=False)
    m = _metrics(res, "sequential")
    n = m["users"]
    # each list of 10: the target first, one invalid id, then 8 repeats of the target
    assert m["HR@1"] == 1.0
    assert (m["slots"], m["invalid"], m["duplicates"]) == (10 * n, n, 8 * n)
    assert m["valid_share"] == pytest.approx(0.1)
    assert res["tasks"]["sequential"]["protocol"] == "generated top-10 list"


def test_direct_beam_uses_recommend_candidates_and_prompts(tiny):
    model = Duplicator(tiny)
    res = evaluate(model,
                   tiny,
                   EvalConfig(tasks=["direct"], prompts=["B-5", "B-8"], direct_scorer="beam"),
                   progress=False)
    assert list(res["tasks"]["direct"]["prompts"]) == ["B-5", "B-8"]
    m = _metrics(res, "direct", "B-8")
    # the positive is always second: HR@1 = 0, HR@5 = 1, NDCG@5 = 1/log2(3)
    assert (m["HR@1"], m["HR@5"]) == (0.0, 1.0)
    assert m["NDCG@5"] == pytest.approx(1 / np.log2(3))
    assert m["valid_share"] == 1.0 and m["invalid"] == 0
    assert "constrained generation" in res["tasks"]["direct"]["protocol"]
    # a model that generates no lists is scored under "beam" too, and the report says so
    res = evaluate(Oracle(tiny),
                   tiny,
                   EvalConfig(tasks=["direct"], direct_scorer="beam"),
                   progress=False)
    assert "generates no lists" in res["tasks"]["direct"]["protocol"]
    assert _metrics(res, "direct")["HR@1"] == 1.0


def test_explanation_echo_scores_100_in_both_modes(tiny):
    model = Echo(tiny)
    res = evaluate(model, tiny, EvalConfig(prompts=["C-3", "C-12"]), progress=False)
    assert set(res["tasks"]) == {"explanation"} and res["skipped"] == {}
    assert model.prompts_seen[0] == "C-3" and "C-12" in model.prompts_seen
    requests, refs, _ = explanation_requests(tiny, "test")
    for prompt in ("C-3", "C-12"):
        m = _metrics(res, "explanation", prompt)
        assert m["requests"] == len(requests) > 0
        for mode in ("standard", "p5"):
            assert m[mode] == pytest.approx({"BLEU-4": 100.0, "ROUGE-1": 100.0,
                                             "ROUGE-2": 100.0, "ROUGE-L": 100.0})
        assert m["examples"][0]["generated"] == m["examples"][0]["reference"] == refs[0]
    assert set(requests[0]) == {"user", "item", "rating", "summary", "feature",
                                "reviewer_name"}


def test_prompts_reach_prompt_models_and_spare_id_models(tiny):
    # Oracle.score_items takes no prompt: a sequential prompt is simply not passed to it
    res = evaluate(Oracle(tiny),
                   tiny,
                   EvalConfig(tasks=["sequential"], prompts=["A-3"]),
                   progress=False)
    assert _metrics(res, "sequential", "A-3")["HR@1"] == 1.0
    model = Duplicator(tiny)
    evaluate(model,
             tiny,
             EvalConfig(tasks=["sequential"], prompts=["A-3", "A-9"]),
             progress=False)
    assert model.prompts_seen == ["A-3", "A-9"]  # one batch of 8 users per prompt


def test_history_exclusion(tiny):
    model = HistoryLover(tiny)
    users, hists, _ = tiny.targets("test")
    ranks_expected = np.array([len(set(h.tolist())) + 1 for h in hists])
    kept = evaluate(model, tiny, progress=False)
    assert _metrics(kept, "sequential")["HR@5"] == pytest.approx(np.mean(ranks_expected <= 5))
    dropped = evaluate(model, tiny, EvalConfig(exclude_history=True), progress=False)
    assert _metrics(dropped, "sequential")["HR@1"] == 1.0
    assert "history excluded" in dropped["tasks"]["sequential"]["protocol"]


def test_deterministic_for_a_seed_and_global_rng_untouched(tiny):
    model = Noisy()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = evaluate(model, tiny, EvalConfig(seed=5), progress=False)
    assert torch.equal(torch.get_rng_state(), before)
    again = evaluate(model, tiny, EvalConfig(seed=5), progress=False)
    other = evaluate(model, tiny, EvalConfig(seed=6), progress=False)
    assert _metrics(a, "sequential") == _metrics(again, "sequential")
    assert _metrics(a, "sequential") != _metrics(other, "sequential")


def test_user_selection_and_training_mode_restored(tiny):
    model = Oracle(tiny)
    model.train()
    res = evaluate(model, tiny, EvalConfig(users=3), progress=False)
    assert res["users"] == 3 and _metrics(res, "direct")["users"] == 3
    assert model.training
    first3 = tiny.targets("test")[0][:3]
    res = evaluate(Echo(tiny), tiny, users=first3, progress=False)
    requests, _, _ = explanation_requests(tiny, "test", first3)
    # only the reviews of those users: fewer than all test reviews, but some
    assert 0 < _metrics(res, "explanation")["requests"] == len(requests) < len(
        explanation_requests(tiny, "test")[0])
    assert {q["user"] for q in requests} <= set(first3.tolist())
    with pytest.raises(MfmrecError, match="unknown user index 99"):
        evaluate(model, tiny, users=[0, 99], progress=False)


def test_progress_bar_prints_rate(tiny):
    from io import StringIO

    from rich.console import Console

    buf = StringIO()
    evaluate(Oracle(tiny),
             tiny,
             EvalConfig(tasks=["sequential"]),
             console=Console(file=buf, width=120),
             progress=True)
    assert "sequential -" in buf.getvalue() and "users/s" in buf.getvalue()


def test_config_validation_and_prompt_plan():
    from mfmrec.models.base import PROMPT_FAMILIES
    from mfmrec.models.vip5.prompts.templates import FAMILIES

    assert FAMILIES is PROMPT_FAMILIES  # one task <-> family map
    assert prompt_plan(["sequential", "direct"], ["A-3", "A-9", "C-1"]) == {
        "sequential": ["A-3", "A-9"], "direct": [None]}
    assert prompt_plan(["direct"], {"direct": ["X"]}) == {"direct": ["X"]}
    with pytest.raises(ConfigError, match="Z-1"):
        prompt_plan(["sequential"], ["Z-1"])
    with pytest.raises(ConfigError, match="eval.tasks"):
        EvalConfig(tasks=["ranking"])
    with pytest.raises(ConfigError, match="eval.direct_scorer"):
        build(EvalConfig, {"direct_scorer": "greedy"}, prefix="eval.")
    with pytest.raises(ConfigError, match="unknown config key eval.topk"):
        build(EvalConfig, {"topk": 3}, prefix="eval.")
    cfg = build(EvalConfig, {"hr_ks": [1, 20], "users": 5}, prefix="eval.")
    assert cfg.list_length == 20 and to_dict(cfg)["users"] == 5


def test_wrong_output_shape_is_a_bug(tiny):
    class Short(Oracle):
        def score_items(self, users, histories, prompt=None):
            return torch.zeros(1, N_ITEMS)

    with pytest.raises(ValueError, match="rows"):
        evaluate(Short(tiny), tiny, EvalConfig(tasks=["sequential"]), progress=False)


def test_recommend_top_k(tiny):
    model = HistoryLover(tiny)
    users, hists, targets = tiny.targets("test")
    u, h = torch.as_tensor(users[:2]), [torch.as_tensor(x) for x in hists[:2]]
    top = recommend_top_k(model, u, h, k=1)
    assert top[:, 0].tolist() == targets[:2].tolist()
    with_history = recommend_top_k(model, u, h, k=3, exclude_history=False)
    assert set(with_history[0].tolist()) <= set(hists[0].tolist())
    dup = recommend_top_k(Duplicator(tiny), u, h, k=4)
    assert dup.shape == (2, 4) and dup[0, 0] == targets[0]


def test_valid_split_uses_valid_targets(tiny):
    res = evaluate(Oracle(tiny, split="valid"),
                   tiny,
                   EvalConfig(split="valid", users=100),
                   progress=False)
    assert res["split"] == "valid" and res["users"] == N_USERS  # N larger than available
    assert _metrics(res, "sequential")["HR@1"] == 1.0 and _metrics(res, "direct")["HR@1"] == 1.0
    # the test-split oracle is wrong about valid targets (different items)
    wrong = evaluate(Oracle(tiny, split="test"),
                     tiny,
                     EvalConfig(split="valid"),
                     progress=False)
    assert _metrics(wrong, "sequential")["HR@1"] == 0.0


class ScoringGenerator(Oracle):
    """A generator whose beam list is the top-10 of its own scores, except for user 0."""

    produces = GENERATED_LIST

    def score_items(self, users, histories, prompt=None):
        scores = torch.arange(N_ITEMS, dtype=torch.float32).repeat(len(users), 1) / N_ITEMS
        for row, u in enumerate(users.tolist()):
            scores[row, self.target[u]] = 2.0
        return scores  # (B, N)

    def recommend(self, users, histories, k, prompt=None):
        top = self.score_items(users, histories).topk(k, dim=1).indices
        top[users == 0] = torch.arange(k)  # one user's beam disagrees with its exact list
        return top


def test_exact_sequential_scorer_ranks_all_items_and_reports_beam_agreement(tiny):
    users, _, _ = tiny.targets("test")
    model = ScoringGenerator(tiny)
    beam = evaluate(model, tiny, EvalConfig(tasks=["sequential"]), progress=False)
    exact = evaluate(model,
                     tiny,
                     EvalConfig(tasks=["sequential"], sequential_scorer="exact", keep_ranks=True),
                     progress=False)
    section = exact["tasks"]["sequential"]
    assert "exact full-catalogue" in section["protocol"]
    assert "generated" in beam["tasks"]["sequential"]["protocol"]
    m = section["prompts"]["-"]
    assert m["HR@1"] == 1.0 and m["ranks"] == [1] * len(users)
    assert m["top10_agreement_with_beam"] == pytest.approx(1 - (users == 0).sum() / len(users))
    assert "ranks" not in beam["tasks"]["sequential"]["prompts"]["-"]
    with pytest.raises(ConfigError, match="eval.sequential_scorer"):
        build(EvalConfig, {"sequential_scorer": "greedy"}, prefix="eval.")


def test_popularity_scores_training_counts(tiny):
    from mfmrec.models.popularity import Popularity

    model = Popularity.from_dataset(tiny)
    counts = np.zeros(N_ITEMS)
    for seq in tiny.train_sequences:
        np.add.at(counts, seq, 1)
    scores = model.score_items(torch.arange(3), [torch.zeros(0, dtype=torch.long)] * 3)
    assert scores.shape == (3, N_ITEMS) and np.allclose(scores[1].numpy(), counts)
    res = evaluate(model,
                   tiny,
                   EvalConfig(tasks=["sequential", "direct"], exclude_history=True),
                   progress=False)
    assert set(res["tasks"]) == {"sequential", "direct"}


def test_report_names_the_exact_scorer_and_its_beam_agreement(tiny):
    from mfmrec.evaluation.report import render_markdown

    res = evaluate(ScoringGenerator(tiny),
                   tiny,
                   EvalConfig(tasks=["sequential"], sequential_scorer="exact"),
                   progress=False)
    text = render_markdown(res)
    assert "exact full-catalogue" in text and "top-10 = beam" in text


class Rater(Recommender):
    """Predicts every stored rating plus 0.5 for users 0-3, exactly for the others."""

    tasks = frozenset({"rating"})

    def __init__(self, dataset):
        super().__init__()
        r = dataset.reviews
        self.truth = {(u, i): x for u, i, x in zip(r.column("user").to_pylist(),
                                                   r.column("item").to_pylist(),
                                                   r.column("rating").to_pylist(), strict=True)}

    def predict_rating(self, users, items):
        return torch.tensor([self.truth[(u, i)] + (0.5 if u < 4 else 0.0)
                             for u, i in zip(users.tolist(), items.tolist(), strict=True)])


def test_rating_task_reports_rmse_and_mae_of_the_splits_ratings(tiny):
    from mfmrec.evaluation.report import render_markdown

    res = evaluate(Rater(tiny), tiny, progress=False)
    table = tiny.reviews_of("test")
    users = np.asarray(table.column("user").to_pylist())
    off = (users < 4).mean()  # share of test ratings predicted 0.5 too high
    m = _metrics(res, "rating")
    assert m["ratings"] == len(users) > 0
    assert m["mae"] == pytest.approx(0.5 * off) and m["rmse"] == pytest.approx(0.5 * off ** 0.5)
    assert "Rating prediction" in render_markdown(res) and "rmse" in render_markdown(res)
    only = evaluate(Rater(tiny), tiny, EvalConfig(users=2), progress=False)
    assert _metrics(only, "rating")["mae"] == pytest.approx(0.5)  # users 0 and 1 only
