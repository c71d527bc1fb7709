"""Store notebooks without outputs: a git filter (and a plain command) for contributors.

Jupyter writes outputs, execution counts and run metadata into a notebook as soon as it
runs (autosave too). The course stores notebooks without them. Once per clone:

    git config filter.strip-outputs.clean "python scripts/strip_outputs.py"

and git then stores every notebook under notebooks/ stripped (``.gitattributes`` names the
filter), whatever your working copy holds. By hand: ``python scripts/strip_outputs.py
notebooks/03_simclr.ipynb ...`` rewrites the files in place. A stripped notebook comes out
byte for byte as it went in.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

RUN_METADATA = ("execution", "collapsed", "scrolled", "ExecuteTime")


def strip(text: str) -> str:
    """The notebook ``text`` without outputs, execution counts or run metadata, in the
    course's format (one-space indent, UTF-8 as is, a final newline)."""
    nb = json.loads(text)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
        for key in RUN_METADATA:
            cell.get("metadata", {}).pop(key, None)
    nb.get("metadata", {}).pop("widgets", None)
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def main(argv=None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:                                   # as a git filter: stdin to stdout
        sys.stdout.write(strip(sys.stdin.read()))
        return 0
    for path in map(Path, paths):
        path.write_text(strip(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
