"""Build the student and instructor versions of every notebook, and stamp the Colab cells.

    python scripts/build_notebooks.py                 # -> build/student/, build/instructor/
    python scripts/build_notebooks.py --stamp         # rewrite badges + Colab set-up cells in notebooks/

The notebooks in ``notebooks/`` are the instructor versions: exercise solutions live in
code cells tagged ``solution``. The student version replaces each such cell by a stub:
the imports and the ``def`` lines stay, each function body becomes
``raise NotImplementedError(<hint>)``, the hint taken from a ``# Hint: ...`` comment in
the function. A solution cell holding anything else at its top level (a class, an
assignment...) is an error, since the stub would lose it. Everything else is identical, so
a student notebook runs top to bottom and its exercise checks report "not implemented yet".

The repository address lives in one place, ``course_utils/colab.py``; ``--stamp``
writes it into each notebook's "Open in Colab" badge and set-up cell.
"""
from __future__ import annotations

import argparse
import ast
import copy
import io
import json
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_utils import colab  # noqa: E402

SOLUTION_TAG = "solution"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def save(nb: dict, path: Path) -> None:
    for i, cell in enumerate(nb["cells"]):  # nbformat 4.5 wants a unique id per cell
        cell.setdefault("id", f"{path.stem[:2]}-{i:03d}")
    nb["nbformat"], nb["nbformat_minor"] = 4, max(5, nb.get("nbformat_minor", 5))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def is_solution(cell: dict) -> bool:
    return cell.get("cell_type") == "code" and SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def strip_outputs(nb: dict) -> dict:
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return nb


_KINDS = {ast.ClassDef: "class", ast.AsyncFunctionDef: "async def", ast.Assign: "assignment",
          ast.AnnAssign: "assignment", ast.AugAssign: "assignment", ast.Expr: "expression"}


def stub_solution(code: str, where: str = "solution cell") -> str:
    """Keep imports and function signatures; replace every function body with a stub.

    A solution cell may hold only imports and ``def`` functions (decorated or not, one-line
    ones too). Anything else (a class, an ``async def``, an assignment, a call...) would
    be lost in the student version, so it raises a ValueError naming ``where`` (the cell)."""
    try:
        tree = ast.parse(code)
    except SyntaxError as err:
        raise ValueError(f"{where}: does not parse ({err})") from err
    lines = code.splitlines()
    out = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(ast.get_source_segment(code, node))
        elif isinstance(node, ast.FunctionDef):
            out.append(_stub_function(code, lines, node))
        else:
            kind = _KINDS.get(type(node), f"{type(node).__name__} statement")
            snippet = lines[node.lineno - 1].strip()
            raise ValueError(
                f"{where}, line {node.lineno}: cannot stub a top-level {kind} ({snippet!r}); a solution "
                "cell may hold only imports and def functions: move the rest to a cell of its own")
    if not any(isinstance(n, ast.FunctionDef) for n in tree.body):
        raise ValueError(f"{where}: a solution cell must define the exercise function(s) with def")
    return "\n\n".join(out) + "\n"


def _stub_function(code: str, lines: list, node: ast.FunctionDef) -> str:
    """The decorators, the ``def`` line(s), the comments before the body and the docstring of
    ``node``, then ``raise NotImplementedError(hint)``."""
    first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    body = node.body[0]
    hint = _hint(code, node) or f"write {node.name} (see the exercise text above)"
    doc = ast.get_docstring(node, clean=False)
    # the text before the body on the body's first line (ast's col_offset counts UTF-8 bytes)
    before_body = lines[body.lineno - 1].encode("utf-8")[:body.col_offset].decode("utf-8")
    if before_body.strip():  # the body starts on the def line: def f(x): return x
        header = lines[first - 1:body.lineno - 1] + [before_body.rstrip()]
        indent = " " * (node.col_offset + 4)
        if doc is not None:
            header.append(indent + ast.get_source_segment(code, body))
    else:
        header_end = body.end_lineno if doc is not None else body.lineno - 1
        header = lines[first - 1:header_end]
        indent = " " * body.col_offset
    return "\n".join(header) + f"\n{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError({hint!r})"


def _hint(code: str, node: ast.FunctionDef) -> str | None:
    """A comment '# Hint: ...' anywhere in the function (also after code on a line, as in a
    one-line def) gives the learner's hint."""
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.COMMENT and node.lineno <= tok.start[0] <= node.end_lineno:
            text = tok.string.lstrip("#").strip()
            if text.lower().startswith("hint:"):
                return "Exercise not done yet. Hint: " + text[5:].strip()
    return None


def student_version(nb: dict, name: str = "notebook") -> dict:
    nb = strip_outputs(nb)
    for i, cell in enumerate(nb["cells"]):
        if is_solution(cell):
            cell["source"] = stub_solution(source(cell), where=f"{name}, cell {i} (tagged {SOLUTION_TAG!r})")
            cell["metadata"]["tags"] = [t for t in cell["metadata"]["tags"] if t != SOLUTION_TAG] + ["exercise"]
    return nb


def stamp(nb: dict, name: str) -> dict:
    """Put the current badge in the first markdown cell and the Colab set-up cell after it;
    set the standard kernel and clear outputs."""
    nb = strip_outputs(nb)
    nb["metadata"] = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    cells = nb["cells"]
    if not cells or cells[0]["cell_type"] != "markdown":
        raise ValueError(f"{name}: the first cell must be the markdown title cell")
    title = [ln for ln in source(cells[0]).splitlines() if not ln.startswith(colab.BADGE_PREFIX)]
    cells[0]["source"] = colab.badge(name) + "\n\n" + "\n".join(title).lstrip("\n")
    setup = {"cell_type": "code", "metadata": {"tags": ["colab-setup"]}, "execution_count": None,
             "outputs": [], "source": colab.setup_cell()}
    if len(cells) > 1 and "colab-setup" in cells[1].get("metadata", {}).get("tags", []):
        cells[1] = setup
    else:
        cells.insert(1, setup)
    return nb


def notebooks(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--notebooks", type=Path, default=ROOT / "notebooks")
    p.add_argument("--out", type=Path, default=ROOT / "build")
    p.add_argument("--stamp", action="store_true", help="rewrite badges and Colab cells in --notebooks")
    args = p.parse_args(argv)
    paths = notebooks(args.notebooks)
    if not paths:
        p.error(f"no notebooks named NN_*.ipynb in {args.notebooks}")
    for path in paths:
        nb = load(path)
        if args.stamp:
            save(stamp(nb, path.name), path)
            continue
        save(strip_outputs(nb), args.out / "instructor" / path.name)
        save(student_version(nb, path.name), args.out / "student" / path.name)
    where = args.notebooks if args.stamp else args.out
    print(f"{'stamped' if args.stamp else 'built'} {len(paths)} notebooks in {where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
