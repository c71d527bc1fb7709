"""The shape of the code base that the course promises its readers: every module readable
in one sitting, every notebook cell short enough to read before running it, and every
method on the one contract of methods.base."""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted((ROOT / "course_utils").rglob("*.py"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MAX_MODULE_LINES, MAX_CELL_LINES = 400, 25


def test_the_layout_is_where_the_tests_look():
    assert len(MODULES) > 20 and len(NOTEBOOKS) >= 9


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_is_readable_in_one_sitting(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, (f"{path.relative_to(ROOT)} has {lines} lines; split it (lesson code "
                                       f"goes to course_utils/lessons/) to keep modules under {MAX_MODULE_LINES}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_code_cell_is_short(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    long = {i: len("".join(c["source"]).splitlines()) for i, c in enumerate(cells) if c["cell_type"] == "code"}
    long = {i: n for i, n in long.items() if n > MAX_CELL_LINES}
    assert not long, f"{path.name}: code cells {long} are longer than {MAX_CELL_LINES} lines; move glue to the package"


def test_every_method_is_a_method():
    from course_utils.methods import base

    base._import_course_methods()
    names = set(base.METHODS)
    expected = {"Supervised", "RotationPrediction", "Jigsaw", "ContextPrediction", "Colorization", "SimCLR", "MoCo",
                "BYOL", "SimSiam", "MAE", "CausalLM", "MaskedLM"}
    assert expected <= names, sorted(expected - names)
    for name in expected:
        cls = base.METHODS[name]
        assert "training_step" in {k for c in cls.__mro__ if c is not base.Method for k in vars(c)}, name
