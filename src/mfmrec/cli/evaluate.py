"""``mfmrec evaluate | recommend | explain | report``: use a trained run directory.

Users and items are named by their **external ids** (reviewer ids, ASINs) as stored in
the dataset; ``#N`` names the internal index ``N`` instead (``--user '#0'``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from mfmrec.errors import MfmrecError

RUN_DIR = typer.Argument(..., help="A run directory written by `mfmrec train`.")
DATA = typer.Option(None, "--data", help="Dataset directory (default: the one recorded in "
                    "RUN_DIR/run.json).")
PROMPT = typer.Option(None, "--prompt", help="Prompt id for prompt-based models (e.g. A-3, "
                      "C-12); default: the model's own.")
ALLOW = typer.Option(False, "--allow-changed-data", help="Use the run even if its dataset "
                     "changed since training (default: refuse, naming the changed files).")
USER_HELP = "User: external id (e.g. a reviewer id) or #INDEX for the internal index."


def _load(run_dir: Path, data: Path | None, allow_changed_data: bool = False):
    from mfmrec.training.runs import load_run  # lazy: pulls in torch and the registry

    run = load_run(run_dir, data, allow_changed_data=allow_changed_data)
    if run.weights != "final":  # an unfinished run: say which weights are used
        typer.echo(f"note: {Path(run_dir) / 'final'} missing (the run did not finish); "
                   f"using the latest checkpoint, {run.weights}", err=True)
    return run


def resolve_index(text: str, ids: list[str], index: dict[str, int], what: str) -> int:
    """External id -> internal index; ``#N`` is the internal index N itself."""
    if text.startswith("#"):
        try:
            idx = int(text[1:])
        except ValueError:
            raise MfmrecError(f"--{what}: {text!r} is not #INDEX with an integer INDEX") from None
        if not 0 <= idx < len(ids):
            raise MfmrecError(f"--{what}: index {text} out of range (0..{len(ids) - 1})")
        return idx
    if text not in index:
        raise MfmrecError(f"--{what}: unknown {what} id {text!r} (use an id from the dataset, "
                          f"or #INDEX for an internal index)")
    return index[text]


def _csv(text: str | None) -> list[str] | None:
    return None if text is None else [x.strip() for x in text.split(",") if x.strip()]


def _eval_config(run, **flags):
    """The run config's ``eval:`` section, with the flags given on the command line."""
    given = {k: v for k, v in flags.items() if v is not None}
    return dataclasses.replace(run.config.eval, **given)  # validated again


def evaluate_cmd(
    run_dir: Path = RUN_DIR, data: Path = DATA,
    tasks: str = typer.Option(None, "--tasks", help="Comma-separated subset of sequential,"
                              "direct,explanation (default: all; unsupported ones are skipped)."),
    prompts: str = typer.Option(None, "--prompts", help="Comma-separated prompt ids, mapped to "
                                "tasks by family: A-* sequential, B-* direct, C-* explanation."),
    split: str = typer.Option(None, "--split", help="test (default) or valid."),
    users: int = typer.Option(None, "--users", help="Evaluate only the first N users."),
    direct_scorer: str = typer.Option(None, "--direct-scorer", help="exact (score the 100 "
                                      "candidates) or beam (constrained generation)."),
    sequential_scorer: str = typer.Option(
        None, "--sequential-scorer", help="Generative models on sequential prompts: beam "
        "(their generated top-k, the default) or exact (log-likelihood of every item: full "
        "ranking comparable with SASRec's; reports the top-10 agreement with beam)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Users per model call."),
    seed: int = typer.Option(None, "--seed", help="Seed of any sampling during evaluation."),
    exclude_history: bool = typer.Option(None, "--exclude-history/--keep-history",
                                         help="Full ranking: drop items the user already has."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    allow_changed_data: bool = ALLOW,
) -> None:
    """Evaluate a trained run; writes RUN_DIR/eval/<split>.json and .md and prints the tables.

    Defaults come from the run config's `eval:` section; flags override it.
    """
    from mfmrec.evaluation.evaluator import evaluate  # lazy: torch, ~1.4 s; keeps --help fast
    from mfmrec.evaluation.report import print_report, write_report  # lazy: torch, ~1.4 s

    run = _load(run_dir, data, allow_changed_data)
    cfg = _eval_config(run, tasks=_csv(tasks), prompts=_csv(prompts), split=split,
                       users=users, direct_scorer=direct_scorer,
                       sequential_scorer=sequential_scorer, batch_size=batch_size,
                       seed=seed, exclude_history=exclude_history)
    console = Console()
    results = evaluate(run.model, run.dataset, cfg, progress=not quiet, console=console)
    results["weights"] = run.weights  # "final" or "step N"
    json_path, md_path = write_report(run_dir, cfg.split, results)
    print_report(results, console)
    console.print(f"wrote {json_path} and {md_path}")


def _one_user_table(run, user: str, k: int, prompt: str | None, include_seen: bool) -> Table:
    import torch  # lazy: torch, ~1.4 s; keeps --help fast

    from mfmrec.evaluation.evaluator import recommend_top_k  # lazy: torch, ~1.4 s

    ds = run.dataset
    u = resolve_index(user, ds.user_ids, ds.user_index, "user")
    if "sequential" not in run.model.tasks:
        raise MfmrecError(f"model {run.model.name} does not recommend items (sequential task)")
    history = torch.as_tensor(ds.sequences[u], dtype=torch.long)
    k = min(k, ds.num_items)
    items = recommend_top_k(run.model, torch.tensor([u]), [history], k, prompt=prompt,
                            exclude_history=not include_seen)[0]
    table = Table(title=f"top-{k} for user {ds.user_ids[u]} (#{u}, {len(history)} items in "
                  "history)" + (" — SIMULATED data" if ds.simulated else ""))
    for col, justify in (("rank", "right"), ("number", "right"), ("item id", "left"),
                         ("title", "left")):
        table.add_column(col, justify=justify)
    for rank, item in enumerate(items.tolist(), start=1):
        if 0 <= item < ds.num_items:
            table.add_row(str(rank), str(ds.numbers[item]), ds.item_ids[item],
                          ds.titles[item] or "")
        else:
            table.add_row(str(rank), "—", f"invalid item {item}", "")
    return table


def _check_mode(user: str | None, all_users: bool, out: Path | None) -> None:
    if user is not None and all_users:
        raise MfmrecError("--user and --all-users are mutually exclusive: give one")
    if user is None and not all_users:
        raise MfmrecError("give --user ID (print one user's list) or --all-users --out "
                          "FILE.parquet (export every user's)")
    if all_users and out is None:
        raise MfmrecError("--all-users needs --out FILE.parquet")
    if out is not None and not all_users:
        raise MfmrecError("--out is for --all-users (with --user the list is printed)")


def recommend_cmd(
    run_dir: Path = RUN_DIR, user: str = typer.Option(None, "--user", help=USER_HELP),
    all_users: bool = typer.Option(False, "--all-users", help="Every user of the dataset, "
                                   "to the Parquet file --out (one row per user and rank)."),
    out: Path = typer.Option(None, "--out", help="With --all-users: the .parquet file to "
                             "write (atomically)."),
    k: int = typer.Option(10, "--k", min=1, help="How many items."), data: Path = DATA,
    prompt: str = PROMPT,
    include_seen: bool = typer.Option(False, "--include-seen", help="Scoring models: keep "
                                      "items the user already interacted with."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="With --all-users: "
                                   "users per model call."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    allow_changed_data: bool = ALLOW,
) -> None:
    """Print the top-k items for a user, given the user's full history; or, with
    --all-users, write every user's top-k to a Parquet file."""
    _check_mode(user, all_users, out)
    run = _load(run_dir, data, allow_changed_data)
    console = Console()
    if not all_users:
        console.print(_one_user_table(run, user, k, prompt, include_seen))
        return
    from mfmrec.pipelines.batch import recommend_all  # lazy: torch + evaluator, ~1.4 s

    path = recommend_all(run, k, out, batch_size=batch_size, include_seen=include_seen,
                         quiet=quiet, prompt=prompt, console=console)
    n = run.dataset.num_users
    console.print(f"wrote {path}: top-{min(k, run.dataset.num_items)} for {n} users"
                  + (" (SIMULATED data)" if run.dataset.simulated else ""))


def _request(ds, u: int, i: int, rating: float | None, feature: str | None) -> tuple[dict, str]:
    """The explanation request of (user, item), filled from their review when one exists."""
    req = {"user": u, "item": i, "rating": rating, "summary": None, "feature": feature,
           "reviewer_name": ds.user_names[u]}
    reference = ""
    if ds.reviews is not None:
        users = ds.reviews.column("user").to_pylist()
        items = ds.reviews.column("item").to_pylist()
        rows = [r for r, (a, b) in enumerate(zip(users, items, strict=True)) if (a, b) == (u, i)]
        if rows:
            row = ds.reviews.slice(rows[-1], 1).to_pylist()[0]
            req.update({k: row[k] for k in ("rating", "summary", "feature", "reviewer_name")})
            reference = row.get("explanation") or ""
    req.update({k: v for k, v in (("rating", rating), ("feature", feature)) if v is not None})
    return req, reference


def explain_cmd(
    run_dir: Path = RUN_DIR, user: str = typer.Option(..., "--user", help=USER_HELP),
    item: str = typer.Option(..., "--item", help="Item: external id (e.g. an ASIN) or #INDEX."),
    data: Path = DATA, prompt: str = PROMPT,
    rating: float = typer.Option(None, "--rating", help="Rating to explain (default: the "
                                 "user's review of the item, if any)."),
    feature: str = typer.Option(None, "--feature", help="Feature word for feature-based "
                                "prompts (default: from the review, if any)."),
    allow_changed_data: bool = ALLOW,
) -> None:
    """Print a generated explanation of why a user would like an item."""
    run = _load(run_dir, data, allow_changed_data)
    ds = run.dataset
    u = resolve_index(user, ds.user_ids, ds.user_index, "user")
    i = resolve_index(item, ds.item_ids, ds.item_index, "item")
    if "explanation" not in run.model.tasks:
        raise MfmrecError(f"model {run.model.name} does not generate explanations")
    request, reference = _request(ds, u, i, rating, feature)
    run.model.eval()
    import torch  # lazy: torch, ~1.4 s; keeps --help fast

    try:
        with torch.no_grad():
            (text,) = run.model.explain([request], prompt=prompt)
    except MfmrecError as exc:  # name the pair as the user typed it
        raise MfmrecError(f"--user {user} ({ds.user_ids[u]}), --item {item} "
                          f"({ds.item_ids[i]}): {exc}") from None
    console = Console()
    title = ds.titles[i] or ds.item_ids[i]
    console.print(f"[bold]user[/bold] {ds.user_ids[u]} (#{u})  [bold]item[/bold] "
                  f"{ds.item_ids[i]} (#{i}, {title})")
    console.print(f"[bold]explanation:[/bold] {text}")
    if reference:
        console.print(f"[dim]reference (the user's review{', SIMULATED' if ds.simulated else ''}"
                      f"): {reference}[/dim]")


def report_cmd(
    run_dir: Path = RUN_DIR,
    split: str = typer.Option(None, "--split", help="Only this evaluation split (default: "
                              "every saved one)."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the saved Markdown as is."),
) -> None:
    """Reprint a run's saved reports: training (report.md) and evaluation (eval/)."""
    from rich.markdown import Markdown  # lazy: markdown-it + pygments, ~35 ms; `report` only

    from mfmrec.evaluation.report import (  # lazy: torch, ~1.4 s; keeps --help fast
        load_report,
        print_report,
        saved_splits,
    )

    splits = [split] if split else saved_splits(run_dir)
    train_md = Path(run_dir) / "report.md"
    if not splits and not train_md.is_file():
        raise MfmrecError(f"{run_dir}: no saved reports (train with `mfmrec train`, then run "
                          f"`mfmrec evaluate {run_dir}`)")
    console = Console()
    if train_md.is_file() and not split:
        text = train_md.read_text()
        if markdown:
            typer.echo(text)
        else:
            console.print(Markdown(text))
    if not split:
        _print_curves(run_dir, console)
    for name in splits:
        results = load_report(run_dir, name)
        md = Path(run_dir) / "eval" / f"{name}.md"
        if markdown and md.is_file():
            typer.echo(md.read_text())
        else:
            print_report(results, console)


def _print_curves(run_dir: Path, console: Console) -> None:
    from mfmrec.training.curves import CURVES  # lazy: training/ imports torch

    path = Path(run_dir) / CURVES
    if path.is_file():
        console.print(f"training curves (loss, learning rate, samples/s): {path}",
                      markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_cmd)
    app.command("recommend")(recommend_cmd)
    app.command("explain")(explain_cmd)
    app.command("report")(report_cmd)
