"""The benchmark's profile phases name functions that exist: a renamed hot-path function must not
leave a phase that silently counts nothing (bench/profiling.py)."""

import ast
from pathlib import Path

import pytest

from bench.profiling import PHASES

ROOT = Path(__file__).resolve().parents[2]
OWN = ("accounts/", "fastticket/", "reservations/", "tickets/")


def _defined(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


@pytest.mark.parametrize(("label", "function", "fragment"), [phase for phase in PHASES if phase[2].startswith(OWN)])
def test_each_phase_of_the_projects_code_names_a_function_of_its_file(label, function, fragment):
    assert function.rsplit(".", 1)[-1] in _defined(ROOT / fragment), f"{label!r}: no {function} in {fragment}"
