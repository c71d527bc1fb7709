"""The notebook machinery: student/instructor build, Colab stamping, notebook conventions."""
import ast
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
    with pytest.raises(ValueError, match="def"):
        bn.stub_solution("import torch\n")


def test_one_line_defs_are_stubbed():
    code = "import math\n\ndef my_id(x): return x\n\n\ndef my_two(a,\n           b): return a + b\n"
    stub = bn.stub_solution(code)
    namespace = {}
    exec(stub, namespace)  # used to be an IndentationError
    assert "return x" not in stub and "return a + b" not in stub and "def my_two(a,\n           b):" in stub
    with pytest.raises(NotImplementedError, match="write my_id"):
        namespace["my_id"](1)
    with pytest.raises(NotImplementedError, match="write my_two"):
        namespace["my_two"](1, 2)
    with_doc = bn.stub_solution('def f(x): "Twice x."; return 2 * x  # Hint: double it.\n')
    namespace = {}
    exec(with_doc, namespace)
    assert namespace["f"].__doc__ == "Twice x."
    with pytest.raises(NotImplementedError, match="Hint: double it"):
        namespace["f"](1)


@pytest.mark.parametrize("extra, kind", [
    ("class Helper:\n    pass\n", "class"),
    ("async def fetch(x):\n    return x\n", "async def"),
    ("SCALE = 2\n", "assignment"),
    ("print('hello')\n", "expression"),
    ("for i in range(2):\n    pass\n", "For statement"),
])
def test_what_cannot_be_stubbed_is_an_error_naming_the_cell(extra, kind):
    code = SOLUTION + "\n\n" + extra
    with pytest.raises(ValueError, match=f"my cell, line \\d+: cannot stub a top-level {kind}"):
        bn.stub_solution(code, where="my cell")
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# title"},
                    {"cell_type": "code", "metadata": {"tags": ["solution"]}, "source": code,
                     "outputs": [], "execution_count": None}]}
    with pytest.raises(ValueError, match="99_demo.ipynb, cell 1 .*cannot stub"):
        bn.student_version(nb, "99_demo.ipynb")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_function_has_its_own_hint(path):
    """A '# Hint:' comment in each solution function, so the stub's message helps."""
    for i, cell in enumerate(bn.load(path)["cells"]):
        if bn.is_solution(cell):
            code = bn.source(cell)
            stub = bn.stub_solution(code)
            for node in ast.parse(code).body:
                if isinstance(node, ast.FunctionDef):
                    hint = bn._hint(code, node)
                    assert hint, f"cell {i}: {node.name} has no '# Hint: ...' comment"
                    assert repr(hint) in stub


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_solutions_come_after_the_exercises_heading(path):
    """With the test above that only tagged cells differ, the student notebook is then the
    instructor one, cell for cell, up to the first exercise."""
    cells = bn.load(path)["cells"]
    headings = [i for i, c in enumerate(cells)
                if c["cell_type"] == "markdown" and re.search(r"^## Exercises\s*$", bn.source(c), flags=re.M)]
    assert len(headings) == 1, f"{len(headings)} '## Exercises' headings"
    early = [i for i, c in enumerate(cells) if bn.is_solution(c) and i < headings[0]]
    assert not early, f"solution cells {early} come before '## Exercises' (cell {headings[0]})"


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


def test_colab_cell_installs_and_can_keep_the_runs_on_drive(monkeypatch):
    """On (a stand-in for) Colab: pip installs course_utils; KEEP_ON_DRIVE mounts Drive and
    points COURSE_RUNS and COURSE_DATA there, so the next notebook finds what this one saved."""
    import subprocess
    import types

    calls, mounted = [], []
    colab_module = types.ModuleType("google.colab")
    colab_module.drive = types.SimpleNamespace(mount=mounted.append)
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab_module)
    monkeypatch.setattr(subprocess, "run", lambda args, check: calls.append(args))
    monkeypatch.delenv("COURSE_RUNS", raising=False)
    exec(colab.setup_cell(), {})
    assert calls and colab.install_target() in calls[0] and not mounted and "COURSE_RUNS" not in os.environ
    monkeypatch.setenv("COURSE_DATA", "unchanged")
    exec(colab.setup_cell().replace("KEEP_ON_DRIVE = False", "KEEP_ON_DRIVE = True"), {})
    assert mounted == ["/content/drive"]
    assert os.environ["COURSE_RUNS"].startswith("/content/drive/") and os.environ["COURSE_DATA"] != "unchanged"


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


# ------------------------------------------------------------------ Binder and the README


def _lower_bounds(lines):
    """{normalised name: lower bound} of requirement lines, skipping pip options and comments."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    bounds = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        lower = [s.version for s in req.specifier if s.operator in (">=", "==", "~=")]
        bounds[canonicalize_name(req.name)] = lower[0] if lower else None
    return bounds


def test_binder_requirements_match_the_package_dependencies():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = _lower_bounds(deps)
    binder = _lower_bounds((ROOT / "binder" / "requirements.txt").read_text().splitlines())
    for name, bound in wanted.items():
        assert name in binder, f"binder/requirements.txt lacks {name} (pyproject needs {name}>={bound})"
        assert binder[name] == bound, (f"{name}: binder/requirements.txt says >={binder[name]}, "
                                       f"pyproject >={bound}")


def test_binder_postbuild_opens_markdown_rendered(tmp_path):
    """postBuild stays executable and writes JupyterLab's setting: Markdown opens in the preview."""
    post = ROOT / "binder" / "postBuild"
    assert os.access(post, os.X_OK), "binder/postBuild must be executable"
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "pip").write_text("#!/bin/sh\nexit 0\n")  # stands in for the real install
    (fake_bin / "pip").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "JUPYTERLAB_SETTINGS_DIR"}
    env.update(HOME=str(tmp_path / "home"), PATH=f"{fake_bin}{os.pathsep}{env.get('PATH', '')}")
    subprocess.run(["bash", str(post)], cwd=ROOT, env=env, check=True, capture_output=True)
    settings = (tmp_path / "home" / ".jupyter" / "lab" / "user-settings" / "@jupyterlab"
                / "docmanager-extension" / "plugin.jupyterlab-settings")
    assert json.loads(settings.read_text()) == {"defaultViewers": {"markdown": "Markdown Preview"}}


# third-party projects the README links to; every other GitHub address must be the course's
README_THIRD_PARTY = {"computationalmodelling/nbval"}
_ADDRESS = re.compile(
    r"(?:mybinder\.org/v2/gh|colab\.research\.google\.com/github|raw\.githubusercontent\.com"
    r"|github\.com)/([\w.-]+)/([\w.-]+?)(?:\.git)?(?=[/@?#)\s`'\"]|$)")


def test_readme_repository_addresses_are_colabs():
    """The README's links (Binder, Colab, GitHub) name the repository of course_utils/colab.py."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = [(m.group(0), f"{m.group(1)}/{m.group(2)}") for m in _ADDRESS.finditer(text)]
    course = [(link, repo) for link, repo in found if repo not in README_THIRD_PARTY]
    assert any("mybinder.org" in link for link, _ in course), "no Binder link found in README.md"
    wrong = [link for link, repo in course if repo != colab.REPOSITORY]
    assert not wrong, f"README.md names {wrong}; course_utils/colab.py says {colab.REPOSITORY}"
    for binder in re.findall(r"mybinder\.org/v2/gh/[\w.-]+/[\w.-]+/([\w.-]+)", text):
        assert binder == colab.BRANCH, f"the Binder link opens branch {binder}, colab.py says {colab.BRANCH}"


def test_run_notebooks_runs_code_cells_without_jupyter_and_counts_failures(tmp_path, monkeypatch, capsys):
    sys.path.insert(0, str(ROOT / "scripts"))
    import run_notebooks

    def notebook(name, code):
        cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# title"]}] + [
            {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": [c]} for c in code]
        (tmp_path / name).write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    notebook("98_good.ipynb", ["x = 41", "print('answer', x + 1)"])
    notebook("99_bad.ipynb", ["raise ValueError('planted')"])
    monkeypatch.setattr(run_notebooks, "NOTEBOOKS", tmp_path)
    assert run_notebooks.main(["98"]) == 0
    assert run_notebooks.main(["all"]) == 1
    out = capsys.readouterr().out
    assert "98_good.ipynb: ok" in out and "99_bad.ipynb: FAILED" in out


def test_strip_outputs_gives_back_the_stored_notebook(tmp_path):
    """The git filter of CONTRIBUTING.md: a run notebook (outputs, counts, timing metadata)
    is stored exactly as it was before the run; a stored notebook passes unchanged."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import strip_outputs

    for path in NOTEBOOKS:
        stored = path.read_text(encoding="utf-8")
        assert strip_outputs.strip(stored) == stored, f"{path.name} is not stored stripped"
    stored = NOTEBOOKS[0].read_text(encoding="utf-8")
    run = json.loads(stored)
    for i, cell in enumerate(run["cells"]):
        if cell["cell_type"] == "code":
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["42\n"]}]
            cell["execution_count"] = i
            cell["metadata"]["execution"] = {"iopub.execute_input": "2026-12-04T04:00:00Z"}
    executed = tmp_path / "run.ipynb"
    executed.write_text(json.dumps(run, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    assert strip_outputs.strip(executed.read_text(encoding="utf-8")) == stored
    assert strip_outputs.main([str(executed)]) == 0 and executed.read_text(encoding="utf-8") == stored
