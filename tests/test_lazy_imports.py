"""Function-level imports stay only where they make start-up faster, each with a reason.

Every ``import`` inside a function or method of ``src/mfmrec`` carries a trailing
``# lazy: <reason>`` comment (on the first line of a multi-line ``from x import (``);
anything else belongs at the top of its module. And the ``mfmrec`` command starts
without torch or transformers: ``mfmrec --help`` imports every command module.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import mfmrec
from mfmrec.cli.main import COMMAND_MODULES

PACKAGE = Path(mfmrec.__file__).resolve().parent
MARK = "# lazy:"
HEAVY = ("torch", "transformers")


def _function_imports(tree: ast.AST):
    """Import statements nested anywhere inside a function, method or lambda."""
    functions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
    for fn in ast.walk(tree):
        if isinstance(fn, functions):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    yield node


def test_every_function_level_import_says_why_it_is_lazy():
    files = sorted(PACKAGE.rglob("*.py"))
    assert files, PACKAGE
    missing, seen = [], set()
    for path in files:
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in _function_imports(ast.parse(source, filename=str(path))):
            if (path, node.lineno) in seen:  # nested functions are walked twice
                continue
            seen.add((path, node.lineno))
            line = lines[node.lineno - 1]
            if MARK not in line:
                missing.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: "
                               f"{line.strip()}")
    assert not missing, ("imports inside functions without a '# lazy: <reason>' comment "
                         "(hoist them to the top of the module, or say why they must "
                         "wait):\n" + "\n".join(missing))


def test_the_lazy_reason_is_not_empty():
    for path in sorted(PACKAGE.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if MARK in line:
                reason = line.split(MARK, 1)[1].strip()
                assert reason, f"{path.relative_to(PACKAGE.parent)}:{number}: empty reason"


def _modules_after(code: str) -> set[str]:
    """The modules loaded by a fresh interpreter after running ``code``."""
    # the child imports the same mfmrec as this test run
    path = os.pathsep.join(filter(None, [str(PACKAGE.parent), os.environ.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\n"
                          "print('\\n'.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": path})
    return set(out.stdout.split())


def test_cli_import_pulls_in_neither_torch_nor_transformers():
    loaded = _modules_after("import mfmrec.cli.main")
    assert "mfmrec.cli.main" in loaded
    assert not [m for m in HEAVY if m in loaded]


def test_cli_help_registers_every_command_without_torch_or_transformers():
    loaded = _modules_after(
        "import contextlib, io\n"
        "from mfmrec.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['--help']) == 0\n")
    assert set(COMMAND_MODULES) <= loaded
    assert not [m for m in HEAVY if m in loaded]
