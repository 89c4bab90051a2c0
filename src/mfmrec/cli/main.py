"""The ``mfmrec`` command. Thin: parse, build a config, call the library.

Exit codes: 0 success; 2 for errors caused by the user's input
(:class:`~mfmrec.errors.MfmrecError`, printed as one line on stderr) and for usage errors
(click's usage message); 130 after SIGINT (Ctrl-C) and 143 after SIGTERM, each with one
line on stderr. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import shlex
import signal
import sys
import threading
from collections.abc import Iterator

import typer

from mfmrec.errors import MfmrecError

app = typer.Typer(
    name="mfmrec",
    help="Multimodal foundation-model recommendation: VIP5, IISAN and honest baselines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module exposes ``register(app)``; listed here so `mfmrec --help` shows all.
COMMAND_MODULES = [
    "mfmrec.cli.data",
    "mfmrec.cli.features",
    "mfmrec.cli.ids",
    "mfmrec.cli.demo",
    "mfmrec.cli.train",
    "mfmrec.cli.pretrain",
    "mfmrec.cli.evaluate",
    "mfmrec.cli.compare",
    "mfmrec.cli.serve",
]
RESUMABLE = ("train", "pretrain")  # commands whose interrupted runs continue with --resume


@functools.cache
def _register(module: str) -> None:
    # cached: main() runs many times in one process (tests) and must not stack duplicates
    importlib.import_module(module).register(app)


def _register_all() -> None:
    for mod in COMMAND_MODULES:
        _register(mod)


@functools.cache
def _usage_errors() -> tuple[type[Exception], ...]:
    """``ClickException`` as typer raises it (typer bundles its own click as
    ``typer._click``) and as plain click raises it."""
    import click  # lazy: ~8 ms, needed only when a usage error is shown

    bundled = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
    return (bundled, click.ClickException)


class _Signals:
    """SIGINT and SIGTERM both become KeyboardInterrupt (one clean path: ``finally``
    blocks run, temporary checkpoint folders are removed); the signal is remembered for
    the exit code."""

    def __init__(self) -> None:
        self.received: int | None = None

    def _handle(self, signum: int, frame: object) -> None:
        if self.received is None:
            self.received = signum
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self) -> Iterator[_Signals]:
        if threading.current_thread() is not threading.main_thread():
            yield self  # signal handlers can only be set in the main thread
            return
        previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def exit_code(self) -> int:
        return 128 + (self.received or signal.SIGINT)


def interrupted_message(args: list[str]) -> str:
    """``interrupted``, with the command that continues the run for train and pretrain."""
    if args and args[0] in RESUMABLE:
        again = args if "--resume" in args else [*args, "--resume"]
        return f"interrupted; resume with mfmrec {shlex.join(again)}"
    return "interrupted"


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code instead of raising (for tests)."""
    args = list(sys.argv[1:] if argv is None else argv)
    signals = _Signals()
    with signals.installed():
        try:
            _register_all()
            code = _invoke(args)
        except KeyboardInterrupt:
            code = 130
        if signals.received is not None or code == 130:
            print(interrupted_message(args), file=sys.stderr)
            return signals.exit_code()
    return code


def _invoke(args: list[str]) -> int:
    """Run the command; map every expected failure to its exit code."""
    try:
        rv = app(args=args, prog_name="mfmrec", standalone_mode=False)
    except MfmrecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        return 1
    except _usage_errors() as exc:  # wrong options, values, commands: usage text, exit 2
        exc.show()
        return exc.exit_code
    return rv if isinstance(rv, int) else 0  # typer returns 130 after a KeyboardInterrupt


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
