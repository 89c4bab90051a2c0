"""``mfmrec serve RUN_DIR [RUN_DIR ...]``: the JSON API and the web page over trained runs."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

import typer

from mfmrec.errors import ConfigError

SWITCH_INTERVAL_S = 0.0005
RUN_DIRS = typer.Argument(..., help="Run directories written by `mfmrec train`, all trained "
                          "on the same dataset; their models are served side by side.")


def _check(host: str, port: int, max_batch: int, max_wait_ms: float) -> None:
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port: must lie in [0, 65535], got {port}")
    if max_batch < 1:
        raise ConfigError(f"--max-batch: must be >= 1, got {max_batch}")
    if not 0 <= max_wait_ms <= 1000:
        raise ConfigError(f"--max-wait-ms: must lie in [0, 1000], got {max_wait_ms}")
    if not host:
        raise ConfigError("--host: empty")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve_cmd(
    run_dirs: list[Path] = RUN_DIRS,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (default: "
                             "loopback only; 0.0.0.0 exposes the service to the network)."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    max_batch: int = typer.Option(32, "--max-batch", help="Most recommendation requests "
                                  "gathered into one model call."),
    max_wait_ms: float = typer.Option(5.0, "--max-wait-ms", help="Longest wait for a batch "
                                      "to fill, in milliseconds."),
    no_batching: bool = typer.Option(False, "--no-batching", help="One model call per "
                                     "request (for comparison)."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
    allow_changed_data: bool = typer.Option(False, "--allow-changed-data", help="Serve runs "
                                            "whose dataset changed since training (default: "
                                            "refuse, naming the changed files)."),
) -> None:
    """Serve recommendations, explanations and item photos over HTTP, with a web page at /
    and the API's documentation at /docs."""
    _check(host, port, max_batch, max_wait_ms)
    for run_dir in run_dirs:
        if not run_dir.is_dir():
            raise ConfigError(f"{run_dir}: run directory not found")
    import uvicorn  # lazy: keeps mfmrec --help fast

    from mfmrec.serve import create_app  # lazy: fastapi + the evaluator, torch (~2 s)
    from mfmrec.training.runs import load_run  # lazy: torch and the registry (~2 s)

    runs = [load_run(run_dir, allow_changed_data=allow_changed_data) for run_dir in run_dirs]
    # the event loop and the model thread share the GIL: a short switch interval keeps
    # the loop answering while a large batch runs (CPython's default is 5 ms)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    if no_batching:
        max_batch, max_wait_ms = 1, 0.0
    app = create_app(runs, max_batch=max_batch, max_wait_ms=max_wait_ms)
    if not _is_loopback(host):
        typer.echo(f"warning: binding {host}: the service is reachable from the network "
                   "and has no authentication", err=True)
    typer.echo(f"serving {', '.join(app.state.service.models)} on http://{host}:{port}/ "
               f"(API docs: /docs)")
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
