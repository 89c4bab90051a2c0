"""The ``eval:`` section of a run (:class:`EvalConfig`) and the prompt plan it implies.

Prompt ids map to tasks by their family letter (:data:`mfmrec.models.base.PROMPT_FAMILIES`:
``A-*`` sequential, ``B-*`` direct, ``C-*`` explanation); a ``{task: [ids]}`` mapping
sets them explicitly. ``"-"`` is the result key of a model used without prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mfmrec.config import check
from mfmrec.errors import ConfigError
from mfmrec.evaluation.metrics import HR_KS, NDCG_KS
from mfmrec.models.base import RATING, TASKS, task_of_prompt

SCORERS = ("exact", "beam")
NO_PROMPT = "-"


@dataclass
class EvalConfig:
    """How to evaluate: ``evaluate(model, dataset, EvalConfig(...))``."""

    tasks: list[str] | None = None  # tasks to evaluate; None = every task the model serves
    # prompt ids (A-*, B-*, C-*) or {task: [ids]}; None = each model's default prompt
    prompts: list[str] | dict[str, list[str]] | None = None
    split: str = "test"  # "test" or "valid"
    users: int | None = None  # first N users with a target; None = all
    batch_size: int = 64  # users (or explanation requests) per model call
    seed: int = 0  # torch seed, reset before every (task, prompt)
    exclude_history: bool = False  # full ranking: drop the user's history items
    # models that generate lists, on direct: "exact" (score the 100 candidates) or "beam"
    direct_scorer: str = "exact"
    # models that generate lists, on sequential: "beam" (their generated top-k) or "exact"
    # (full-catalogue log-likelihoods, comparable with score-based full ranking)
    sequential_scorer: str = "beam"
    keep_ranks: bool = False  # also return each user's rank of the target (0 = missed)
    hr_ks: list[int] = field(default_factory=lambda: list(HR_KS))  # HR cut-offs
    ndcg_ks: list[int] = field(default_factory=lambda: list(NDCG_KS))  # NDCG cut-offs

    def __post_init__(self) -> None:
        if self.tasks is not None:
            self.tasks = list(self.tasks)
            bad = [t for t in self.tasks if t not in TASKS]
            check(not bad and bool(self.tasks), "eval.tasks",
                  f"expected a non-empty subset of {', '.join(TASKS)}, got {self.tasks}")
        check(self.split in ("test", "valid"), "eval.split",
              f"expected test or valid, got {self.split!r}")
        check(self.users is None or self.users >= 1, "eval.users", "must be >= 1")
        check(self.batch_size >= 1, "eval.batch_size", "must be >= 1")
        for name in ("direct_scorer", "sequential_scorer"):
            value = getattr(self, name)
            check(value in SCORERS, f"eval.{name}", f"expected exact or beam, got {value!r}")
        self.hr_ks, self.ndcg_ks = list(self.hr_ks), list(self.ndcg_ks)
        check(all(k >= 1 for k in (*self.hr_ks, *self.ndcg_ks)) and bool(self.hr_ks),
              "eval.hr_ks", "cut-offs must be >= 1 (and hr_ks non-empty)")
        if self.prompts is not None:
            self.prompts = (self.prompts if isinstance(self.prompts, dict)
                            else list(self.prompts))
            try:
                prompt_plan(self.tasks or TASKS, self.prompts)
            except ConfigError as exc:
                raise ConfigError(f"config field eval.prompts: {exc}") from None

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
        plan[task_of_prompt(pid)].append(pid)
    return {t: plan[t] if plan[t] and t != RATING else [None] for t in tasks}


def prompt_key(prompt: str | None) -> str:
    return NO_PROMPT if prompt is None else str(prompt)
