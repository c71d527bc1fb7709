"""The notebook machinery: student/instructor build, Colab stamping, notebook conventions."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import build_notebooks as bn  # noqa: E402

from course_utils import colab  # noqa: E402

NOTEBOOKS = bn.notebooks(ROOT / "notebooks")
SOLUTION = '''import torch


def my_double(x, scale=2):
    """Return scale * x."""
    # Hint: one multiplication is enough.
    y = x * scale
    return y


def helper(a):
    return a
'''


def test_stub_keeps_signature_and_raises_with_the_hint():
    stub = bn.stub_solution(SOLUTION)
    assert "import torch" in stub and "def my_double(x, scale=2):" in stub and '"""Return scale * x."""' in stub
    assert "x * scale" not in stub
    namespace = {}
    exec(stub, namespace)
    with pytest.raises(NotImplementedError, match="one multiplication"):
        namespace["my_double"](3)
    with pytest.raises(NotImplementedError, match="write helper"):
        namespace["helper"](1)


def test_a_solution_cell_must_define_a_function():
    with pytest.raises(ValueError, match="def"):
        bn.stub_solution("x = 1\n")


def test_build_makes_both_versions(tmp_path):
    out = tmp_path / "build"
    assert bn.main(["--out", str(out)]) == 0
    for path in NOTEBOOKS:
        assert (out / "instructor" / path.name).exists() and (out / "student" / path.name).exists()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_differs_only_in_solution_cells(path):
    nb = bn.load(path)
    student = bn.student_version(nb)
    assert len(student["cells"]) == len(nb["cells"])
    changed = 0
    for a, b in zip(nb["cells"], student["cells"]):
        if bn.is_solution(a):
            changed += 1
            assert bn.source(a) != bn.source(b) and "NotImplementedError" in bn.source(b)
        else:
            assert bn.source(a) == bn.source(b)
    assert changed >= 1, f"{path.name} has no exercise solution cell tagged 'solution'"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_follows_the_course_pattern(path):
    nb = bn.load(path)
    cells = nb["cells"]
    for c in cells:
        if c["cell_type"] == "code":
            assert not c.get("outputs") and c.get("execution_count") is None, "stored with outputs"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert bn.source(cells[0]).startswith(colab.badge(path.name)), "badge missing: run build_notebooks.py --stamp"
    assert bn.source(cells[1]) == colab.setup_cell(), "Colab cell out of date: run build_notebooks.py --stamp"
    text = "\n".join(bn.source(c) for c in cells if c["cell_type"] == "markdown")
    assert "## Summary" in text and "## Exercises" in text
    exercises = re.findall(r"^\*\*\d+\.", text.split("## Exercises", 1)[1], flags=re.M)
    assert 2 <= len(exercises) <= 4, f"{len(exercises)} exercises (bold '**N.' headings); want 2 to 4"
    for i, c in enumerate(cells):  # every solution is followed by a check
        if bn.is_solution(c):
            after = "\n".join(bn.source(x) for x in cells[i + 1:i + 3])
            assert "check_" in after, f"solution cell {i} is not followed by a check"


def test_colab_cell_does_nothing_outside_colab():
    exec(colab.setup_cell(), {})  # must not try to install anything here
    assert colab.REPOSITORY in colab.badge("00_welcome.ipynb")


def test_student_notebook_runs_to_the_end(tmp_path):
    """The student version of 00 runs top to bottom; its check reports 'not implemented'."""
    nbclient = pytest.importorskip("nbclient")
    import nbformat

    bn.main(["--out", str(tmp_path)])
    names = [p.name for p in NOTEBOOKS] if os.environ.get("COURSE_TEST_ALL_STUDENTS") else ["00_welcome.ipynb"]
    for name in names:
        nb = nbformat.read(tmp_path / "student" / name, as_version=4)
        nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path / "student")}}).execute()
        outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
        assert "not implemented yet" in outputs


def test_cli_help_runs():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_notebooks.py"), "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "student" in out
