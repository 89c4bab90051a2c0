"""The ``mfmrec`` command. Thin: parse, build a config, call the library.

Errors caused by the user's input (:class:`~mfmrec.errors.MfmrecError`) print as one
line on stderr and exit with code 2; no traceback.
"""

from __future__ import annotations

import functools
import importlib
import sys

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
    "mfmrec.cli.serve",
]


@functools.cache
def _register(module: str) -> None:
    # cached: main() runs many times in one process (tests) and must not stack duplicates
    importlib.import_module(module).register(app)


def _register_all() -> None:
    for mod in COMMAND_MODULES:
        _register(mod)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code instead of raising (for tests)."""
    _register_all()
    try:
        app(args=argv, standalone_mode=False)
    except MfmrecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # click usage errors arrive here in standalone_mode=False
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        raise
    return 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
