"""Every exercise's solution passes its notebook's check, and the student stub fails it cleanly.

For each notebook this runs, outside Jupyter and without training anything: the import
statements of the notebook's code cells before its first exercise (the set-up cell's
imports, not ``course_utils.setup`` or any other statement), then, for each cell tagged
``solution`` in order, that cell and the check cell right after it. The same again with
each solution replaced by its student stub (``scripts/build_notebooks.py``'s
``stub_solution``): the checks must then report "not implemented yet", not raise.
"""
import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import build_notebooks as bn  # noqa: E402

from course_utils.checks import CheckReport  # noqa: E402

NOTEBOOKS = bn.notebooks(ROOT / "notebooks")


def _imports_namespace(cells, first_solution):
    """A namespace holding the top-level imports of the code cells before the first solution."""
    imports = []
    for cell in cells[:first_solution]:
        if cell["cell_type"] != "code" or "colab-setup" in cell.get("metadata", {}).get("tags", []):
            continue
        imports += [n for n in ast.parse(bn.source(cell)).body if isinstance(n, (ast.Import, ast.ImportFrom))]
    namespace = {"__name__": "__main__"}
    exec(compile(ast.Module(body=imports, type_ignores=[]), "<notebook imports>", "exec"), namespace)
    return namespace


def _is_check_call(node):
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name) and node.value.func.id.startswith("check_"))


def _run_check_cell(code, namespace, where):
    """Run the cell; return the CheckReports its top-level ``check_...(...)`` calls give back."""
    reports = []
    for node in ast.parse(code).body:
        if _is_check_call(node):
            reports.append(eval(compile(ast.Expression(node.value), where, "eval"), namespace))
        else:
            exec(compile(ast.Module(body=[node], type_ignores=[]), where, "exec"), namespace)
    assert reports, f"{where} calls no check_... function at its top level"
    assert all(isinstance(r, CheckReport) for r in reports), f"{where}: a check returned no CheckReport"
    return reports


def _exercises(cells):
    """(solution cell index, check cell index) pairs: the check is the next code cell."""
    pairs = []
    for i, cell in enumerate(cells):
        if bn.is_solution(cell):
            j = next(j for j in range(i + 1, len(cells)) if cells[j]["cell_type"] == "code")
            pairs.append((i, j))
    return pairs


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_solutions_pass_and_stubs_fail_their_checks(path, capsys):
    cells = bn.load(path)["cells"]
    pairs = _exercises(cells)
    assert pairs, f"{path.name} has no solution cell"
    for student in (False, True):
        namespace = _imports_namespace(cells, pairs[0][0])
        for i, j in pairs:
            code = bn.source(cells[i])
            if student:
                code = bn.stub_solution(code, where=f"{path.name}, cell {i}")
            exec(compile(code, f"{path.name} cell {i}", "exec"), namespace)
            for report in _run_check_cell(bn.source(cells[j]), namespace, f"{path.name} cell {j}"):
                if student:
                    assert not report.passed, f"the stub of cell {i} passes {report.name}"
                    assert "not implemented yet" in str(report), str(report)
                else:
                    assert report.passed, f"the solution of cell {i} fails its check:\n{report}"
    capsys.readouterr()  # the checks print their reports; keep the test output short
